"""LTX-Video: fast text2video.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.ltx_video import pipeline  # noqa: F401 - registers the family
