"""Speech packets: every streaming speech route sends at most 40 ms of audio per HTTP write, the first as soon as it
exists (hibari says a stream's first sentence as a short leading phrase, joined without a click), and OpenTalking's
``/v1/text2audio/indextts`` call runs the configured voice model with the voice it asks for."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import time

import numpy as np
import pytest
import requests

import omnirt
from tests.support.opentalking import OPENTALKING_TTS_BODY

LONG_TEXT = " ".join(
    [
        "Please call me back tomorrow morning at nine, because the meeting has moved.",
        "Open the window and let some fresh air in.",
        "The quick brown fox jumps over the lazy dog.",
        "We need to finish the report before the end of the day.",
        "The children played in the garden until it was dark.",
    ]
    * 3
)
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def max_packet(rate: int) -> float:
    return 0.04 * rate * 2  # bytes of 40 ms of 16-bit mono


def http_chunks(response: requests.Response) -> list[tuple[float, bytes]]:
    """(seconds since the request was sent, bytes) of each HTTP chunk as it arrives."""
    started = time.perf_counter() - response.elapsed.total_seconds()
    return [(time.perf_counter() - started, chunk) for chunk in response.raw.read_chunked(decode_content=False)]


def test_every_streaming_route_writes_packets_of_at_most_40_ms(service) -> None:
    routes = [
        ("/v1/text2audio/stream", {"text": "Open the window and let some fresh air in.", "model": "hibari-tts"}),
        ("/v1/text2audio/indextts", {"text": "Open the window and let some fresh air in.", **OPENTALKING_TTS_BODY}),
        ("/v1/audio/speech", {"input": "Open the window and let some fresh air in.", "response_format": "pcm"}),
    ]
    for path, body in routes:
        with requests.post(f"{service.url}{path}", json=body, stream=True, timeout=120) as response:
            assert response.status_code == 200, response.text
            rate = int(response.headers["x-audio-sample-rate"])
            chunks = [chunk for _, chunk in http_chunks(response)]
        assert len(chunks) > 25, path  # about 2 s of speech
        assert max(len(chunk) for chunk in chunks) <= max_packet(rate), path
        assert all(len(chunk) % 2 == 0 for chunk in chunks)  # whole samples, never a split one
    sse = requests.post(
        f"{service.url}/v1/audio/speech",
        json={"input": "Open the window.", "stream_format": "sse", "response_format": "pcm"},
        timeout=120,
    )
    deltas = [json.loads(line[6:]) for line in sse.text.splitlines() if line.startswith("data: ") and "delta" in line]
    assert len(deltas) > 10 and max(len(base64.b64decode(delta["audio"])) for delta in deltas) <= max_packet(24000)


def test_first_packet_arrives_long_before_a_long_text_is_synthesised(service) -> None:
    with requests.post(
        f"{service.url}/v1/text2audio/stream", json={"text": LONG_TEXT}, stream=True, timeout=120
    ) as response:
        assert response.status_code == 200
        arrivals = http_chunks(response)
    first_s, last_s = arrivals[0][0], arrivals[-1][0]
    audio_s = sum(len(chunk) for _, chunk in arrivals) / 2 / 24000
    assert audio_s > 40  # fifteen sentences
    assert first_s * 3 < last_s, (first_s, last_s)


def test_hibari_leading_phrase_is_short_and_joins_without_a_click(tmp_path) -> None:
    from omnirt.models.hibari_tts.pipeline import QUIET, leading_split
    from omnirt.workers.engine import get_default_engine

    assert leading_split("Well, I think that we should go now.") == ("Well,", "I think that we should go now.", 200)
    assert leading_split("The children played in the garden until it was dark.")[:2] == (
        "The children played",
        "in the garden until it was dark.",
    )
    assert leading_split("Hello there.") is None
    pipeline = get_default_engine().pipeline_for("hibari-tts", backend="cpu")
    sentence = "The children played in the garden until it was dark."
    whole = list(pipeline.synthesize(sentence, {"seed": 1}, {}))
    parts = list(pipeline.synthesize(sentence, {"seed": 1, "stream": True}, {}))
    assert len(whole) == 1 and len(parts) == 2
    assert len(parts[0]) < len(whole[0]) / 2  # the first audio needs well under half the sentence's synthesis
    for left, right in itertools.pairwise(parts):  # the join: both sides faded to silence
        assert abs(left[-1]) < QUIET and abs(right[0]) < QUIET
        assert np.abs(left[-240:]).max() < 0.05 and np.abs(right[:120]).max() < 0.05
    loud = np.flatnonzero(np.abs(parts[0]) > QUIET)
    assert loud[0] <= 0.05 * 24000  # the stream starts just before the voice, not after the model's padding
    joined = np.concatenate(parts)
    assert 0.8 < len(joined) / len(whole[0]) < 1.05  # the same speech: no lost words, no long added pause


def test_indextts_route_rejects_a_voice_the_model_lacks(service) -> None:
    rejected = requests.post(
        f"{service.url}/v1/text2audio/indextts",
        json={**OPENTALKING_TTS_BODY, "text": "Hi.", "voice": "fenrir"},
        timeout=60,
    )
    assert rejected.status_code == 400
    error = rejected.json()["error"]
    assert error["code"] == "invalid_request" and error["details"]["voices"] == ["heart"]
    assert "fenrir" in error["message"] and "heart" in error["message"]


@needs_espeak
@pytest.mark.parametrize("service", ["embedded"], indirect=True)  # espeak-ng's tier has no worker in the test fleet
def test_indextts_route_honours_the_voice_of_the_configured_model(service, tmp_path) -> None:
    server = service.start(indextts_route_model="espeak-ng")
    text = "Bonjour tout le monde."

    def route(voice: str) -> requests.Response:
        return requests.post(
            f"{server.url}/v1/text2audio/indextts",
            json={**OPENTALKING_TTS_BODY, "text": text, "voice": voice},
            timeout=60,
        )

    def direct(voice: str) -> bytes:
        result = omnirt.generate(
            {
                "task": "text2audio",
                "model": "espeak-ng",
                "backend": "cpu",
                "inputs": {"prompt": text},
                "config": {"voice": voice, "sample_rate": 16000, "output_dir": str(tmp_path)},
            }
        )
        import wave

        with wave.open(result.outputs[0].path) as handle:
            return handle.readframes(handle.getnframes())

    french, default = route("fr"), route("local-default")
    assert french.status_code == default.status_code == 200
    job = requests.get(f"{server.url}/v1/jobs/{french.headers['x-omnirt-job-id']}", timeout=10).json()
    assert job["model"] == "espeak-ng"  # OMNIRT_INDEXTTS_ROUTE_MODEL, whatever the body's "model" says
    assert french.headers["x-audio-sample-rate"] == "16000" and french.headers["Content-Type"].startswith("audio/L16")
    assert french.content == direct("fr") and default.content == direct("en-us") != french.content
    assert route("en-us+f3").content == direct("en-us+f3")
    unknown = route("klingon")
    assert unknown.status_code == 400
    details = unknown.json()["error"]["details"]
    assert {"en-us", "fr", "de"} <= set(details["voices"]) and details["voice"] == "klingon"


def test_bench_baseline_is_the_old_packets_and_is_undone(tmp_path) -> None:
    """``omnirt bench tts --compare``'s baseline: one packet per sentence, no leading phrase; restored after."""
    from omnirt.bench.tts import old_packets
    from omnirt.models.hibari_tts.pipeline import HibariTTS
    from omnirt.workers.engine import get_default_engine

    def packets() -> list[bytes]:
        events: list = []
        omnirt.generate(
            {
                "task": "text2audio",
                "model": "hibari-tts",
                "backend": "cpu",
                "inputs": {"prompt": "Open the window and let some fresh air in. Thank you."},
                "config": {"stream": True, "output_dir": str(tmp_path)},
            },
            on_event=events.append,
        )
        return [base64.b64decode(event.data["pcm_b64"]) for event in events if event.event == "audio_chunk"]

    with old_packets(get_default_engine().pipeline_for("hibari-tts", backend="cpu"), True):
        old = packets()
    assert len(old) == 2 and len(old[0]) > 24000 * 2  # a whole first sentence in one packet
    assert HibariTTS.packet_ms == 40 and HibariTTS.leading_phrase is True
    assert max(len(packet) for packet in packets()) <= max_packet(24000)
