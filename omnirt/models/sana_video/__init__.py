"""SANA-Video (linear-attention video DiT, Gemma 2 text encoder): text2video.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.sana_video import pipeline  # noqa: F401 - registers the family
