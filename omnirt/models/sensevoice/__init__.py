"""SenseVoice-Small through FunASR (optional extra); ``pipeline`` registers it."""

from omnirt.models.sensevoice import pipeline  # noqa: F401 - registers the family
