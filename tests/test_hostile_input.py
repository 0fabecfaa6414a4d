"""Hostile and malformed input (issue 8): every case is a 4xx JSON error, answered at once, before any job exists.

Each case runs against one API per module, embedded and in front of the fleet: the answer must carry the
``{"error": {"code", "message", "details"}}`` shape, ``GET /v1/jobs`` must count no new job, and the server must still
answer ``/healthz``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

TIMEOUT_S = 20  # far below the sync timeout: a request that queues a job it cannot finish fails here, not hangs
LONG_NAME = "m" * 201
NESTED_990 = "[" * 990 + "]" * 990
JSON_ROUTES = (
    "/v1/generate",
    "/v1/images/generations",
    "/v1/text2audio/stream",
    "/v1/text2audio/indextts",
    "/v1/text2audio/warmup",
    "/v1/audio/speech",
    "/v1/videos/generations",
)


@pytest.fixture(scope="module", params=["embedded", "fleet"])
def api_url(
    request: pytest.FixtureRequest, service_env: dict[str, str], service_dirs: dict[str, Path]
) -> Iterator[str]:
    """One API for the whole module (the cases are many and cheap), embedded or in front of the session's fleet."""
    from tests.conftest import service_settings
    from tests.support.servers import ApiServer

    redis_url = None
    if request.param == "fleet":
        redis_url = request.getfixturevalue("fleet_redis").url
        request.getfixturevalue("fleet_worker")
    server = ApiServer(service_settings(redis_url, service_dirs))
    yield server.url
    server.stop()


def job_count(url: str) -> int:
    response = requests.get(f"{url}/v1/jobs", timeout=TIMEOUT_S)
    assert response.status_code == 200, response.text
    return response.json()["total"]


def assert_rejected(url: str, send: Any, *, status: int = 400, code: str = "invalid_request") -> dict[str, Any]:
    """Call ``send()``; its answer must be the JSON error ``status``/``code``, and no job may have been recorded."""
    before = job_count(url)
    response = send()
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and isinstance(error["message"], str) and isinstance(error["details"], dict)
    assert job_count(url) == before, "a rejected request recorded a job"
    assert requests.get(f"{url}/healthz", timeout=TIMEOUT_S).status_code == 200
    return error


def post_json(url: str, path: str, body: Any) -> requests.Response:
    return requests.post(f"{url}{path}", json=body, timeout=TIMEOUT_S)


def post_raw(url: str, path: str, data: str | bytes) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    payload = data.encode() if isinstance(data, str) else data
    return requests.post(f"{url}{path}", data=payload, headers=headers, timeout=TIMEOUT_S)


def png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 100, 50)).save(buffer, format="PNG")
    return buffer.getvalue()


# -- 1. The OpenAI image routes validate like /v1/generate (a bad backend used to leave a job running forever) ------


@pytest.mark.parametrize("backend", [5, "gpu", {}, ["cpu"], True])
def test_image_generation_rejects_a_bad_backend(api_url: str, backend: Any) -> None:
    body = {"model": "sd15", "prompt": "x", "backend": backend}
    error = assert_rejected(api_url, lambda: post_json(api_url, "/v1/images/generations", body))
    assert "backend" in error["message"]


# -- 2. Image options are typed and bounded, in JSON and in the edit form -------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", "abc"),
        ("n", []),
        ("n", 2.5),
        ("n", 0),
        ("n", 17),
        ("seed", "x"),
        ("seed", -1),
        ("num_inference_steps", 2.5),
        ("num_inference_steps", "x"),
        ("num_inference_steps", 0),
        ("guidance_scale", "x"),
        ("guidance_scale", -1),
        ("size", "huge"),
        ("size", 64),
        ("response_format", "xml"),
        ("output_format", "jpeg"),
        ("colour", "red"),
    ],
)
def test_image_generation_options_are_typed(api_url: str, field: str, value: Any) -> None:
    body = {"model": "sd15", "prompt": "x", field: value}
    error = assert_rejected(api_url, lambda: post_json(api_url, "/v1/images/generations", body))
    assert field in error["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", "abc"),
        ("n", "[]"),
        ("n", "2.5"),
        ("seed", "x"),
        ("num_inference_steps", "2.5"),
        ("num_inference_steps", "x"),
        ("guidance_scale", "x"),
        ("backend", "gpu"),
        ("prompt", "a\x00b"),
        ("model", LONG_NAME),
    ],
)
def test_image_edit_form_fields_are_typed(api_url: str, field: str, value: str) -> None:
    form = {"model": "sd15", "prompt": "a dog", field: value}

    def send() -> requests.Response:
        files = {"image": ("in.png", png_bytes(), "image/png")}
        return requests.post(f"{api_url}/v1/images/edits", data=form, files=files, timeout=TIMEOUT_S)

    error = assert_rejected(api_url, send)
    assert field in error["message"]


# -- 2b. The video route's options are typed and bounded, and its image is a picture, never a server file -----------

