"""Speech: real offline voices and recognition, the streaming text2audio routes (embedded and fleet), OpenTalking's
legacy TTS call, and the OpenAI audio routes with the official client."""

from __future__ import annotations

import io
import shutil
import wave

import numpy as np
import pytest
import requests

import omnirt
from tests.support.opentalking import OPENTALKING_TTS_BODY

SENTENCES = [
    "Please call me back tomorrow morning at nine.",
    "Open the window and let some fresh air in.",
    "The quick brown fox jumps over the lazy dog.",
]


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref = [word for word in "".join(c.lower() if c.isalnum() or c == " " else " " for c in reference).split()]
    hyp = [word for word in "".join(c.lower() if c.isalnum() or c == " " else " " for c in hypothesis).split()]
    distance = np.zeros((len(ref) + 1, len(hyp) + 1), dtype=int)
    distance[:, 0] = range(len(ref) + 1)
    distance[0, :] = range(len(hyp) + 1)
    for i in range(1, len(ref) + 1):
        for j in range(1, len(hyp) + 1):
            distance[i, j] = min(
                distance[i - 1, j] + 1, distance[i, j - 1] + 1, distance[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1])
            )
    return distance[len(ref), len(hyp)] / len(ref)


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm)
    return buffer.getvalue()


def test_hibari_speech_is_understood_by_pocketsphinx(tmp_path) -> None:
    errors = []
    for sentence in SENTENCES:
        speech = omnirt.generate(
            {
                "task": "text2audio",
                "model": "hibari-tts",
                "backend": "cpu",
                "inputs": {"prompt": sentence},
                "config": {"output_dir": str(tmp_path), "seed": 1},
            }
        )
        artifact = speech.outputs[0]
        assert artifact.mime == "audio/wav" and artifact.sample_rate == 24000 and artifact.duration_s > 1
        heard = omnirt.generate(
            {
                "task": "audio2text",
                "model": "pocketsphinx-en",
                "backend": "cpu",
                "inputs": {"audio": artifact.path},
                "config": {"output_dir": str(tmp_path)},
            }
        )
        assert heard.outputs[0].mime == "text/plain"
        errors.append(word_error_rate(sentence, open(heard.outputs[0].path).read()))
    assert sum(errors) / len(errors) <= 0.15, errors


def test_tts_streams_packets_of_at_most_40_ms_and_is_deterministic(tmp_path) -> None:
    import base64

    chunks = []
    request = {
        "task": "text2audio",
        "model": "hibari-tts",
        "backend": "cpu",
        "inputs": {"prompt": " ".join(SENTENCES)},
        "config": {"stream": True, "seed": 3, "sample_rate": 16000, "output_dir": str(tmp_path)},
    }
    first = omnirt.generate(request, on_event=chunks.append)
    audio = [event for event in chunks if event.event == "audio_chunk"]
    assert [event.data["seq"] for event in audio] == list(range(len(audio))) and audio[0].data["sample_rate"] == 16000
    packets = [base64.b64decode(event.data["pcm_b64"]) for event in audio]
    assert max(len(packet) for packet in packets) <= 0.04 * 16000 * 2
    with wave.open(first.outputs[0].path) as handle:  # the packets are the artifact, in order
        assert b"".join(packets) == handle.readframes(handle.getnframes())
    assert all(event.event != "audio_chunk" for event in first.metadata.events)  # chunks stay out of the report
    second = omnirt.generate(request)
    assert first.outputs[0].sha256 == second.outputs[0].sha256


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (.ci/run installs it)")
def test_espeak_fallback_speaks_other_languages(tmp_path) -> None:
    result = omnirt.generate(
        {
            "task": "text2audio",
            "model": "espeak-ng",
            "backend": "cpu",
            "inputs": {"prompt": "Bonjour tout le monde. Comment allez-vous?"},
            "config": {"voice": "fr", "output_dir": str(tmp_path)},
        }
    )
    assert result.outputs[0].sample_rate == 22050 and result.outputs[0].duration_s > 1
    with pytest.raises(omnirt.RequestValidationError):
        omnirt.generate(
            {
                "task": "text2audio",
                "model": "espeak-ng",
                "backend": "cpu",
                "inputs": {"prompt": "x"},
                "config": {"voice": "en; rm -rf /"},
            }
        )


def test_stream_route_streams_pcm_that_is_understood(service) -> None:
    with requests.post(
        f"{service.url}/v1/text2audio/stream",
        json={"text": SENTENCES[0], "model": "hibari-tts"},
        stream=True,
        timeout=120,
    ) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "audio/L16; rate=24000; channels=1"
        assert response.headers["x-audio-sample-rate"] == "24000"
        assert response.headers["x-omnirt-adapter-schema"] == "text2audio.service.v1"
        pcm = b"".join(response.iter_content(chunk_size=None))
    assert len(pcm) > 24000 * 2
    transcript = requests.post(
        f"{service.url}/v1/audio/transcriptions",
        files={"file": ("speech.wav", wav_bytes(pcm, 24000), "audio/wav")},
        data={"model": "pocketsphinx-en"},
        timeout=120,
    )
    assert transcript.status_code == 200
    assert word_error_rate(SENTENCES[0], transcript.json()["text"]) <= 0.2


