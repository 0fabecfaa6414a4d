"""espeak-ng: formant synthesis in about a hundred languages, through the ``espeak-ng`` program (Debian package).

A multilingual fallback: robotic, but fast and small. It streams one segment per sentence. Without the program the
model is listed but a run fails with ``dependency_unavailable``.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import wave
from collections.abc import Iterator
from typing import Any

from omnirt.contracts.errors import DependencyUnavailableError, RequestValidationError
from omnirt.models.contracts import speech_contract
from omnirt.models.speech import TextToSpeechPipeline
from omnirt.registry.registry import register_model

SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s+")
VOICE_PATTERN = re.compile(r"^[A-Za-z0-9_+-]{1,40}$")


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in SENTENCE_END.split(text) if part.strip()]


@register_model(
    id="espeak-ng",
    task="text2audio",
    weightless=True,
    resource_hint={"min_vram_gb": 0},
    **speech_contract(
        "text2audio",
        defaults={"voice": "en-us", "speed": 1.0},
        tier="adjacent",
        maturity="stable",
        summary="espeak-ng formant synthesis: many languages, tiny and fast; needs the espeak-ng program.",
        backend_status={"cpu": "supported"},
    ),
)
class EspeakTTS(TextToSpeechPipeline):
    RATE = 22050

    def __init__(self, *, spec: Any, backend: Any, dtype: str, **_: Any) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)
        self.program = shutil.which("espeak-ng")
        if self.program is None:
            raise DependencyUnavailableError("espeak-ng is not installed (Debian: apt-get install espeak-ng).")

    @property
    def sample_rate(self) -> int:
        return self.RATE

    def synthesize(self, text: str, config: dict[str, Any], inputs: dict[str, Any]) -> Iterator[Any]:
        import numpy as np

        voice = str(config.get("voice") or "en-us")
        if not VOICE_PATTERN.match(voice):
            raise RequestValidationError(f"Invalid espeak-ng voice '{voice}'.")
        words_per_minute = str(int(175 * float(config.get("speed") or 1.0)))
        for sentence in split_sentences(text):
            completed = subprocess.run(
                [self.program, "-v", voice, "-s", words_per_minute, "--stdout", sentence],
                capture_output=True,
                timeout=60,
                check=False,
            )
            if completed.returncode != 0:
                raise RequestValidationError(f"espeak-ng failed: {completed.stderr.decode(errors='replace').strip()}")
            with wave.open(io.BytesIO(completed.stdout)) as handle:
                frames = handle.readframes(handle.getnframes())
                rate = handle.getframerate()
            samples = np.frombuffer(frames, "<i2").astype(np.float32) / 32768.0
            if rate != self.RATE:
                from omnirt.runtime.audio import resample

                samples = resample(samples, rate, self.RATE)
            yield samples
