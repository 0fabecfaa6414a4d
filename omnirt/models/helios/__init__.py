"""Helios (autoregressive long-video generation on a Wan-style transformer): text2video and image2video.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.helios import pipeline  # noqa: F401 - registers the family
