"""The two speech shapes every speech family fills in: text to speech, and speech to text.

:class:`TextToSpeechPipeline` families implement ``synthesize`` (a generator of float32 audio segments) and say
their ``sample_rate``; the five stages around it are shared: the denoise stage is synthesis, one ``progress`` event
per segment, and with ``config.stream`` each segment goes out at once as ``audio_chunk`` events (16-bit PCM, base64,
``seq`` counting on across segments) of at most :data:`PACKET_MS` of audio each, which the API relays to streaming
clients one HTTP write per event. A family says which voices it has (:meth:`TextToSpeechPipeline.voices`) and
:meth:`TextToSpeechPipeline.check_voice` turns an unknown one into a 400 that lists them.
:class:`SpeechRecognitionPipeline` families implement ``transcribe`` on 16 kHz mono audio and write the transcript as
a text artifact.
"""

from __future__ import annotations

import abc
import base64
from collections.abc import Iterator
from typing import Any, ClassVar

from omnirt.contracts.errors import RequestValidationError
from omnirt.contracts.types import Artifact
from omnirt.models.base import BasePipeline, RunContext
from omnirt.runtime.audio import load_audio, pcm16, resample
from omnirt.runtime.export import write_text, write_wav

TTS_CONFIG = ("voice", "speed", "seed", "stream", "sample_rate", "output_dir", "model_path")
ASR_CONFIG = ("language", "output_dir", "model_path")
#: The longest ``audio_chunk`` a voice streams, in milliseconds of audio (OpenTalking re-chunks to 20 ms; IndexTTS
#: sent 20 ms): short enough that a client can start playing early, long enough to keep events per second modest.
PACKET_MS = 40


class TextToSpeechPipeline(BasePipeline):
    #: The longest ``audio_chunk`` of this voice in ms (0: one chunk per synthesised segment, as before packets
    #: existed; ``omnirt bench tts --compare`` sets it on the voice's class to measure the old behaviour).
    packet_ms: int = PACKET_MS

    def voices(self) -> tuple[str, ...] | None:
        """The voice names ``config.voice`` may take, the default first (None: open-ended, the engine decides)."""
        return None

    def check_voice(self, voice: str) -> str:
        """``voice`` if this engine has it, else a ``RequestValidationError`` (HTTP 400) listing the voices."""
        offered = self.voices()
        if offered is not None and voice not in offered:
            raise RequestValidationError(
                f"{self.spec.id} has no voice '{voice}'; its voices: {', '.join(offered)}.",
                details={"model": self.spec.id, "voice": voice, "voices": list(offered)},
            )
        return voice

    @property
    @abc.abstractmethod
    def sample_rate(self) -> int:
        """The engine's native sample rate."""

    @abc.abstractmethod
    def synthesize(self, text: str, config: dict[str, Any], inputs: dict[str, Any]) -> Iterator[Any]:
        """Yield mono float32 segments in [-1, 1] at ``sample_rate`` as they are ready.

        ``inputs`` are the request's other inputs (a reference voice ``audio``, ``reference_text``).
        """

    def prepare_conditions(self, ctx: RunContext) -> dict[str, Any]:
        text = str(ctx.request.inputs.get("prompt", "")).strip()
        # The output rate is fixed here, before synthesis: segments are resampled to it and the WAV written at it.
        ctx.config["sample_rate"] = int(ctx.config.get("sample_rate") or self.sample_rate)
        return {"text": text, "rate": ctx.config["sample_rate"]}

    def prepare_latents(self, ctx: RunContext, conditions: dict[str, Any]) -> None:
        return None

    def denoise_loop(self, ctx: RunContext, latents: Any, conditions: dict[str, Any]) -> list[Any]:
        rate = conditions["rate"]
        packet_bytes = max(1, rate * self.packet_ms // 1000) * 2 if self.packet_ms > 0 else 0
        segments, seq = [], 0
        for index, segment in enumerate(self.synthesize(conditions["text"], ctx.config, ctx.request.inputs)):
            audio = resample(segment, self.sample_rate, rate)
            segments.append(audio)
            if ctx.config.get("stream"):
                for packet in packets(pcm16(audio), packet_bytes):
                    ctx.emit(
                        "audio_chunk",
                        "denoise_loop",
                        keep=False,
                        seq=seq,
                        sample_rate=rate,
                        pcm_b64=base64.b64encode(packet).decode("ascii"),
                    )
                    seq += 1
            ctx.step(index, None)
        return segments

    def decode(self, ctx: RunContext, raw: list[Any]) -> Any:
        import numpy as np

        return np.concatenate(raw) if raw else np.zeros(0, np.float32)

    def export(self, ctx: RunContext, decoded: Any) -> list[Artifact]:
        return [write_wav(decoded, ctx.config["sample_rate"], ctx.output_dir / f"{self.spec.id}.wav")]


def packets(pcm: bytes, size: int) -> Iterator[bytes]:
    """``pcm`` in consecutive pieces of at most ``size`` bytes (``size`` 0: whole)."""
    if not size:
        if pcm:
            yield pcm
        return
    for start in range(0, len(pcm), size):
        yield pcm[start : start + size]


class SpeechRecognitionPipeline(BasePipeline):
    input_rate: ClassVar[int] = 16000

    @abc.abstractmethod
    def transcribe(self, samples: Any, config: dict[str, Any]) -> str:
        """The transcript of mono float32 samples at ``input_rate``."""

    def prepare_conditions(self, ctx: RunContext) -> dict[str, Any]:
        return {"audio": load_audio(ctx.request.inputs["audio"], sample_rate=self.input_rate)}

    def prepare_latents(self, ctx: RunContext, conditions: dict[str, Any]) -> None:
        return None

    def denoise_loop(self, ctx: RunContext, latents: Any, conditions: dict[str, Any]) -> str:
        text = self.transcribe(conditions["audio"], ctx.config)
        ctx.step(0, 1)
        return text

    def decode(self, ctx: RunContext, raw: str) -> str:
        return " ".join(raw.split())

    def export(self, ctx: RunContext, decoded: str) -> list[Artifact]:
        return [write_text(decoded, ctx.output_dir / f"{self.spec.id}.txt")]
