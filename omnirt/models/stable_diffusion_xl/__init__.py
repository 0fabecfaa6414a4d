"""Stable Diffusion XL: base 1.0 (text2image, image2image, inpaint), the refiner (image2image) and Turbo.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.stable_diffusion_xl import pipeline  # noqa: F401 - registers the family
