"""espeak-ng: formant synthesis in about a hundred languages, through the ``espeak-ng`` program (Debian package).

A multilingual fallback: robotic, but fast and small. It streams one segment per sentence. Without the program the
model is listed but a run fails with ``dependency_unavailable``.

Voices are espeak-ng's languages as ``espeak-ng --voices`` lists them (``en-us``, ``fr``, ...), optionally with one of
its variants after ``+`` (``en-us+f3``); anything else is a 400 listing them.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from omnirt.contracts.errors import DependencyUnavailableError, RequestValidationError
from omnirt.models.contracts import speech_contract
from omnirt.models.speech import TextToSpeechPipeline
from omnirt.registry.registry import register_model

SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s+")
VOICE_PATTERN = re.compile(r"^[A-Za-z0-9_+/-]{1,40}$")
OTHER_LANGUAGE = re.compile(r"\((\S+) \d+\)")


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in SENTENCE_END.split(text) if part.strip()]


@dataclass(frozen=True)
class EspeakVoices:
    languages: tuple[str, ...]  # what -v takes, the default (en-us) first: languages and their short aliases
    names: frozenset[str]  # everything -v takes, lower case: the languages and the voice files (gmw/en-us)
    variants: frozenset[str]  # what may follow + (m3, f2, klatt, ...), lower case


def read_voices(program: str) -> EspeakVoices:
    """The voices an ``espeak-ng`` program has, from ``--voices`` (columns Pty, Language, Age/Gender, VoiceName,
    File, then "(alias priority)" pairs) and ``--voices=variant``."""

    def rows(argument: str) -> list[str]:
        completed = subprocess.run([program, argument], capture_output=True, text=True, timeout=30, check=False)
        return completed.stdout.splitlines()[1:]

    languages, files = ["en-us"], []
    for line in rows("--voices"):
        columns = line.split()
        if len(columns) < 5:
            continue
        files.append(columns[4])
        for name in (columns[1], *OTHER_LANGUAGE.findall(line)):
            if name not in languages:
                languages.append(name)
    variants = frozenset(
        columns[4].rsplit("/", 1)[-1].lower()
        for columns in map(str.split, rows("--voices=variant"))
        if len(columns) >= 5
    )
    names = frozenset(name.lower() for name in (*languages, *files))
    return EspeakVoices(tuple(languages), names, variants)


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
        self._voices: EspeakVoices | None = None

    @property
    def sample_rate(self) -> int:
        return self.RATE

    def installed(self) -> EspeakVoices:
        """The program's voices, read once."""
        if self._voices is None:
            self._voices = read_voices(self.program)
        return self._voices

    def voices(self) -> tuple[str, ...]:
        return self.installed().languages

    def check_voice(self, voice: str) -> str:
        """A language (or a voice file), optionally ``+variant``; a 400 listing the languages otherwise."""
        installed = self.installed()
        languages = installed.languages
        language, _, variant = voice.partition("+")
        if language.lower() not in installed.names or (variant and variant.lower() not in installed.variants):
            raise RequestValidationError(
                f"espeak-ng has no voice '{voice}': use a language, optionally +variant; its languages: "
                f"{', '.join(languages)}.",
                details={
                    "model": self.spec.id,
                    "voice": voice,
                    "voices": list(languages),
                    "variants": sorted(installed.variants),
                },
            )
        return voice

    def synthesize(self, text: str, config: dict[str, Any], inputs: dict[str, Any]) -> Iterator[Any]:
        import numpy as np

        voice = str(config.get("voice") or "en-us")
        if not VOICE_PATTERN.match(voice):
            raise RequestValidationError(f"Invalid espeak-ng voice '{voice}'.")
        self.check_voice(voice)
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