VIDEO = {"model": "wan2.1-t2v-14b", "prompt": "x"}
I2V = {**VIDEO, "model": "wan2.1-i2v-14b"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**VIDEO, "num_frames": "x"}, "num_frames"),
        ({**VIDEO, "num_frames": 0}, "num_frames"),
        ({**VIDEO, "num_frames": 2.5}, "num_frames"),
        ({**VIDEO, "num_frames": 100_000}, "num_frames"),
        ({**VIDEO, "fps": 0}, "fps"),
        ({**VIDEO, "fps": "fast"}, "fps"),
        ({**VIDEO, "size": "huge"}, "size"),
        ({**VIDEO, "size": "99999x99999"}, "99999"),
        ({**VIDEO, "seed": -1}, "seed"),
        ({**VIDEO, "num_inference_steps": 0}, "num_inference_steps"),
        ({**VIDEO, "response_format": "mp4"}, "response_format"),
        ({**VIDEO, "backend": "gpu"}, "backend"),
        ({**I2V, "image": 5}, "image"),
        ({**I2V, "image": ["data:image/png;base64,AAAA"]}, "image"),
        ({**I2V, "image": "a\x00b"}, "image"),
        ({**I2V, "image": "/etc/passwd"}, "OMNIRT_INPUT_ROOTS"),
        ({**I2V, "image": "../../etc/passwd"}, "OMNIRT_INPUT_ROOTS"),
        ({**I2V, "image": "http://169.254.169.254/latest"}, "URLs are not fetched"),
        ({**I2V, "image": "file:///etc/passwd"}, "URLs are not fetched"),
        ({**I2V, "image": "data:image/png;base64,@@@"}, "base64"),
        ({**I2V, "image": "data:image/png,plain"}, "base64"),
        ({**VIDEO, "prompt": "a\x00b"}, "prompt"),
        ({**VIDEO, "prompt": ["x"]}, "prompt"),
        ({"model": LONG_NAME, "prompt": "x"}, "model"),
        ({"model": "wan2.1-t2v-14b"}, "prompt"),
        ({**VIDEO, "colour": "red"}, "colour"),
    ],
)
def test_video_generation_options_are_typed(api_url: str, body: dict[str, Any], field: str) -> None:
    error = assert_rejected(api_url, lambda: post_json(api_url, "/v1/videos/generations", body))
    assert field in error["message"]


# -- 3. Speech bodies and /v1/generate fields are typed ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/text2audio/stream", {"text": "x", "sample_rate": "abc"}, "sample_rate"),
        ("/v1/text2audio/stream", {"text": "x", "sample_rate": 1}, "sample_rate"),
        ("/v1/text2audio/stream", {"text": "x", "config": {"speed": "x"}}, "config.speed"),
        ("/v1/text2audio/stream", {"text": "x", "config": "fast"}, "config"),
        ("/v1/text2audio/stream", {"text": "x", "model": 5}, "model"),
        ("/v1/text2audio/stream", {"text": "x", "model": [None, None]}, "model"),
        ("/v1/text2audio/stream", {"text": "x", "voice": {"id": 1}}, "voice"),
        ("/v1/text2audio/stream", {"model": "hibari-tts"}, "text"),
        ("/v1/text2audio/indextts", {"text": "x", "sample_rate": "abc"}, "sample_rate"),
        ("/v1/text2audio/indextts", {"text": 5}, "text"),
        ("/v1/audio/speech", {"model": "hibari-tts", "input": "x", "speed": "x"}, "speed"),
        ("/v1/audio/speech", {"model": "hibari-tts", "input": "x", "speed": 100}, "speed"),
        ("/v1/audio/speech", {"model": "hibari-tts", "input": "x", "response_format": "mp3"}, "response_format"),
        ("/v1/audio/speech", {"model": "hibari-tts", "input": ["x"]}, "input"),
        ("/v1/text2audio/warmup", {"model": 5}, "model"),
        ("/v1/text2audio/warmup", {"text": {}}, "text"),
        ("/v1/generate", {"task": "text2image", "model": "sd15", "backend": {}}, "backend"),
        ("/v1/generate", {"task": "text2image", "model": "sd15", "backend": 5}, "backend"),
        ("/v1/generate", {"task": ["text2image"], "model": "sd15"}, "task"),
        ("/v1/generate", {"task": "text2image", "model": 5}, "model"),
    ],
)
def test_fields_of_the_wrong_type_are_rejected(api_url: str, path: str, body: dict[str, Any], field: str) -> None:
    error = assert_rejected(api_url, lambda: post_json(api_url, path, body))
    assert field in error["message"]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"response_format": "xml"}, "response_format"),
        ({"model": LONG_NAME}, "model"),
        ({"language": "x" * 17}, "language"),
    ],
)
def test_transcription_form_is_typed(api_url: str, form: dict[str, str], field: str) -> None:
    def send() -> requests.Response:
        files = {"file": ("speech.wav", b"RIFF0000WAVE", "audio/wav")}
        return requests.post(f"{api_url}/v1/audio/transcriptions", data=form, files=files, timeout=TIMEOUT_S)

    error = assert_rejected(api_url, send)
    assert field in error["message"]


