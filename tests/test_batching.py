"""Dynamic batching: compatible text2image / text2video jobs run as one pipeline call, each job keeping its own seed,
events, report and artifacts; incompatible ones run alone; a cancel drops one member; a failure fails them all; a
worker that dies mid-batch loses nothing. Embedded and fleet (the session's fleet worker batches up to 4).

Batched and alone, a request's output is the same up to the denoiser's batched arithmetic: pixels differ by at most
2 of 255 and by under 0.5 on average (tiny sd15 and tiny Wan on this CPU: at most 1).
"""

from __future__ import annotations

import io
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from tests.support.servers import wait_until
from tests.test_service import NOOP, wait_state

MAX_PIXEL_DIFF = 2
MEAN_PIXEL_DIFF = 0.5


def assert_close(alone: np.ndarray, batched: np.ndarray) -> None:
    assert alone.shape == batched.shape
    difference = np.abs(alone - batched)
    assert difference.max() <= MAX_PIXEL_DIFF and difference.mean() < MEAN_PIXEL_DIFF


# -- The batched run itself ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model_id", "task"), [("sd15", "text2image"), ("wan2.1-t2v-14b", "text2video")])
def test_each_member_gets_the_output_it_gets_alone(
    tiny_model, engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_id: str, task: str
) -> None:
    """Compared as decoded pixels (before PNG or H.264: the video codec would amplify a one-level difference)."""
    from omnirt.contracts.types import GenerateRequest
    from omnirt.models.batching import BatchRequest
    from omnirt.models.diffusers_pipeline import DiffusersPipeline

    decoded: dict[Path, np.ndarray] = {}
    original_decode = DiffusersPipeline.decode

    def recording_decode(self: Any, ctx: Any, raw: Any) -> Any:
        frames = original_decode(self, ctx, raw)
        decoded[ctx.output_dir] = np.stack([np.asarray(frame) for frame in frames]).astype(np.int16)
        return frames

    monkeypatch.setattr(DiffusersPipeline, "decode", recording_decode)
    folder = tiny_model(model_id)
    requests_ = [
        GenerateRequest(
            task=task,
            model=model_id,
            backend="cpu",
            inputs={"prompt": prompt, "negative_prompt": "blurry"},
            config={"model_path": str(folder), "seed": seed},
        )
        for prompt, seed in (("a red cat", 1), ("a blue dog", 2), ("a green owl", 3))
    ]
    alone = [engine.run(request, run_dir=tmp_path / f"alone-{index}") for index, request in enumerate(requests_)]
    events: list[list[Any]] = [[], [], []]
    batched = engine.run_batch(
        [
            BatchRequest(
                request=request, job_id=f"job-{index}", run_dir=tmp_path / f"batched-{index}", on_event=sink.append
            )
            for index, (request, sink) in enumerate(zip(requests_, events, strict=True))
        ],
        batch_group_id="group-1",
    )
    for index, (single, member) in enumerate(zip(alone, batched, strict=True)):
        assert member is not None
        report = member.metadata
        assert (report.batch_size, report.batch_group_id, report.job_id) == (3, "group-1", f"job-{index}")
        assert report.config_resolved["seed"] == index + 1 and single.metadata.batch_size == 1
        assert Path(member.outputs[0].path).parent == tmp_path / f"batched-{index}"
        assert_close(decoded[tmp_path / f"alone-{index}"], decoded[tmp_path / f"batched-{index}"])
        steps = [event.data["step"] for event in events[index] if event.event == "progress"]
        assert steps == list(range(1, len(steps) + 1)) and steps
    first, second = decoded[tmp_path / "batched-0"], decoded[tmp_path / "batched-1"]
    assert np.abs(first - second).mean() > 4 * MEAN_PIXEL_DIFF  # another prompt and seed: another picture


def test_batch_key_takes_only_compatible_requests(sample_image: Path) -> None:
    from omnirt.contracts.types import AdapterRef, GenerateRequest
    from omnirt.jobs.batching import batch_key
    from omnirt.registry.validation import validate_request

    def key(model: str = "sd15", task: str = "text2image", **changes: Any) -> str | None:
        inputs = changes.pop("inputs", {"prompt": "a cat"})
        request = GenerateRequest(task=task, model=model, inputs=inputs, **changes)
        validation = validate_request(request, probe_backend=False)
        assert validation.ok, validation.errors
        assert validation.model is not None
        return batch_key(validation.model, request, validation.resolved_config, backend="cpu", queue="q")

    base = key(config={"seed": 1})
    assert base is not None
    assert key(config={"seed": 99}, inputs={"prompt": "a dog"}) == base  # prompt and seed are each member's own
    assert key(config={"seed": 1, "num_inference_steps": 30}) == base  # the default spelled out
    for different in (
        key(config={"width": 256}),
        key(config={"num_inference_steps": 7}),
        key(config={"guidance_scale": 2.0}),
        key(inputs={"prompt": "a cat", "negative_prompt": "blur"}),
        key(adapters=[AdapterRef(kind="lora", path="hf://someone/lora/x.safetensors")]),
        key("sdxl-base-1.0"),
    ):
        assert different is not None and different != base
    assert key(config={"num_images_per_prompt": 2}) is None  # one seed, several images: runs alone
    assert key("wan2.1-t2v-14b", "text2video") is not None
    assert key("sd15", "image2image", inputs={"prompt": "x", "image": str(sample_image)}) is None  # not text2image
    assert key("hibari-tts", "text2audio") is None  # speech does not batch


