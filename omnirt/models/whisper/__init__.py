"""Whisper speech recognition through transformers' ``WhisperForConditionalGeneration``: ``whisper-small`` and
``whisper-large-v3``.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.whisper import pipeline  # noqa: F401 - registers the family
