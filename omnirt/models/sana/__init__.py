"""Sana (linear-attention DiT, deep-compression autoencoder, Gemma 2 text encoder): text2image.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.sana import pipeline  # noqa: F401 - registers the family
