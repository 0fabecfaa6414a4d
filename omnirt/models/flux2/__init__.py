"""FLUX.2: dev (Mistral-3 text encoder; alias ``flux2-dev``) and klein (Qwen3 text encoder): text2image.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.flux2 import pipeline  # noqa: F401 - registers the family