# -- 4. JSON nested too deep, and JSON that is not an object ------------------------------------------------------


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("document", [NESTED_990, '{"a":' * 5000 + "1" + "}" * 5000, "[" * 65 + "]" * 65])
def test_deeply_nested_json_is_rejected(api_url: str, path: str, document: str) -> None:
    error = assert_rejected(api_url, lambda: post_raw(api_url, path, document))
    assert "nested" in error["message"]


def test_deep_nesting_inside_a_field_is_rejected(api_url: str) -> None:
    body = '{"task": "text2image", "model": "sd15", "inputs": {"prompt": "x"}, "config": {"a": ' + NESTED_990 + "}}"
    assert_rejected(api_url, lambda: post_raw(api_url, "/v1/generate", body))


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("document", ["[1, 2]", '"x"', "5", "true", "null", "{", b'{"a": "\xc3\x28"}'])
def test_a_body_that_is_not_a_json_object_is_rejected(api_url: str, path: str, document: str | bytes) -> None:
    error = assert_rejected(api_url, lambda: post_raw(api_url, path, document))
    assert "JSON" in error["message"]


def test_json_nested_within_the_limit_still_parses(api_url: str) -> None:
    """60 levels of config are read (and then refused by the registry as an unknown key, not as malformed JSON)."""
    nested = json.loads("[" * 60 + "]" * 60)
    body = {"task": "text2image", "model": "sd15", "inputs": {"prompt": "x"}, "config": {"a": nested}}
    error = assert_rejected(api_url, lambda: post_json(api_url, "/v1/generate", body))
    assert "Unsupported config" in error["message"]


# -- 5. String contents: NUL bytes, lone surrogates, non-strings, over-long names -----------------------------------


GENERATE = {"task": "text2image", "model": "sd15"}
IMAGES = {"model": "sd15"}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/generate", {**GENERATE, "inputs": {"prompt": "a\x00b"}}, "inputs.prompt"),
        ("/v1/generate", {**GENERATE, "inputs": {"prompt": "\ud800"}}, "inputs.prompt"),
        ("/v1/generate", {**GENERATE, "inputs": {"prompt": 5}}, "inputs.prompt"),
        ("/v1/generate", {**GENERATE, "inputs": {"prompt": {}}}, "inputs.prompt"),
        ("/v1/generate", {**GENERATE, "inputs": {"prompt": True}}, "inputs.prompt"),
        ("/v1/generate", {**GENERATE, "inputs": {"prompt": "x", "negative_prompt": 5}}, "inputs.negative_prompt"),
        ("/v1/generate", {**GENERATE, "inputs": {"prompt": "x" * 100_001}}, "inputs.prompt"),
        ("/v1/generate", {**GENERATE, "inputs": {"prompt": "x"}, "config": {"scheduler": "\udfff"}}, "config"),
        ("/v1/generate", {**GENERATE, "inputs": {"prompt": "x"}, "config": {"a\x00": 1}}, "config"),
        ("/v1/generate", {**GENERATE, "inputs": {"prompt": "x"}, "config": {"\ud800": 1}}, "config"),
        ("/v1/generate", {**GENERATE, "inputs": {"prompt": "x", "k" * 201: 1}}, "inputs"),
        ("/v1/generate", {"task": "text2image", "model": LONG_NAME, "inputs": {"prompt": "x"}}, "model"),
        ("/v1/generate", {"task": "text2image", "model": "sd15\x00", "inputs": {"prompt": "x"}}, "model"),
        ("/v1/images/generations", {**IMAGES, "prompt": "a\x00b"}, "prompt"),
        ("/v1/images/generations", {**IMAGES, "prompt": "\ud800"}, "prompt"),
        ("/v1/images/generations", {**IMAGES, "prompt": 5}, "prompt"),
        ("/v1/images/generations", {**IMAGES, "prompt": {}}, "prompt"),
        ("/v1/images/generations", {**IMAGES, "prompt": True}, "prompt"),
        ("/v1/images/generations", {**IMAGES, "prompt": "x", "negative_prompt": ["y"]}, "negative_prompt"),
        ("/v1/images/generations", {"model": LONG_NAME, "prompt": "x"}, "model"),
        ("/v1/text2audio/stream", {"text": "a\x00b"}, "text"),
        ("/v1/text2audio/stream", {"text": "\ud800"}, "text"),
        ("/v1/text2audio/stream", {"text": "x", "model": LONG_NAME}, "model"),
        ("/v1/text2audio/indextts", {"text": "\udc00"}, "text"),
        ("/v1/audio/speech", {"model": "hibari-tts", "input": "a\x00b"}, "input"),
        ("/v1/audio/speech", {"model": "hibari-tts", "input": "x", "voice": "\ud800"}, "voice"),
        ("/v1/text2audio/warmup", {"model": LONG_NAME}, "model"),
    ],
)
def test_unsafe_strings_are_rejected(api_url: str, path: str, body: dict[str, Any], field: str) -> None:
    error = assert_rejected(api_url, lambda: post_json(api_url, path, body))
    assert field in error["message"]
