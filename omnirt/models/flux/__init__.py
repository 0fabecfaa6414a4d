"""FLUX.1: dev and schnell (text2image), Fill (inpaint), Kontext and Depth / Canny control (edit).

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.flux import pipeline  # noqa: F401 - registers the family
