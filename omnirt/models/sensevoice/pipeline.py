"""SenseVoice-Small through FunASR (optional extra ``pip install funasr``): multilingual ASR with emotion and event
tags, which the transcript drops (``rich_transcription_postprocess``).

The FunASR ``AutoModel`` is built once, when a worker loads the model, and reused for every request (the earlier
OmniRT rebuilt it per request). Weights come from ``config.model_path``, ``<models dir>/sensevoice-small`` or the
ModelScope id ``iic/SenseVoiceSmall`` that FunASR itself resolves.
"""

from __future__ import annotations

import threading
from typing import Any

from omnirt.contracts.errors import DependencyUnavailableError, RequestValidationError
from omnirt.models.contracts import speech_contract
from omnirt.models.speech import SpeechRecognitionPipeline
from omnirt.registry.registry import register_model

LANGUAGES = ("auto", "zh", "en", "yue", "ja", "ko", "nospeech")


@register_model(
    id="sensevoice-small",
    task="audio2text",
    hub_id="iic/SenseVoiceSmall",
    resource_hint={"min_vram_gb": 2, "dtype": "fp32"},
    **speech_contract(
        "audio2text",
        defaults={"language": "auto", "use_itn": True, "batch_size_s": 60},
        extra_config=("use_itn", "batch_size_s"),
        tier="core",
        maturity="beta",
        summary="SenseVoice-Small via FunASR (optional extra): zh/en/yue/ja/ko ASR, built once per worker.",
    ),
)
class SenseVoice(SpeechRecognitionPipeline):
    def __init__(self, *, spec: Any, source: Any, backend: Any, dtype: str, **_: Any) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)
        try:
            from funasr import AutoModel
            from funasr.utils.postprocess_utils import rich_transcription_postprocess
        except ImportError as exc:
            raise DependencyUnavailableError("FunASR is not installed: pip install 'omnirt[sensevoice]'.") from exc
        device = str(backend.device())
        self.model = AutoModel(model=source.location, trust_remote_code=False, device=device, disable_update=True)
        self.postprocess = rich_transcription_postprocess
        self._lock = threading.Lock()

    def transcribe(self, samples: Any, config: dict[str, Any]) -> str:
        language = str(config.get("language") or "auto")
        if language not in LANGUAGES:
            raise RequestValidationError(f"sensevoice-small languages: {', '.join(LANGUAGES)}; got '{language}'.")
        with self._lock:
            result = self.model.generate(
                input=samples,
                cache={},
                language=language,
                use_itn=bool(config.get("use_itn", True)),
                batch_size_s=int(config.get("batch_size_s", 60)),
            )
        return " ".join(self.postprocess(item["text"]) for item in result)
