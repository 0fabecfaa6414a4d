"""The transformers speech families end to end on tiny random weights: VITS / MMS-TTS (text2audio) and Whisper
(audio2text), built with ``make_tiny`` and run through the engine, as a user's request would be."""

from __future__ import annotations

import base64
import math
import struct
import wave
from pathlib import Path
from typing import Any

import pytest

import omnirt.models.vits
import omnirt.models.whisper  # noqa: F401 - registers the families until omnirt.models imports them
from omnirt.contracts.types import GenerateRequest
from omnirt.models.tiny_common import make_tiny
from omnirt.workers.engine import Engine

TTS_MODELS = ("mms-tts-eng", "vits-ljs")
ASR_MODELS = ("whisper-small", "whisper-large-v3")
PROMPT = "Hello there. How are you?"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("tiny-speech")
    built: dict[str, Path] = {}

    def build(model_id: str) -> Path:
        if model_id not in built:
            built[model_id] = make_tiny(model_id, root / model_id)
        return built[model_id]

    return build


def _run(tmp_path: Path, task: str, model: str, inputs: dict[str, Any], config: dict[str, Any], **kwargs: Any) -> Any:
    request = GenerateRequest(task=task, model=model, backend="cpu", inputs=inputs, config=config)
    return Engine(output_dir=tmp_path / "outputs").run(request, **kwargs)


def _read_wav(path: str) -> tuple[int, bytes]:
    with wave.open(path, "rb") as handle:
        assert handle.getnchannels() == 1
        assert handle.getsampwidth() == 2
        return handle.getframerate(), handle.readframes(handle.getnframes())


@pytest.mark.parametrize("model", TTS_MODELS)
def test_tts_writes_a_wav_at_the_model_rate(model: str, tiny_folder: Any, tmp_path: Path) -> None:
    folder = tiny_folder(model)
    result = _run(tmp_path, "text2audio", model, {"prompt": PROMPT}, {"model_path": str(folder), "seed": 1})
    assert len(result.outputs) == 1
    artifact = result.outputs[0]
    assert artifact.mime == "audio/wav"
    rate, frames = _read_wav(artifact.path)
    assert rate == 16000 == artifact.sample_rate  # the tiny model's config.sampling_rate
    assert len(frames) // 2 > 0
    assert artifact.duration_s > 0
    assert result.metadata.error is None


@pytest.mark.parametrize("model", TTS_MODELS)
def test_tts_streams_short_packets_per_sentence_reproducibly(model: str, tiny_folder: Any, tmp_path: Path) -> None:
    folder = tiny_folder(model)
    config = {"model_path": str(folder), "seed": 7, "stream": True}
    events: list[Any] = []
    first = _run(tmp_path / "a", "text2audio", model, {"prompt": PROMPT}, config, on_event=events.append)
    chunks = [event for event in events if event.event == "audio_chunk"]
    assert [chunk.data["seq"] for chunk in chunks] == list(range(len(chunks)))
    assert sum(event.event == "progress" for event in events) == 2  # one synthesised segment per sentence
    streamed = b""
    for chunk in chunks:
        assert chunk.data["sample_rate"] == 16000
        pcm = base64.b64decode(chunk.data["pcm_b64"])
        assert 0 < len(pcm) <= 0.04 * 16000 * 2 and len(pcm) % 2 == 0  # packets of at most 40 ms
        samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
        assert all(-32768 <= sample <= 32767 for sample in samples)
        streamed += pcm
    # Chunks stay out of the run report; the WAV is the chunks end to end.
    assert not [event for event in first.metadata.events if event.event == "audio_chunk"]
    _, frames = _read_wav(first.outputs[0].path)
    assert frames == streamed

    second = _run(tmp_path / "b", "text2audio", model, {"prompt": PROMPT}, config)
    assert Path(second.outputs[0].path).read_bytes() == Path(first.outputs[0].path).read_bytes()


def _sine_wav(path: Path, *, seconds: float = 1.0, rate: int = 16000, hz: float = 440.0) -> Path:
    count = int(seconds * rate)
    samples = [int(0.4 * 32767 * math.sin(2 * math.pi * hz * index / rate)) for index in range(count)]
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(struct.pack(f"<{count}h", *samples))
    return path


@pytest.mark.parametrize("model", ASR_MODELS)
def test_asr_writes_a_transcript(model: str, tiny_folder: Any, tmp_path: Path) -> None:
    folder = tiny_folder(model)
    audio = _sine_wav(tmp_path / "tone.wav")
    result = _run(tmp_path, "audio2text", model, {"audio": str(audio)}, {"model_path": str(folder)})
    assert len(result.outputs) == 1
    artifact = result.outputs[0]
    assert artifact.mime == "text/plain"
    assert Path(artifact.path).is_file()
    assert Path(artifact.path).read_text(encoding="utf-8").endswith("\n")  # random weights: the words are noise
    assert result.metadata.config_resolved["language"] == "en"


def test_asr_rejects_a_language_the_checkpoint_lacks(tiny_folder: Any, tmp_path: Path) -> None:
    from omnirt.contracts.errors import RequestValidationError

    folder = tiny_folder("whisper-small")
    audio = _sine_wav(tmp_path / "tone.wav", seconds=0.5)
    with pytest.raises(RequestValidationError, match="language"):
        _run(
            tmp_path,
            "audio2text",
            "whisper-small",
            {"audio": str(audio)},
            {"model_path": str(folder), "language": "fr"},
        )
