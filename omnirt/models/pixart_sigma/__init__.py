"""PixArt-Sigma (DiT with a T5 text encoder): text2image.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.pixart_sigma import pipeline  # noqa: F401 - registers the family
