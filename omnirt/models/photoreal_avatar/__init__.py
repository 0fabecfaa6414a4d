"""The photoreal avatar (the portrait itself warped by the audio, on MediaPipe face-mesh landmarks); ``pipeline``
registers and runs it."""

from omnirt.models.photoreal_avatar import pipeline  # noqa: F401 - registers the family
