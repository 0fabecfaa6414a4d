"""MuseTalk 1.5 (TMElyralab/MuseTalk): realtime lip-sync by single-step latent inpainting.

``components`` loads the UNet, the SD VAE and the Whisper encoder from upstream's folder layout; ``audio`` turns
audio into per-frame Whisper windows; ``network`` runs them as a lip-sync network; ``pipeline`` registers
``musetalk-1.5``; ``tiny`` writes tiny random-weight copies for ``omnirt make-tiny`` and the tests.

``load_components``, ``audio_prompts`` and ``positional_encoding`` are exported lazily: importing this package
registers the family without importing torch, diffusers or transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from omnirt.models.musetalk import pipeline  # noqa: F401 - registers the family

if TYPE_CHECKING:
    from omnirt.models.musetalk.audio import audio_prompts, positional_encoding
    from omnirt.models.musetalk.components import load_components

__all__ = ["audio_prompts", "load_components", "positional_encoding"]

_LAZY = {
    "load_components": "omnirt.models.musetalk.components",
    "audio_prompts": "omnirt.models.musetalk.audio",
    "positional_encoding": "omnirt.models.musetalk.audio",
}


def __getattr__(name: str) -> Any:
    """The lazily exported functions, imported (with torch) on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
