"""pocketsphinx: offline English speech recognition with the acoustic and language models inside its wheel.

The decoder is built once per process (it takes about a quarter of a second) and reused; each transcription runs
one utterance on 16 kHz mono audio.
"""

from __future__ import annotations

import threading
from typing import Any

from omnirt.contracts.errors import DependencyUnavailableError, InvalidInputError, RequestValidationError
from omnirt.models.contracts import speech_contract
from omnirt.models.speech import SpeechRecognitionPipeline
from omnirt.registry.registry import register_model


@register_model(
    id="pocketsphinx-en",
    task="audio2text",
    weightless=True,
    resource_hint={"min_vram_gb": 0},
    **speech_contract(
        "audio2text",
        defaults={"language": "en"},
        tier="core",
        maturity="stable",
        summary="pocketsphinx: offline English ASR, model bundled in the wheel; the default recogniser.",
        backend_status={"cpu": "supported"},
    ),
)
class PocketsphinxASR(SpeechRecognitionPipeline):
    def __init__(self, *, spec: Any, backend: Any, dtype: str, **_: Any) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise DependencyUnavailableError("pocketsphinx is not installed: pip install pocketsphinx") from exc
        self._new_decoder = lambda: Decoder(loglevel="FATAL")
        self.decoder = self._new_decoder()
        self._lock = threading.Lock()

    def transcribe(self, samples: Any, config: dict[str, Any]) -> str:
        from omnirt.runtime.audio import pcm16

        language = str(config.get("language") or "en")
        if not language.lower().startswith("en"):
            raise RequestValidationError(f"pocketsphinx-en transcribes English only, not '{language}'.")
        if len(samples) == 0:
            raise InvalidInputError("The audio holds no samples.")
        with self._lock:
            try:
                self.decoder.start_utt()
                self.decoder.process_raw(pcm16(samples), full_utt=True)
                self.decoder.end_utt()
            except Exception:
                # The decoder may be left mid-utterance: the next request gets a fresh one, not this one's state.
                self.decoder = self._new_decoder()
                raise
            hypothesis = self.decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""