def test_supports_batching_is_the_switch() -> None:
    from omnirt.registry.registry import all_specs, ensure_models_loaded

    ensure_models_loaded()
    specs = {(spec.id, spec.task): spec for spec in all_specs()}
    assert specs[("sd15", "text2image")].capabilities.supports_batching
    assert specs[("wan2.1-t2v-14b", "text2video")].capabilities.supports_batching
    for spec in all_specs():
        if spec.task in ("text2audio", "audio2text", "audio2video", "avatar_prepare"):
            assert not spec.capabilities.supports_batching, spec.id


# -- Through the service, embedded and fleet ------------------------------------------------------------------------


def sd15(prompt: str, seed: int, **config: Any) -> dict[str, Any]:
    return {
        "task": "text2image",
        "model": "sd15",
        "inputs": {"prompt": prompt},
        "config": {"seed": seed, **config},
        "async_run": True,
    }


def submit(url: str, body: dict[str, Any]) -> str:
    response = requests.post(f"{url}/v1/generate", json=body, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def record(url: str, job_id: str) -> dict[str, Any]:
    return requests.get(f"{url}/v1/jobs/{job_id}", timeout=10).json()


def event_data(job: dict[str, Any], name: str) -> dict[str, Any]:
    """The data of ``job``'s first ``name`` event."""
    return next(event["data"] for event in job["events"] if event["event"] == name)


def behind_a_blocker(url: str, bodies: list[dict[str, Any]]) -> list[str]:
    """Submit ``bodies`` while the one worker is busy, then free it: they are all queued when it starts the first."""
    blocker = submit(url, {**NOOP, "config": {"steps": 400, "step_ms": 25}, "async_run": True})
    wait_state(url, blocker, {"running"})
    ids = [submit(url, body) for body in bodies]
    assert requests.delete(f"{url}/v1/jobs/{blocker}", timeout=10).status_code == 202
    return ids


def test_compatible_jobs_run_as_one_batch_and_others_alone(service) -> None:
    server = service.start(max_batch_size=4)
    bodies = [sd15(f"a cat number {index}", 20 + index) for index in range(4)]
    bodies += [sd15("a cat", 30, num_inference_steps=3), sd15("a cat", 31, width=128)]
    ids = behind_a_blocker(server.url, bodies)
    jobs = [wait_state(server.url, job_id, {"succeeded", "failed", "cancelled"}, timeout=120) for job_id in ids]
    assert [job["state"] for job in jobs] == ["succeeded"] * 6, [job.get("error") for job in jobs]
    batch, alone = jobs[:4], jobs[4:]
    groups = {job["result"]["metadata"]["batch_group_id"] for job in batch}
    assert len(groups) == 1 and None not in groups
    assert all(job["result"]["metadata"]["batch_size"] == 4 for job in batch)
    for job in batch:
        started, finished = event_data(job, "job_started"), event_data(job, "job_finished")
        assert (started["batch_size"], started["batch_group_id"]) == (4, *groups)
        assert (finished["batch_size"], finished["batch_group_id"]) == (4, *groups)
        assert [event["data"]["step"] for event in job["events"] if event["event"] == "progress"] == [1, 2]
        assert job["result"]["outputs"][0]["url"].split("/v1/artifacts/")[1].startswith(job["id"])
    assert len({job["result"]["outputs"][0]["sha256"] for job in batch}) == 4
    for job in alone:
        assert job["result"]["metadata"]["batch_size"] == 1 and job["result"]["metadata"]["batch_group_id"] is None
        assert "batch_group_id" not in event_data(job, "job_started")
    # the second member again, alone: the same picture
    again = requests.post(f"{server.url}/v1/generate", json={**bodies[1], "async_run": False}, timeout=120).json()
    assert again["metadata"]["batch_size"] == 1
    pictures = [requests.get(result["outputs"][0]["url"], timeout=10).content for result in (batch[1]["result"], again)]
    assert_close(*(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16) for png in pictures))


