"""pocketsphinx, the offline English recogniser; ``pipeline`` registers and runs it."""

from omnirt.models.pocketsphinx_asr import pipeline  # noqa: F401 - registers the family
