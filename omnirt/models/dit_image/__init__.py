"""Experimental image DiTs through diffusers: GLM-Image, HunyuanImage 2.1, Ovis-Image, HiDream-I1, BRIA 3.2,
Lumina-Next, PixArt-Sigma, Sana and ChronoEdit (edit).

``pipeline`` registers and runs them from one table; ``tiny`` writes tiny random-weight copies for
``omnirt make-tiny``.
"""

from omnirt.models.dit_image import pipeline  # noqa: F401 - registers the families
