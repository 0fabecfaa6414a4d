"""Kandinsky 5.0 video (Qwen2.5-VL plus CLIP text encoders): text2video and image2video.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.kandinsky5 import pipeline  # noqa: F401 - registers the family
