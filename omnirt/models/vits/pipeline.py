"""VITS / MMS-TTS: end-to-end text to speech with transformers' ``VitsModel``, one segment per sentence.

VITS maps characters (MMS-TTS) or phonemes (``vits-ljs``, through ``phonemizer`` and espeak) straight to a waveform:
text encoder, stochastic duration predictor, normalising flow and HiFi-GAN decoder in one forward pass. The duration
predictor and the prior sample noise, so ``seed`` seeds torch before each request for reproducible audio, and
``speed`` scales the checkpoint's ``speaking_rate`` (durations are divided by it). ``voice`` picks the speaker of a
multi-speaker checkpoint by index.

Text is split into sentences at ``.``, ``!`` and ``?``; each sentence is one forward pass and one segment, so a
streaming client hears the first sentence while the next is synthesised.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from omnirt.contracts.errors import (
    DependencyUnavailableError,
    RequestValidationError,
)
from omnirt.contracts.types import AdapterRef
from omnirt.models.contracts import speech_contract
from omnirt.models.speech import TextToSpeechPipeline
from omnirt.registry.registry import register_model
from omnirt.runtime.backends import Backend
from omnirt.runtime.weights import WeightsSource, load_errors

COMMON: dict[str, Any] = {"tier": "adjacent", "maturity": "beta"}
RESOURCES: dict[str, Any] = {"min_vram_gb": 1, "dtype": "fp32"}

# A sentence ends at a run of . ! or ? followed by whitespace (or the end of the text).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """The non-empty sentences of ``text``, each keeping its closing punctuation."""
    return [sentence.strip() for sentence in _SENTENCE_END.split(text) if sentence.strip()]


@register_model(
    id="vits-ljs",
    task="text2audio",
    hub_id="kakao-enterprise/vits-ljs",
    resource_hint=RESOURCES,
    **speech_contract(
        "text2audio",
        defaults={"speed": 1.0},
        summary="VITS trained on LJ Speech: one English female voice, 22.05 kHz (phonemizes with espeak).",
        **COMMON,
    ),
)
@register_model(
    id="mms-tts-eng",
    task="text2audio",
    hub_id="facebook/mms-tts-eng",
    resource_hint=RESOURCES,
    example='omnirt generate --task text2audio --model mms-tts-eng --prompt "Hello there. How are you?"',
    **speech_contract(
        "text2audio",
        defaults={"speed": 1.0},
        summary="Meta MMS-TTS English (VITS): character-level end-to-end speech, 16 kHz.",
        **COMMON,
    ),
)
class VitsFamily(TextToSpeechPipeline):
    def __init__(
        self,
        *,
        spec: Any,
        source: WeightsSource,
        backend: Backend,
        dtype: str,
        config: dict[str, Any],
        adapters: list[AdapterRef] | None = None,
    ) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)
        self.source = source
        self.model, self.tokenizer = self._load()
        self.base_speaking_rate = float(getattr(self.model, "speaking_rate", 1.0))
        self.device_placement = {"model": str(self.model.device)}

    def _load(self) -> tuple[Any, Any]:
        from omnirt.models.diffusers_pipeline import import_diffusers
        from omnirt.runtime.dtypes import torch_dtype

        import_diffusers()  # quiets the libraries' progress bars
        from transformers import AutoTokenizer, VitsModel

        location = self.source.location
        with load_errors(self.spec.id, location, "VitsModel"):
            model = VitsModel.from_pretrained(location, dtype=torch_dtype(self.dtype))
            tokenizer = AutoTokenizer.from_pretrained(location)
        return model.to(self.backend.device()).eval(), tokenizer

    @property
    def sample_rate(self) -> int:
        return int(self.model.config.sampling_rate)

    def speaker(self, voice: Any) -> dict[str, Any]:
        """``speaker_id`` for a multi-speaker checkpoint from ``voice`` (the speaker's index); single-speaker
        checkpoints (both registered ones) have one voice and ignore it."""
        speakers = int(getattr(self.model.config, "num_speakers", 1) or 1)
        if voice in (None, "") or speakers <= 1:
            return {}
        if not str(voice).isdigit() or int(voice) >= speakers:
            raise RequestValidationError(
                f"config.voice for '{self.spec.id}' is a speaker index in [0, {speakers - 1}], got {voice!r}.",
                details={"model": self.spec.id, "voice": voice},
            )
        return {"speaker_id": int(voice)}

    def synthesize(self, text: str, config: dict[str, Any], inputs: dict[str, Any]) -> Iterator[Any]:
        import numpy as np
        import torch

        if config.get("seed") is not None:
            torch.manual_seed(int(config["seed"]))
        if hasattr(self.model, "speaking_rate"):  # the checkpoint's own rate times the requested speed
            self.model.speaking_rate = self.base_speaking_rate * float(config.get("speed") or 1.0)
        extra = self.speaker(config.get("voice"))
        device = self.model.device
        for sentence in split_sentences(text):
            try:
                encoded = self.tokenizer(sentence, return_tensors="pt")
            except ImportError as exc:  # vits-ljs phonemizes through phonemizer + espeak
                raise DependencyUnavailableError(
                    f"The '{self.spec.id}' tokenizer needs a missing package: {exc}",
                    details={"model": self.spec.id},
                ) from exc
            if encoded["input_ids"].shape[-1] == 0:  # nothing the vocabulary can say (only punctuation)
                continue
            with torch.inference_mode():
                output = self.model(**{key: value.to(device) for key, value in encoded.items()}, **extra)
            yield output.waveform[0].float().cpu().numpy().astype(np.float32)
