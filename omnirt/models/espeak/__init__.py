"""espeak-ng, the multilingual formant voice; ``pipeline`` registers and runs it."""

from omnirt.models.espeak import pipeline  # noqa: F401 - registers the family
