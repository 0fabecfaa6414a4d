"""VITS / MMS-TTS text to speech through transformers' ``VitsModel``: ``mms-tts-eng`` and ``vits-ljs``.

``pipeline`` registers and runs the family; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny``.
"""

from omnirt.models.vits import pipeline  # noqa: F401 - registers the family
