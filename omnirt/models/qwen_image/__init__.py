"""Qwen-Image (MMDiT with a Qwen2.5-VL text encoder): text2image; Qwen-Image-Edit and Edit-Plus (edit).

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.qwen_image import pipeline  # noqa: F401 - registers the family
