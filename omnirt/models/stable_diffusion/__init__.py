"""Stable Diffusion 1.5 and 2.1: text2image, image2image and inpaint from one set of weights.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.stable_diffusion import pipeline  # noqa: F401 - registers the family
