"""OpenAI's model names with the official client, the operator's alias map over them, ``POST /v1/videos/generations``
(text and image to video on tiny Wan folders) and the ``WS /v1/realtime`` job wrapper, against the embedded server
(the realtime job flow also in front of the fleet).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.servers import ApiServer, wait_until
from tests.test_speech import SENTENCES, word_error_rate

NOOP = {"task": "text2image", "model": "bench-noop", "inputs": {"prompt": "x"}}
VIDEO = {"prompt": "a cat", "num_frames": 5, "fps": 8, "size": "32x32", "num_inference_steps": 2, "seed": 3}


@pytest.fixture(scope="module")
def servers(service_env: dict[str, str], service_dirs: dict[str, Path]) -> Iterator[Callable[..., ApiServer]]:
    """``servers(**overrides)``: embedded APIs with the test settings (no alias map unless given)."""
    from tests.conftest import service_settings

    started: list[ApiServer] = []

    def start(**overrides: Any) -> ApiServer:
        started.append(ApiServer(service_settings(None, service_dirs, **overrides)))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def url(servers: Callable[..., ApiServer]) -> str:
    return servers().url


def latest_job(url: str, model: str) -> dict[str, Any]:
    jobs = requests.get(f"{url}/v1/jobs", params={"model": model, "limit": 1}, timeout=10).json()["data"]
    assert jobs, f"no job ran {model}"
    return jobs[0]


# -- OpenAI's model names, as the official client sends them ---------------------------------------------------------


def test_official_client_with_openai_model_names(url: str) -> None:
    import openai
    from PIL import Image

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    spoken = client.audio.speech.with_raw_response.create(
        model="tts-1", voice="alloy", input=SENTENCES[1], response_format="wav"
    )
    assert spoken.headers["x-omnirt-model"] == "hibari-tts"
    audio = spoken.content
    assert audio[:4] == b"RIFF"
    heard = client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", audio, "audio/wav"))
    assert word_error_rate(SENTENCES[1], heard.text) <= 0.2
    assert latest_job(url, "pocketsphinx-en")["task"] == "audio2text"

    image = client.images.generate(model="dall-e-3", prompt="a cat", size="64x64", response_format="b64_json")
    png = Image.open(io.BytesIO(base64.b64decode(image.data[0].b64_json)))
    assert png.format == "PNG" and png.size == (64, 64)
    assert latest_job(url, "sd15")["request"]["model"] == "sd15"


def test_models_list_the_aliases_beside_their_models(url: str) -> None:
    plain = requests.get(f"{url}/v1/models", timeout=10).json()["data"]
    assert not any(entry["id"] in ("tts-1", "whisper-1", "dall-e-3") for entry in plain)
    listed = requests.get(f"{url}/v1/models", params={"include_aliases": "true"}, timeout=10).json()["data"]
    aliases = {entry["id"]: entry for entry in listed if "alias_of" in entry}
    assert aliases["tts-1"]["alias_of"] == "hibari-tts" and aliases["tts-1"]["task"] == "text2audio"
    assert aliases["gpt-4o-mini-tts"]["alias_of"] == "hibari-tts"
    assert aliases["whisper-1"]["alias_of"] == "pocketsphinx-en" and aliases["whisper-1"]["task"] == "audio2text"
    assert {aliases[name]["alias_of"] for name in ("dall-e-2", "dall-e-3", "gpt-image-1")} == {"sd15"}
    core = requests.get(f"{url}/v1/models", params={"include_aliases": "1", "tier": "core"}, timeout=10).json()
    assert all(entry["tier"] == "core" for entry in core["data"])


def test_operator_aliases_and_defaults_override_the_built_in_names(servers: Callable[..., ApiServer]) -> None:
    import openai

    server = servers(
        model_aliases={"tts-1": "espeak-ng", "house-style": "bench-noop"}, default_image_model="bench-noop"
    )
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    spoken = client.audio.speech.with_raw_response.create(model="tts-1", voice="onyx", input="Hello there.")
    assert spoken.headers["x-omnirt-model"] == "espeak-ng"
    assert spoken.content[:4] == b"RIFF"
    job = requests.get(f"{server.url}/v1/jobs/{spoken.headers['x-omnirt-job-id']}", timeout=10).json()
    assert job["request"]["config"]["voice"] == "en-us+m7"  # onyx in espeak-ng's table
    hd = client.audio.speech.with_raw_response.create(model="tts-1-hd", voice="nova", input="Hi.")
    assert hd.headers["x-omnirt-model"] == "hibari-tts"  # not in the operator's map: still the default voice
    assert hd.content[:4] == b"RIFF"
    client.images.generate(model="dall-e-2", prompt="x")  # OMNIRT_DEFAULT_IMAGE_MODEL
    assert latest_job(server.url, "bench-noop")["request"]["inputs"]["prompt"] == "x"
    response = requests.post(f"{server.url}/v1/generate", json={**NOOP, "model": "house-style"}, timeout=30)
    assert response.status_code == 200 and response.json()["metadata"]["model"] == "bench-noop"
    listed = requests.get(f"{server.url}/v1/models?include_aliases=true", timeout=10).json()["data"]
    aliases = {entry["id"]: entry["alias_of"] for entry in listed if "alias_of" in entry}
    assert aliases["tts-1"] == "espeak-ng" and aliases["house-style"] == "bench-noop"
    assert aliases["dall-e-3"] == "bench-noop"


# -- POST /v1/videos/generations ------------------------------------------------------------------------------------


def mp4_frames(data: bytes) -> list[Any]:
    import av

    with av.open(io.BytesIO(data)) as container:
        return list(container.decode(video=0))


@pytest.fixture(scope="module")
def wan(tiny_model: Callable[[str], Path]) -> None:
    """Tiny Wan 2.1 folders in the test models dir (beside sd15)."""
    tiny_model("wan2.1-t2v-14b")
    tiny_model("wan2.1-i2v-14b")


def test_text_to_video(url: str, wan: None) -> None:
    body = {**VIDEO, "model": "wan2.1-t2v-14b", "response_format": "b64_json"}
    response = requests.post(f"{url}/v1/videos/generations", json=body, timeout=120)
    assert response.status_code == 200, response.text
    frames = mp4_frames(base64.b64decode(response.json()["data"][0]["b64_json"]))
    assert len(frames) == 5 and (frames[0].width, frames[0].height) == (32, 32)
    job = latest_job(url, "wan2.1-t2v-14b")
    assert job["task"] == "text2video" and job["request"]["config"]["fps"] == 8


def test_image_to_video(url: str, wan: None, sample_image: Path) -> None:
    picture = base64.b64encode(sample_image.read_bytes()).decode("ascii")
    for image in (f"data:image/png;base64,{picture}", picture):  # a data: URL, or bare base64 of the PNG
        body = {**VIDEO, "model": "wan2.1-i2v-14b", "image": image}
        response = requests.post(f"{url}/v1/videos/generations", json=body, timeout=120)
        assert response.status_code == 200, response.text
        download = requests.get(response.json()["data"][0]["url"], timeout=10)
        assert download.headers["Content-Type"] == "video/mp4" and len(mp4_frames(download.content)) == 5
        assert latest_job(url, "wan2.1-i2v-14b")["task"] == "image2video"
    refused = requests.post(
        f"{url}/v1/videos/generations",
        json={**VIDEO, "model": "wan2.1-i2v-14b", "image": str(sample_image)},
        timeout=30,
    )
    assert refused.status_code == 400 and "OMNIRT_INPUT_ROOTS" in refused.json()["error"]["message"]
    mismatch = requests.post(
        f"{url}/v1/videos/generations", json={**VIDEO, "model": "wan2.1-t2v-14b", "image": picture}, timeout=30
    )
    assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == "invalid_request"


def test_video_route_is_in_the_openapi_document(url: str) -> None:
    document = requests.get(f"{url}/openapi.json", timeout=10).json()
    operation = document["paths"]["/v1/videos/generations"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert {"model", "prompt", "image", "num_frames", "fps", "response_format"} <= set(
        document["components"]["schemas"][schema]["properties"]
    )


# -- WS /v1/realtime ----------------------------------------------------------------------------------------------


class Realtime:
    """A client of ``WS /v1/realtime``: send JSON, read messages (keep-alives skipped)."""

    def __init__(self, url: str, **connect: Any) -> None:
        from simple_websocket import Client

        self.ws = Client.connect(url.replace("http", "ws") + "/v1/realtime", **connect)

    def send(self, message: Any) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def next(self, timeout: float = 30) -> dict[str, Any]:
        while True:
            raw = self.ws.receive(timeout=timeout)
            assert raw is not None, "no message in time"
            message = json.loads(raw)
            if message["type"] != "keep_alive":
                return message

    def until(self, kind: str) -> list[dict[str, Any]]:
        received = [self.next()]
        while received[-1]["type"] != kind:
            received.append(self.next())
        return received

    def close(self) -> None:
        if self.ws.connected:
            self.ws.close()


def test_realtime_runs_jobs_one_after_another(service: Any) -> None:
    """Embedded and in front of the fleet (the events then come through Redis)."""
    client = Realtime(service.url)
    try:
        client.send({"type": "response.create", "response": {**NOOP, "config": {"steps": 3}}})
        created = client.next()
        assert created["type"] == "response.created" and created["trace_id"]
        received = client.until("response.completed")
        events = [message["event"]["event"] for message in received if message["type"] == "response.event"]
        assert events[0] == "job_enqueued" and events[-1] == "job_finished" and events.count("progress") == 3
        assert received[-1]["job"]["id"] == created["job_id"] and received[-1]["job"]["state"] == "succeeded"
        client.send({"type": "generate", **NOOP})  # the request at the top level, the original's other spelling
        again = client.until("response.completed")
        assert again[0]["type"] == "response.created" and again[-1]["job"]["state"] == "succeeded"
    finally:
        client.close()


def test_realtime_cancels_and_refuses_a_second_job(service: Any) -> None:
    client = Realtime(service.url)
    try:
        client.send({"type": "response.create", "response": {**NOOP, "config": {"steps": 200, "step_ms": 50}}})
        job_id = client.next()["job_id"]
        while (message := client.next())["type"] != "response.event" or message["event"]["event"] != "progress":
            pass
        client.send({"type": "response.create", "response": NOOP})
        busy = client.until("error")[-1]
        assert busy["error"]["code"] == "conflict" and busy["error"]["details"]["job_id"] == job_id
        client.send({"type": "response.cancel"})
        received = client.until("response.completed")
        cancelled = next(message for message in received if message["type"] == "response.cancelled")
        assert cancelled == {"type": "response.cancelled", "job_id": job_id, "outcome": "requested"}
        assert received[-1]["job"]["state"] == "cancelled"
        steps = [
            m["event"]["data"]["step"]
            for m in received
            if m["type"] == "response.event" and "step" in m["event"]["data"]
        ]
        assert max(steps) < 200
        client.send({"type": "cancel"})
        assert client.next()["error"]["code"] == "not_found"  # nothing left to cancel
    finally:
        client.close()


@pytest.mark.parametrize(
    ("message", "code", "words"),
    [
        ("not json", "invalid_request", "JSON"),
        ("[1]", "invalid_request", "JSON object"),
        ("[" * 200 + "]" * 200, "invalid_request", "nested"),
        ({"type": "session.update"}, "invalid_request", "session.update"),
        ({"type": "response.create", "response": "sd15"}, "invalid_request", "response"),
        ({"type": "response.create", "response": {**NOOP, "model": "sd-15"}}, "invalid_request", "sd15"),
        ({"type": "response.create", "response": {**NOOP, "backend": 5}}, "invalid_request", "backend"),
        (
            {"type": "response.create", "response": {**NOOP, "config": {"output_dir": "/tmp"}}},
            "invalid_request",
            "output_dir",
        ),
    ],
)
def test_realtime_errors_leave_the_connection_usable(url: str, message: Any, code: str, words: str) -> None:
    before = requests.get(f"{url}/v1/jobs", timeout=10).json()["total"]
    client = Realtime(url)
    try:
        client.send(message)
        error = client.next()
        assert error["type"] == "error" and error["error"]["code"] == code and words in error["error"]["message"]
        client.send({"type": "response.create", "response": NOOP})
        assert client.until("response.completed")[-1]["job"]["state"] == "succeeded"
    finally:
        client.close()
    assert requests.get(f"{url}/v1/jobs", timeout=10).json()["total"] == before + 1


def test_realtime_applies_policy_and_keys_and_cancels_when_the_client_leaves(servers: Callable[..., ApiServer]) -> None:
    from simple_websocket import ConnectionError as WsConnectionError

    server = servers(api_keys=("s3cret",), models=("sd15",))
    with pytest.raises(WsConnectionError):
        Realtime(server.url)
    client = Realtime(server.url, headers={"Authorization": "Bearer s3cret"})
    try:
        client.send({"type": "response.create", "response": NOOP})
        assert client.next()["error"]["code"] == "model_not_enabled"
    finally:
        client.close()

    open_server = servers()
    leaving = Realtime(open_server.url)
    leaving.send({"type": "response.create", "response": {**NOOP, "config": {"steps": 400, "step_ms": 50}}})
    job_id = leaving.next()["job_id"]
    leaving.until("response.event")
    leaving.close()

    def cancelled() -> bool:
        return requests.get(f"{open_server.url}/v1/jobs/{job_id}", timeout=10).json()["state"] == "cancelled"

    wait_until(cancelled, timeout=15)
