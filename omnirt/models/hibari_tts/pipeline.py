"""hibari-tts: a neural English voice (Kokoro-82M distilled, int8 ONNX) that ships inside the ``hibari-tts`` wheel.

Real speech, offline, on the CPU; it streams one segment per sentence as each is synthesised. The wheel holds the
``heart`` voice; other hibari voices download on first use, so only ``heart`` is offered.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from omnirt.contracts.errors import DependencyUnavailableError, RequestValidationError
from omnirt.models.contracts import speech_contract
from omnirt.models.speech import TextToSpeechPipeline
from omnirt.registry.registry import register_model

VOICES = ("heart",)


@register_model(
    id="hibari-tts",
    task="text2audio",
    weightless=True,
    resource_hint={"min_vram_gb": 0, "dtype": "fp32"},
    **speech_contract(
        "text2audio",
        defaults={"voice": "heart", "speed": 1.0},
        tier="core",
        maturity="beta",
        summary="hibari-tts: neural English voice bundled in its wheel; streams per sentence, CPU, offline.",
        example='curl -N localhost:8000/v1/text2audio/stream -d \'{"text": "Hello", "model": "hibari-tts"}\'',
        backend_status={"cpu": "supported"},
    ),
)
class HibariTTS(TextToSpeechPipeline):
    def __init__(self, *, spec: Any, backend: Any, dtype: str, **_: Any) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)
        try:
            from hibari import Hibari
        except ImportError as exc:
            raise DependencyUnavailableError("hibari-tts is not installed: pip install hibari-tts") from exc
        self.engine = Hibari(voice="heart", threads=1)
        self._rate = int(self.engine.sample_rate)
        # The first synthesis initialises the ONNX session's kernels: do it at load, not in a client's first packet.
        next(iter(self.engine.stream("Ready.")), None)

    @property
    def sample_rate(self) -> int:
        return self._rate

    def synthesize(self, text: str, config: dict[str, Any], inputs: dict[str, Any]) -> Iterator[Any]:
        voice = config.get("voice") or "heart"
        if voice not in VOICES:
            raise RequestValidationError(f"hibari-tts offers the voices {', '.join(VOICES)}, not '{voice}'.")
        yield from self.engine.stream(text, speed=float(config.get("speed") or 1.0), seed=config.get("seed"))
