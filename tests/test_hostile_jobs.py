"""Hostile requests that reach a job: sizes refused before a job exists, jobs that always end, the client blamed
for what the client sent, warm models that survive a bad request, and error messages without server paths.

Embedded and on a fleet (real Redis, a real Celery worker) through the ``service`` fixture.
"""

from __future__ import annotations

import base64
import io
import struct
import time
from typing import Any

import pytest
import requests

from tests.support.servers import wait_until
from tests.test_speech import wav_bytes


def generate(url: str, body: dict[str, Any], timeout: float = 120) -> requests.Response:
    return requests.post(f"{url}/v1/generate", json=body, timeout=timeout)


def sd15(config: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "task": "text2image",
        "model": "sd15",
        "inputs": {"prompt": "a cat"},
        "config": {"num_inference_steps": 2, "width": 64, "height": 64, **(config or {})},
        **fields,
    }


def jobs_of(url: str) -> set[str]:
    listing = requests.get(f"{url}/v1/jobs", params={"limit": 500}, timeout=10).json()
    return {job["job_id"] for job in listing["data"]}


def wav(frames: bytes, rate: int = 16000, *, claimed_frames: int | None = None) -> bytes:
    data = bytearray(wav_bytes(frames, rate))
    if claimed_frames is not None:  # a header that claims more data than the file holds
        data[40:44] = struct.pack("<I", claimed_frames * 2)
    return bytes(data)


def png(width: int, height: int) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 80, 40)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (sd15({"num_inference_steps": 1_000_000_000}), "max_steps"),
        (sd15({"num_inference_steps": 1000, "scheduler": "ddim"}), "max_steps"),
        (sd15({"width": 100_000, "height": 100_000}), "max_pixels"),
        (
            {"task": "text2video", "model": "cogvideox-2b", "inputs": {"prompt": "x"}, "config": {"num_frames": 10**6}},
            "max_frames",
        ),
    ],
    ids=["steps", "ddim-steps", "pixels", "frames"],
)
def test_sizes_past_the_limits_are_refused_before_a_job_exists(service, body: dict[str, Any], words: str) -> None:
    before = jobs_of(service.url)
    response = generate(service.url, {**body, "async_run": True})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and words in error["message"]
    assert jobs_of(service.url) == before


def test_the_operator_sets_the_limits(service) -> None:
    strict = service.start(limits={"max_steps": 3.0, "max_pixels": 64.0 * 64})
    refused = generate(strict.url, sd15({"num_inference_steps": 4}))
    assert refused.status_code == 400 and "at most 3 (max_steps)" in refused.json()["error"]["message"]
    assert generate(strict.url, sd15({"width": 128})).status_code == 400
    assert generate(strict.url, sd15({"num_inference_steps": 3})).status_code == 200


def test_a_job_past_its_time_limit_ends_failed_with_timeout(service) -> None:
    # Embedded: the worker's deadline at the next step. Fleet: the Celery soft time limit the API sets on the task.
    hurried = service.start(limits={"time_limit_s": 0.2})
    started = time.monotonic()
    response = generate(hurried.url, sd15({"num_inference_steps": 200, "width": 256, "height": 256}))
    assert time.monotonic() - started < 60
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "timeout"
    assert generate(service.url, sd15()).status_code == 200  # the worker goes on


def test_a_job_whose_record_cannot_be_read_still_ends(service) -> None:
    """A stored request the worker cannot parse (written by an older or broken front end) fails; never `running`."""
    from omnirt.jobs.job import Job, JobState, new_job_id

    plane = service.api.backplane
    job = Job(
        id=new_job_id(),
        state=JobState.QUEUED,
        model="sd15",
        task="text2image",
        backend="cpu",
        queue="embedded" if service.mode == "embedded" else "omnirt.core.cpu",
        request={"task": "text2image", "model": "sd15", "backend": 5, "inputs": "not a mapping"},
    )
    plane.store.create(job)
    plane.dispatcher.dispatch(job)
    ended = wait_until(lambda: (record := plane.store.get(job.id)) and record.terminal and record, timeout=60)
    assert ended.state == JobState.FAILED and ended.error["code"] in ("internal_error", "invalid_request")


def test_degenerate_inputs_blame_the_client_without_server_paths(service) -> None:
    body = {
        "task": "image2image",
        "model": "sd15",
        "inputs": {"prompt": "a cat", "image": png(1, 1)},
        "config": {"num_inference_steps": 2, "width": 64, "height": 64},
    }
    response = generate(service.url, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and "1x1" in error["message"]
    assert "/" not in error["message"].replace("...", "")  # no server path


def test_a_bad_wav_does_not_poison_the_recogniser(service) -> None:
    def transcribe(data: bytes) -> requests.Response:
        return requests.post(
            f"{service.url}/v1/audio/transcriptions",
            files={"file": ("speech.wav", data, "audio/wav")},
            data={"model": "pocketsphinx-en"},
            timeout=120,
        )

    tone = struct.pack("<8000h", *([3000, -3000] * 4000))
    assert transcribe(wav(tone)).status_code == 200
    for bad in (wav(b""), wav(b"\x01\x00" * 10, claimed_frames=10**6), wav(tone, rate=1), b"RIFF not a wav"):
        response = transcribe(bad)
        assert 400 <= response.status_code < 500 or response.status_code == 200, response.text
        if response.status_code != 200:
            assert response.json()["error"]["code"] in ("invalid_input", "invalid_request")
    assert transcribe(wav(tone)).status_code == 200  # the warm decoder still works


def test_an_adapter_that_is_not_a_lora_blames_the_client(service, service_dirs) -> None:
    import torch
    from safetensors.torch import save_file

    path = service_dirs["models"] / "not-a-lora.safetensors"
    save_file({"some.unrelated.weight": torch.zeros(4, 4)}, str(path))
    body = {**sd15(), "adapters": [{"kind": "lora", "path": str(path)}]}
    response = generate(service.url, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and "not-a-lora.safetensors" in error["message"]
    assert str(service_dirs["models"]) not in error["message"]
    assert generate(service.url, sd15()).status_code == 200  # the warm sd15 without the adapter is untouched
