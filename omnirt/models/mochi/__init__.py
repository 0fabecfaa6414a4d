"""Mochi 1 (Genmo): text2video.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.mochi import pipeline  # noqa: F401 - registers the family
