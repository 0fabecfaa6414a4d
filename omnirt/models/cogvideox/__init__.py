"""CogVideoX 2B and 5B: text2video.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.cogvideox import pipeline  # noqa: F401 - registers the family
