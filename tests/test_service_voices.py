"""The service-backed voices are real clients of their services: vLLM-Omni (HTTP, streamed PCM, Bearer key,
reference voice as a data URL), SoulX-Podcast (multipart /generate), an IndexTTS service (streamed PCM), and CosyVoice
on Triton (gRPC streaming), each against a local fake speaking that protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import omnirt
from omnirt.contracts.errors import OmniRTError
from tests.support.fake_speech_services import FakeTriton, HttpSpeechServices

VOICES = ("vllm-omni-speech", "soulx-podcast-1.7b", "indextts", "cosyvoice3-triton-trtllm")


@pytest.fixture()
def fresh_voices() -> Any:
    """Service voices read their server address when loaded: unload them around each test."""
    from omnirt.workers.engine import get_default_engine

    for model in VOICES:
        get_default_engine().cache.evict(model)
    yield
    for model in VOICES:
        get_default_engine().cache.evict(model)


@pytest.fixture(scope="module")
def reference_voice(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("reference")
    result = omnirt.generate(
        {
            "task": "text2audio",
            "model": "hibari-tts",
            "backend": "cpu",
            "inputs": {"prompt": "This is my voice."},
            "config": {"output_dir": str(out)},
        }
    )
    return result.outputs[0].path


def speak(model: str, tmp_path: Path, events: list | None = None, **inputs: Any) -> Any:
    return omnirt.generate(
        {
            "task": "text2audio",
            "model": model,
            "backend": "cpu",
            "inputs": {"prompt": "Hello from the service.", **inputs},
            "config": {"stream": True, "output_dir": str(tmp_path)},
        },
        on_event=(events.append if events is not None else None),
    )


def test_vllm_omni_client(
    fresh_voices: Any, reference_voice: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = HttpSpeechServices(api_key="sekret")
    monkeypatch.setenv("OMNIRT_VLLM_OMNI_URL", services.url)
    monkeypatch.setenv("OMNIRT_VLLM_OMNI_API_KEY", "sekret")
    try:
        events: list = []
        result = speak("vllm-omni-speech", tmp_path, events, audio=reference_voice, reference_text="This is my voice.")
        sent = services.seen["vllm"]
        assert sent["input"] == "Hello from the service." and sent["response_format"] == "pcm" and sent["stream"]
        assert sent["ref_audio"].startswith("data:audio/wav;base64,") and sent["ref_text"] == "This is my voice."
        assert result.outputs[0].sample_rate == 24000
        assert result.outputs[0].duration_s == pytest.approx(0.04 * len("Hello from the service."), abs=0.01)
        assert sum(event.event == "audio_chunk" for event in events) >= 2  # streamed, not one blob
        monkeypatch.setenv("OMNIRT_VLLM_OMNI_API_KEY", "wrong")
        from omnirt.workers.engine import get_default_engine

        get_default_engine().cache.evict("vllm-omni-speech")
        with pytest.raises(OmniRTError, match="answered 401"):
            speak("vllm-omni-speech", tmp_path)
    finally:
        services.stop()


def test_soulx_podcast_and_indextts_clients(
    fresh_voices: Any, reference_voice: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = HttpSpeechServices()
    monkeypatch.setenv("OMNIRT_SOULX_PODCAST_URL", services.url)
    monkeypatch.setenv("OMNIRT_INDEXTTS_URL", services.url)
    try:
        podcast = speak("soulx-podcast-1.7b", tmp_path, audio=reference_voice, reference_text="This is my voice.")
        form = services.seen["podcast"]["form"]
        assert form["dialogue_text"] == ["Hello from the service."] and form["prompt_texts"] == ["This is my voice."]
        assert form["temperature"] == ["0.6"] and services.seen["podcast"]["files"] == [16000]
        assert podcast.outputs[0].sample_rate == 24000
        index = speak("indextts", tmp_path)
        assert services.seen["indextts"]["streaming"] is True and index.outputs[0].sample_rate == 16000
    finally:
        services.stop()


def test_cosyvoice_triton_grpc_stream(
    fresh_voices: Any, reference_voice: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    triton = FakeTriton(chunks=3)
    monkeypatch.setenv("OMNIRT_COSYVOICE_TRITON", f"127.0.0.1:{triton.port}")
    try:
        events: list = []
        result = speak(
            "cosyvoice3-triton-trtllm", tmp_path, events, audio=reference_voice, reference_text="This is my voice."
        )
        assert triton.seen["model"] == "cosyvoice3" and triton.seen["text"] == "Hello from the service."
        assert triton.seen["reference_len"] == triton.seen["reference_samples"] > 16000 * 0.5
        assert triton.seen["reference_text"] == "This is my voice."
        seq = [event.data["seq"] for event in events if event.event == "audio_chunk"]
        assert seq == list(range(len(seq))) and len(seq) > 3  # 3 streamed responses, each in 40 ms packets
        assert sum(event.event == "progress" for event in events) == 3  # one synthesised segment per response
        assert result.outputs[0].sample_rate == 24000
        with pytest.raises(OmniRTError, match="reference"):
            speak("cosyvoice3-triton-trtllm", tmp_path)
    finally:
        triton.stop()


def test_unreachable_service_is_a_clear_error(
    fresh_voices: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNIRT_VLLM_OMNI_URL", "http://127.0.0.1:9")
    with pytest.raises(OmniRTError) as info:
        speak("vllm-omni-speech", tmp_path)
    assert info.value.code == "service_unavailable" and "cannot reach http://127.0.0.1:9" in info.value.message
