"""hibari-tts, the offline neural English voice; ``pipeline`` registers and runs it."""

from omnirt.models.hibari_tts import pipeline  # noqa: F401 - registers the family
