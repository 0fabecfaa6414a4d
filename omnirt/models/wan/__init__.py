"""Wan 2.1 and 2.2 (14B; 2.2 uses two experts split by a noise boundary): text2video and image2video.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.wan import pipeline  # noqa: F401 - registers the family
