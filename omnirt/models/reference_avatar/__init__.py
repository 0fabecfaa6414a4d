"""The reference avatar (drawn, audio-driven mouth on a real portrait); ``pipeline`` registers and runs it."""

from omnirt.models.reference_avatar import pipeline  # noqa: F401 - registers the family
