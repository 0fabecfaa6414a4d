"""HunyuanVideo 1.5 (Qwen2.5-VL plus ByT5 text encoders, 8.3B): text2video and image2video.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.hunyuan_video15 import pipeline  # noqa: F401 - registers the family
