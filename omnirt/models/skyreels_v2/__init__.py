"""SkyReels-V2 (Skywork; Wan-based): text2video.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.skyreels_v2 import pipeline  # noqa: F401 - registers the family