def test_stream_route_wav_format_and_errors(service) -> None:
    wav = requests.post(
        f"{service.url}/v1/text2audio/stream",
        json={"text": "Short.", "model": "hibari-tts", "audio_format": "wav", "sample_rate": 16000},
        timeout=120,
    )
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF" and wav.headers["x-audio-sample-rate"] == "16000"
    cases = [
        ({"text": "", "model": "hibari-tts"}, 400, "invalid_request"),
        ({"text": "x", "model": "no-such-voice"}, 404, "model_not_found"),
        # no IndexTTS service runs here (embedded), and no worker serves its tier (fleet)
        (
            {"text": "x", "model": "indextts"},
            503,
            "service_unavailable" if service.mode == "embedded" else "no_capacity",
        ),
        ({"text": "x", "audio_format": "mp3"}, 400, "invalid_request"),
        ({"text": "x", "voice": "fenrir"}, 400, "invalid_request"),
    ]
    for body, status, code in cases:
        response = requests.post(f"{service.url}/v1/text2audio/stream", json=body, timeout=60)
        assert response.status_code == status and response.json()["error"]["code"] == code, response.text


def test_opentalking_legacy_tts_call(service) -> None:
    body = {"text": "Hello from OmniRT.", **OPENTALKING_TTS_BODY}
    response = requests.post(f"{service.url}/v1/text2audio/indextts", json=body, timeout=120)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("audio/L16")
    assert response.headers["x-audio-sample-rate"] == "16000"
    samples = np.frombuffer(response.content, "<i2")
    assert len(samples) > 16000 * 0.5 and np.abs(samples).max() > 1000


def test_speech_discovery_and_health(service) -> None:
    models = requests.get(f"{service.url}/v1/text2audio/models", timeout=10).json()
    assert models["adapter_schema"] == "text2audio.service.v1" and "hibari-tts" in models["models"]
    health = requests.get(f"{service.url}/health", timeout=10)
    assert health.status_code == 200 and health.json()["adapter_schema"] == "text2audio.service.v1"
    secured = service.start(api_keys=("k",))
    assert requests.get(f"{secured.url}/health", timeout=10).status_code == 200
    assert requests.get(f"{secured.url}/v1/text2audio/models", timeout=10).status_code == 401
    warm = requests.post(f"{service.url}/v1/text2audio/warmup", json={"model": "hibari-tts"}, timeout=120)
    assert warm.status_code == 200 and warm.json()["ok"] is True


def test_openai_audio_with_the_official_client(service) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{service.url}/v1", api_key="unused", max_retries=0)
    speech = client.audio.speech.create(model="hibari-tts", voice="alloy", input=SENTENCES[1], response_format="wav")
    audio = speech.read()
    assert audio[:4] == b"RIFF"
    with wave.open(io.BytesIO(audio)) as handle:
        assert handle.getframerate() == 24000
    text = client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", audio, "audio/wav"))
    assert word_error_rate(SENTENCES[1], text.text) <= 0.2
    sse = requests.post(
        f"{service.url}/v1/audio/speech",
        json={"model": "hibari-tts", "input": "One. Two.", "stream_format": "sse", "response_format": "pcm"},
        timeout=120,
    )
    kinds = [line for line in sse.text.splitlines() if line.startswith("data: ")]
    assert '"speech.audio.delta"' in kinds[0] and '"speech.audio.done"' in kinds[-1]


def test_speech_jobs_through_generate(service, tmp_path) -> None:
    made = requests.post(
        f"{service.url}/v1/generate",
        json={"task": "text2audio", "model": "hibari-tts", "inputs": {"prompt": "Job speech."}},
        timeout=120,
    ).json()
    artifact = made["outputs"][0]
    assert artifact["mime"] == "audio/wav"
    audio = requests.get(artifact["url"], timeout=10)
    assert audio.headers["Content-Type"] in ("audio/wav", "audio/x-wav")
    import base64

    url = "data:audio/wav;base64," + base64.b64encode(audio.content).decode()
    heard = requests.post(
        f"{service.url}/v1/generate",
        json={"task": "audio2text", "model": "pocketsphinx-en", "inputs": {"audio": url}},
        timeout=120,
    ).json()
    assert heard["outputs"][0]["mime"] == "text/plain"
    assert "speech" in requests.get(heard["outputs"][0]["url"], timeout=10).text


def test_curl_style_request_without_a_json_content_type(service) -> None:
    """`curl -d '{...}'` sends application/x-www-form-urlencoded; the JSON body is still read."""
    response = requests.post(
        f"{service.url}/v1/text2audio/stream",
        data='{"text":"Hello from OmniRT","model":"hibari-tts"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=120,
    )
    assert response.status_code == 200 and len(response.content) > 24000
