"""Kolors (SDXL-style UNet conditioned on a ChatGLM3 text encoder): text2image.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.kolors import pipeline  # noqa: F401 - registers the family
