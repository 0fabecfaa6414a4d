"""Stable Video Diffusion (img2vid and img2vid-xt): image2video, conditioned on an image only.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.stable_video_diffusion import pipeline  # noqa: F401 - registers the family
