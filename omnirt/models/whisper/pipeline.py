"""Whisper: speech to text with transformers' ``WhisperForConditionalGeneration`` and ``WhisperProcessor``.

The audio (16 kHz mono, from :class:`~omnirt.models.speech.SpeechRecognitionPipeline`) is cut into Whisper's 30 s
windows; each window becomes a log-mel spectrogram (the checkpoint's own feature extractor: 80 bins for small, 128 for
large-v3), and the windows are decoded by ``generate`` in batches of eight, with the decoder prompt
``<|startoftranscript|><|language|><|transcribe|><|notimestamps|>``. The window transcripts are joined with spaces
(a word cut at a window edge may be split or lost; there is no overlap).

``language`` (default ``en``) forces the language token; an empty value lets Whisper detect it. ``max_new_tokens``
caps each window's transcript; it defaults to, and never exceeds, what the decoder can hold after the prompt.
"""

from __future__ import annotations

import logging
from typing import Any

from omnirt.contracts.errors import RequestValidationError
from omnirt.contracts.types import AdapterRef
from omnirt.models.contracts import speech_contract
from omnirt.models.speech import SpeechRecognitionPipeline
from omnirt.registry.registry import register_model
from omnirt.runtime.backends import Backend
from omnirt.runtime.weights import WeightsSource, load_errors

COMMON: dict[str, Any] = {"tier": "adjacent", "maturity": "beta", "extra_config": ("max_new_tokens",)}
WINDOW_S = 30
WINDOWS_PER_BATCH = 8
# <|startoftranscript|>, the language, the task and <|notimestamps|> precede the transcript in the decoder.
PROMPT_TOKENS = 4


class _GenerateNoticeFilter(logging.Filter):
    """Drop two notices transformers' Whisper ``generate`` raises about its own arguments on every call.

    Whisper's ``generate`` fills the generation config (``max_length`` included) and then hands it to the generic
    ``generate`` together with its suppress-token arguments; the generic one then warns that ``max_new_tokens`` and
    ``max_length`` are both set, and that a config came with arguments. Neither is something a caller can avoid.
    """

    NOTICES = ("seem to have been set. `max_new_tokens` will take precedence", "together with generation-related")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(notice in message for notice in self.NOTICES)


def quiet_generate_notices() -> None:
    generate_logger = logging.getLogger("transformers.generation.utils")
    if not any(isinstance(existing, _GenerateNoticeFilter) for existing in generate_logger.filters):
        generate_logger.addFilter(_GenerateNoticeFilter())


@register_model(
    id="whisper-large-v3",
    task="audio2text",
    hub_id="openai/whisper-large-v3",
    resource_hint={"min_vram_gb": 4, "dtype": "fp16"},
    **speech_contract(
        "audio2text",
        defaults={"language": "en"},
        summary="OpenAI Whisper large-v3 (1.55B): multilingual speech recognition, 128 mel bins.",
        **COMMON,
    ),
)
@register_model(
    id="whisper-small",
    task="audio2text",
    hub_id="openai/whisper-small",
    resource_hint={"min_vram_gb": 1, "dtype": "fp32"},
    example="omnirt generate --task audio2text --model whisper-small --audio speech.wav",
    **speech_contract(
        "audio2text",
        defaults={"language": "en"},
        summary="OpenAI Whisper small (244M): multilingual speech recognition.",
        **COMMON,
    ),
)
class WhisperFamily(SpeechRecognitionPipeline):
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
        self.model, self.processor = self._load()
        self.device_placement = {"model": str(self.model.device)}

    def _load(self) -> tuple[Any, Any]:
        from omnirt.models.diffusers_pipeline import import_diffusers
        from omnirt.runtime.dtypes import torch_dtype

        import_diffusers()  # quiets the libraries' progress bars
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        location = self.source.location
        with load_errors(self.spec.id, location, "Whisper"):
            model = WhisperForConditionalGeneration.from_pretrained(location, dtype=torch_dtype(self.dtype))
            processor = WhisperProcessor.from_pretrained(location)
        quiet_generate_notices()
        return model.to(self.backend.device()).eval(), processor

    def max_new_tokens(self, config: dict[str, Any]) -> int:
        room = int(self.model.config.max_target_positions) - PROMPT_TOKENS
        requested = config.get("max_new_tokens")
        if requested is None:
            return room
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise RequestValidationError(f"config.max_new_tokens must be an integer >= 1, got {requested!r}.")
        return min(requested, room)

    def language_token(self, language: str) -> str | None:
        """The checkpoint's token for ``language`` (a code, an English name or the token itself), or a clear error.

        ``None`` for an English-only checkpoint, which has no language tokens to force.
        """
        from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

        lang_to_id = getattr(self.model.generation_config, "lang_to_id", None) or {}
        if not lang_to_id:
            return None
        name = language.strip().lower()
        code = TO_LANGUAGE_CODE.get(name, name)
        token = name if name in lang_to_id else f"<|{code}|>"
        if token not in lang_to_id:
            known = sorted(key.strip("<|>") for key in lang_to_id)
            raise RequestValidationError(
                f"config.language {language!r} is not a language '{self.spec.id}' knows; one of: {', '.join(known)}.",
                details={"model": self.spec.id, "language": language},
            )
        return token

    def transcribe(self, samples: Any, config: dict[str, Any]) -> str:
        import numpy as np
        import torch

        window = WINDOW_S * self.input_rate
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        windows = [samples[start : start + window] for start in range(0, max(len(samples), 1), window)]
        windows = [chunk if len(chunk) else np.zeros(self.input_rate // 10, np.float32) for chunk in windows]
        kwargs: dict[str, Any] = {"task": "transcribe", "max_new_tokens": self.max_new_tokens(config)}
        language = self.language_token(str(config["language"])) if config.get("language") else None
        if language is not None:
            kwargs["language"] = language
        texts: list[str] = []
        for first in range(0, len(windows), WINDOWS_PER_BATCH):
            batch = windows[first : first + WINDOWS_PER_BATCH]
            features = self.processor.feature_extractor(batch, sampling_rate=self.input_rate, return_tensors="pt")
            input_features = features.input_features.to(self.model.device, dtype=self.model.dtype)
            with torch.inference_mode():
                tokens = self.model.generate(input_features, **kwargs)
            texts.extend(self.processor.batch_decode(tokens, skip_special_tokens=True))
        return " ".join(text.strip() for text in texts if text.strip())
