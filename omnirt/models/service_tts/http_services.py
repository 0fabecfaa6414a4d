"""Voices served over HTTP by their own servers: vLLM-Omni's OpenAI-style ``/v1/audio/speech``, SoulX-Podcast's
multipart ``/generate``, and an IndexTTS service's streaming ``/v1/text2audio/indextts``.

Each adapter is the real client of that protocol (``requests``); the server address comes from the server's
settings (``OMNIRT_VLLM_OMNI_URL``, ``OMNIRT_SOULX_PODCAST_URL``, ``OMNIRT_INDEXTTS_URL``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from omnirt.models.contracts import speech_contract
from omnirt.models.service_tts.common import (
    SERVICE_CONFIG,
    ServiceUnavailableError,
    pcm_segments,
    reference_wav,
    service_url,
    wav_samples,
)
from omnirt.models.speech import TextToSpeechPipeline
from omnirt.registry.registry import register_model
from omnirt.settings import Settings


class HttpServiceTTS(TextToSpeechPipeline):
    url_option = ""  # the setting that names this voice's server
    default_rate = 24000

    def __init__(self, *, spec: Any, backend: Any, dtype: str, **_: Any) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)
        import requests

        self.session = requests.Session()
        self.base = service_url(self.url_option)
        self._rate = self.default_rate
        self.current_request: Any = None

    @property
    def sample_rate(self) -> int:
        return self._rate

    def post(self, path: str, *, timeout: float, **kwargs: Any) -> Any:
        import requests

        try:
            response = self.session.post(f"{self.base}{path}", timeout=timeout, **kwargs)
        except requests.RequestException as exc:
            raise ServiceUnavailableError(f"{self.spec.id}: cannot reach {self.base}: {exc}") from exc
        if response.status_code >= 400:
            raise ServiceUnavailableError(
                f"{self.spec.id}: {self.base}{path} answered {response.status_code}: {response.text[:300]}",
                details={"status": response.status_code},
            )
        return response


@register_model(
    id="vllm-omni-speech",
    task="text2audio",
    weightless=True,
    **speech_contract(
        "text2audio",
        defaults={"speed": 1.0},
        extra_config=("timeout",),
        optional_inputs=("audio", "reference_text"),
        tier="core",
        maturity="beta",
        service_adapter="text2audio.service.v1",
        summary="vLLM-Omni speech (Qwen3-Omni TTS and friends) through its /v1/audio/speech; OMNIRT_VLLM_OMNI_URL.",
    ),
)
class VllmOmniSpeech(HttpServiceTTS):
    url_option = "vllm_omni_url"

    def synthesize(self, text: str, config: dict[str, Any], inputs: dict[str, Any]) -> Iterator[Any]:
        body: dict[str, Any] = {
            "model": Settings.value("vllm_omni_model"),
            "input": text,
            "response_format": "pcm",
            "stream": True,
            "speed": float(config.get("speed", 1.0)),
        }
        if config.get("voice"):
            body["voice"] = config["voice"]
        if inputs.get("audio") is not None:
            body["ref_audio"] = "data:audio/wav;base64," + base64.b64encode(reference_wav(inputs["audio"])).decode()
        if inputs.get("reference_text"):
            body["ref_text"] = inputs["reference_text"]
        headers = {}
        key = Settings.value("vllm_omni_api_key")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        response = self.post(
            "/v1/audio/speech", json=body, headers=headers, stream=True, timeout=float(config.get("timeout", 300))
        )
        self._rate = int(response.headers.get("x-audio-sample-rate") or self.default_rate)
        yield from pcm_segments(response.iter_content(chunk_size=None))


@register_model(
    id="soulx-podcast-1.7b",
    task="text2audio",
    weightless=True,
    **speech_contract(
        "text2audio",
        defaults={"temperature": 0.6, "top_k": 100, "top_p": 0.9, "repetition_penalty": 1.25},
        extra_config=SERVICE_CONFIG,
        optional_inputs=("audio", "reference_text"),
        tier="core",
        maturity="beta",
        summary="SoulX-Podcast 1.7B dialogue voices through its multipart /generate; OMNIRT_SOULX_PODCAST_URL.",
    ),
)
class SoulXPodcast(HttpServiceTTS):
    url_option = "soulx_podcast_url"

    def synthesize(self, text: str, config: dict[str, Any], inputs: dict[str, Any]) -> Iterator[Any]:
        data: list[tuple[str, str]] = [("dialogue_text", text)]
        for name in ("temperature", "top_k", "top_p", "repetition_penalty", "seed"):
            if config.get(name) is not None:
                data.append((name, str(config[name])))
        files = []
        references = inputs.get("audio")
        for index, reference in enumerate(references if isinstance(references, list) else [references]):
            if reference is not None:
                files.append(("prompt_audio", (f"speaker{index}.wav", reference_wav(reference), "audio/wav")))
        texts = inputs.get("reference_text")
        for prompt_text in texts if isinstance(texts, list) else [texts]:
            if prompt_text:
                data.append(("prompt_texts", prompt_text))
        response = self.post("/generate", data=data, files=files or None, timeout=float(config.get("timeout", 300)))
        samples, self._rate = wav_samples(response.content)
        yield samples


@register_model(
    id="indextts",
    task="text2audio",
    weightless=True,
    **speech_contract(
        "text2audio",
        defaults={},
        extra_config=("timeout",),
        tier="adjacent",
        maturity="beta",
        summary="IndexTTS-2 through a running IndexTTS streaming service; OMNIRT_INDEXTTS_URL.",
    ),
)
class IndexTTSService(HttpServiceTTS):
    url_option = "indextts_url"
    default_rate = 16000

    def synthesize(self, text: str, config: dict[str, Any], inputs: dict[str, Any]) -> Iterator[Any]:
        body = {
            "text": text,
            "voice": config.get("voice") or "local-default",
            "model": "IndexTeam/IndexTTS-2",
            "sample_rate": self.default_rate,
            "streaming": True,
            "streaming_mode": "token_window",
        }
        response = self.post(
            "/v1/text2audio/indextts", json=body, stream=True, timeout=float(config.get("timeout", 180))
        )
        self._rate = int(response.headers.get("x-audio-sample-rate") or self.default_rate)
        yield from pcm_segments(response.iter_content(chunk_size=None))
