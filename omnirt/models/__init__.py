"""Model families. Importing this package registers every family; no family imports torch at import time."""

from omnirt.models import (  # noqa: F401 - each import registers a family
    cogvideox,
    espeak,
    flashtalk,
    flux,
    flux2,
    hibari_tts,
    hunyuan_video,
    ltx_video,
    pocketsphinx_asr,
    qwen_image,
    reference_avatar,
    sensevoice,
    service_tts,
    stable_diffusion,
    stable_diffusion_3,
    stable_diffusion_xl,
    stable_video_diffusion,
    vits,
    wan,
    whisper,
)