def test_cancelling_one_member_keeps_the_others(service, service_dirs: dict[str, Path]) -> None:
    server = service.start(max_batch_size=4)
    ids = behind_a_blocker(
        server.url, [sd15(f"a slow cat {index}", index, num_inference_steps=30) for index in range(3)]
    )
    victim = ids[1]
    wait_until(lambda: any(event["event"] == "progress" for event in record(server.url, victim)["events"]), timeout=60)
    assert requests.delete(f"{server.url}/v1/jobs/{victim}", timeout=10).status_code == 202
    cancelled = wait_state(server.url, victim, {"succeeded", "failed", "cancelled"}, timeout=60)
    assert cancelled["state"] == "cancelled" and cancelled["result"] is None
    others = [wait_state(server.url, job_id, {"succeeded", "failed", "cancelled"}, timeout=120) for job_id in ids]
    assert [job["state"] for job in others] == ["succeeded", "cancelled", "succeeded"]
    assert all(job["result"]["metadata"]["batch_size"] == 3 for job in (others[0], others[2]))
    names = [event["event"] for event in record(server.url, victim)["events"]]
    assert names[-1] == "job_cancelled" and "job_finished" not in names
    assert names.count("progress") < 30  # it stopped early ...
    assert all([event["event"] for event in job["events"]].count("progress") == 30 for job in (others[0], others[2]))
    assert not list((service_dirs["artifacts"] / victim).glob("*.png"))  # ... and its output was discarded


def test_a_failure_fails_every_member(service, service_dirs: dict[str, Path]) -> None:
    broken = service_dirs["models"] / f"broken-sd15-{service.mode}"
    shutil.copytree(service_dirs["models"] / "sd15", broken)
    try:
        for weights in (broken / "unet").glob("*.safetensors"):
            weights.write_bytes(b"not a safetensors file")
        server = service.start(max_batch_size=4)
        bodies = [sd15(f"a cat {index}", index, model_path=str(broken)) for index in range(3)]
        jobs = [
            wait_state(server.url, job_id, {"succeeded", "failed", "cancelled"})
            for job_id in behind_a_blocker(server.url, bodies)
        ]
        assert [job["state"] for job in jobs] == ["failed"] * 3
        assert len({(job["error"]["code"], job["error"]["message"]) for job in jobs}) == 1
        assert str(service_dirs["models"]) not in jobs[0]["error"]["message"]
        groups = {event_data(job, "job_started").get("batch_group_id") for job in jobs}
        assert len(groups) == 1 and None not in groups
        assert all(job["events"][-1]["event"] == "job_failed" for job in jobs)
    finally:
        shutil.rmtree(broken, ignore_errors=True)


def test_a_worker_dying_mid_batch_loses_nothing(service) -> None:
    """Members claimed by a worker that then dies are re-queued by the reaper and run again, like any running job."""
    from omnirt.events.bus import job_event
    from omnirt.jobs.job import Job, JobState
    from omnirt.workers.batching import take_companions

    server = service.start(max_batch_size=4)
    backplane = server.backplane
    queue = "embedded" if backplane.settings.embedded else "omnirt.experimental.cpu"
    lobby = f"test-lobby-{uuid.uuid4().hex}"
    jobs = [
        Job(
            id=f"lost-{uuid.uuid4().hex[:12]}-{index}",
            state=JobState.QUEUED,
            model="bench-noop",
            task="text2image",
            backend="auto",
            queue=queue,
            request={**NOOP, "config": {"steps": 2}},
            batch_key=lobby,
        )
        for index in range(3)
    ]
    for job in jobs:
        backplane.store.create(job, event=job_event("job_enqueued", job_id=job.id, queue=queue))
        backplane.store.enter_lobby(job.batch_key, job.id, job.enqueued_at_ms)
    dead = "dead-worker@nowhere"
    _claim, leader = backplane.store.claim(jobs[0].id, dead, backplane.settings.max_attempts)
    assert leader is not None
    companions = take_companions(leader, backplane=backplane, worker_id=dead)
    assert sorted(job.id for job in companions) == sorted(job.id for job in jobs[1:])
    assert backplane.store.lobby(lobby, 10) == []
    if backplane.settings.embedded:
        backplane.dispatcher.start()  # its reaper starts with its worker threads
    for job in jobs:
        final = wait_state(server.url, job.id, {"succeeded", "failed", "cancelled"}, timeout=60)
        assert final["state"] == "succeeded" and final["attempts"] == 2
        requeued = event_data(final, "job_requeued")
        assert requeued["lost_worker"] == dead
