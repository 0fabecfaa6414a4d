"""Stable Diffusion 3 and 3.5 (MMDiT, flow matching): text2image.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.stable_diffusion_3 import pipeline  # noqa: F401 - registers the family
