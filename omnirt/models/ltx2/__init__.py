"""LTX-2 (joint video and audio generation, Gemma 3 text encoder): image2video.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.ltx2 import pipeline  # noqa: F401 - registers the family
