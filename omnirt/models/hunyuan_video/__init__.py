"""HunyuanVideo (Llama text encoder plus CLIP): text2video.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.hunyuan_video import pipeline  # noqa: F401 - registers the family
