"""AnimateDiff on SDXL (a motion adapter over the SDXL base UNet): text2video.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.animatediff import pipeline  # noqa: F401 - registers the family
