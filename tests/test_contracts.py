"""Contracts: lossless round trips, and errors that name the offending field."""

from __future__ import annotations

import json

import pytest

from omnirt.contracts import (
    AdapterRef,
    Artifact,
    GenerateRequest,
    GenerateResult,
    RequestValidationError,
    RunReport,
    StageEvent,
)
from omnirt.contracts.schemas import load_request


def full_result() -> GenerateResult:
    report = RunReport(
        task="text2video",
        model="wan2.1-t2v-14b",
        backend="cpu",
        job_id="job-1",
        trace_id="trace-1",
        device="cpu",
        timings={"denoise_loop_ms": 12.5, "decode_ms": 3.25},
        memory={"peak_mb": 420.0},
        backend_timeline=[{"module": "transformer", "attempts": [{"level": "eager", "ok": True}]}],
        config_resolved={"num_frames": 9, "fps": 8, "nested": {"a": [1, 2]}},
        cache_hits=["pipeline"],
        device_placement={"transformer": "cpu"},
        batch_group_id="g",
        queue_wait_ms=1.5,
        worker_id="host:1",
        events=[StageEvent(event="progress", stage="denoise_loop", timestamp_ms=5, data={"step": 1, "total": 2})],
    )
    video = Artifact(
        kind="video",
        path="/tmp/a.mp4",
        mime="video/mp4",
        width=32,
        height=32,
        num_frames=9,
        fps=8.0,
        duration_s=1.125,
        sha256="ab" * 32,
        bytes=1234,
    )
    return GenerateResult(outputs=[video], metadata=report)


def test_generate_result_round_trips_through_json() -> None:
    original = full_result()
    data = json.loads(json.dumps(original.to_dict()))
    restored = GenerateResult.from_dict(data)
    assert restored == original
    assert restored.to_dict() == original.to_dict()
    assert data["metadata"]["schema_version"] == "1.0.0"


def test_request_round_trips_with_adapters() -> None:
    request = GenerateRequest(
        task="text2image",
        model="sd15",
        backend="cpu",
        inputs={"prompt": "a cat"},
        config={"seed": 1},
        adapters=[AdapterRef(kind="lora", path="/x.safetensors", scale=0.5)],
    )
    assert GenerateRequest.from_dict(request.to_dict()) == request


def test_request_file_yaml_and_json(tmp_path) -> None:
    yaml_file = tmp_path / "req.yaml"
    yaml_file.write_text("task: text2image\nmodel: sd15\ninputs:\n  prompt: a cat\n")
    json_file = tmp_path / "req.json"
    json_file.write_text(json.dumps({"task": "text2image", "model": "sd15", "inputs": {"prompt": "a cat"}}))
    assert GenerateRequest.from_file(yaml_file) == GenerateRequest.from_file(json_file)


def test_report_without_version_reads_as_legacy() -> None:
    data = full_result().metadata.to_dict()
    del data["schema_version"]
    assert RunReport.from_dict(data).schema_version == "0.0.0"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"task": "text2image", "model": "sd15", "colour": "red"}, "colour"),
        ({"task": "text2image", "model": "sd15", "inputs": "a cat"}, "inputs"),
        ({"task": "paint", "model": "sd15"}, "task"),
        ({"task": "text2image"}, "model"),
        (
            {"task": "text2image", "model": "sd15", "adapters": [{"kind": "lora", "path": "x", "scale": "big"}]},
            "adapters.0.scale",
        ),
        ({"task": "text2image", "model": "sd15", "backend": "tpu"}, "backend"),
    ],
)
def test_bad_request_fields_are_named(payload: dict, field: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        load_request(payload)
    assert any(issue["message"].startswith(f"{field}:") for issue in info.value.details["issues"])
    assert field in str(info.value)


def test_unknown_report_field_is_rejected() -> None:
    data = full_result().metadata.to_dict()
    data["surprise"] = 1
    from marshmallow import ValidationError

    with pytest.raises(ValidationError) as info:
        RunReport.from_dict(data)
    assert "surprise" in info.value.messages


def test_legacy_cpu_stub_backend_means_cpu() -> None:
    assert load_request({"task": "text2image", "model": "sd15", "backend": "cpu-stub"}).backend == "cpu"
