"""One trace per job: the HTTP submit's server span, the Celery task's span (``traceparent`` in the task headers), the
worker's job span and a span per stage, under one trace id; ``GET /v1/jobs/{id}/trace`` rebuilds the same spans from
the job's events. The API process exports to an in-memory exporter; the fleet's worker process exports over OTLP/HTTP
to a tiny collector the test runs. Embedded mode carries the trace to its worker thread on the job record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import service_settings
from tests.support.otel import Collector, finished, memory_exporter
from tests.support.servers import ApiServer, RedisServer, Worker, wait_until

pytest.importorskip("opentelemetry.sdk")

NOOP = {"task": "text2image", "model": "bench-noop", "inputs": {"prompt": "a trace"}, "config": {"steps": 2}}


@pytest.fixture(scope="module")
def exporter() -> Any:
    return memory_exporter()


def submit_span(exporter: Any, job_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: next(
            (
                span
                for span in finished(exporter)
                if span["name"] == "POST /v1/generate" and span["attributes"].get("omnirt.job_id") == job_id
            ),
            None,
        ),
        timeout=10,
    )


def run_job(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = requests.post(f"{url}/v1/generate", json=NOOP, headers=headers or {}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def check_trace_route(url: str, job_id: str, trace_id: str, exported: list[dict[str, Any]]) -> dict[str, Any]:
    response = requests.get(f"{url}/v1/jobs/{job_id}/trace", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["job_id"] == job_id and body["trace_id"] == trace_id
    names = [span["name"] for span in body["spans"]]
    assert names[0] == "job bench-noop" and "stage load" in names and "stage denoise_loop" in names, names
    by_id = {span["span_id"]: span for span in exported}
    for span in body["spans"]:
        assert span["trace_id"] == trace_id
        assert span["status"] == "ok" and span["end_ms"] >= span["start_ms"] and span["duration_ms"] >= 0
        exported_span = by_id[span["span_id"]]  # the route's ids are the exported spans' ids
        assert exported_span["name"] == span["name"]
        assert exported_span["parent_span_id"] == span["parent_span_id"]
    assert requests.get(f"{url}/v1/jobs/nope/trace", timeout=10).status_code == 404
    return body


def test_embedded_job_is_one_trace(exporter: Any, service_env: dict[str, str], service_dirs: dict[str, Path]) -> None:
    server = ApiServer(service_settings(None, service_dirs))
    try:
        client_trace = "0af7651916cd43dd8448eb211c80319c"
        result = run_job(server.url, {"traceparent": f"00-{client_trace}-b7ad6b7169203331-01"})
        jobs = requests.get(f"{server.url}/v1/jobs", params={"model": "bench-noop", "limit": 1}, timeout=10).json()
        job_id = jobs["data"][0]["id"]
        submit = submit_span(exporter, job_id)
        assert submit["trace_id"] == client_trace  # the client's traceparent is continued
        assert submit["parent_span_id"] == "b7ad6b7169203331"
        assert result["metadata"]["trace_id"] == client_trace
        spans = wait_until(
            lambda: (
                (found := [s for s in finished(exporter) if s["trace_id"] == client_trace])
                and len(found) >= 4
                and found
            ),
            timeout=10,
        )
        job_span = next(span for span in spans if span["name"] == "job bench-noop")
        assert job_span["parent_span_id"] == submit["span_id"]  # carried on the job record to the worker thread
        stages = [span for span in spans if span["name"].startswith("stage ")]
        assert {span["parent_span_id"] for span in stages} == {job_span["span_id"]}
        check_trace_route(server.url, job_id, client_trace, spans)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def traced_fleet(service_env: dict[str, str], service_dirs: dict[str, Path], tmp_path_factory: Any) -> Iterator[Any]:
    """Redis, a Celery worker process exporting spans over OTLP to a local collector with JSON logs, and an API."""
    from omnirt.backplane import Backplane

    redis = RedisServer().start()
    collector = Collector()
    logs = tmp_path_factory.mktemp("tracing-logs")
    env = {
        **service_env,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OMNIRT_LOG_FORMAT": "json",
    }
    worker = Worker(redis.url, ["omnirt.experimental.cpu"], env, logs, "trace-worker")
    try:
        worker.wait_ready(Backplane(service_settings(redis.url, service_dirs)))
        server = ApiServer(service_settings(redis.url, service_dirs))
        yield server, collector, worker
        server.stop()
    finally:
        worker.stop()
        collector.stop()
        redis.stop()


def test_fleet_job_is_one_trace_across_processes(exporter: Any, traced_fleet: Any) -> None:
    server, collector, worker = traced_fleet
    run_job(server.url)
    jobs = requests.get(f"{server.url}/v1/jobs", params={"model": "bench-noop", "limit": 1}, timeout=10).json()
    job = jobs["data"][0]
    submit = submit_span(exporter, job["id"])
    trace_id = submit["trace_id"]
    assert job["trace_id"] == trace_id and job["result"]["metadata"]["trace_id"] == trace_id

    def worker_spans() -> list[dict[str, Any]] | None:
        spans = [span for span in collector.spans if span["trace_id"] == trace_id]
        names = {span["name"] for span in spans}
        return spans if {"run omnirt.generate", "job bench-noop", "stage denoise_loop"} <= names else None

    spans = wait_until(worker_spans, timeout=20)
    assert {span["service"] for span in spans} == {"omnirt-worker"}
    task = next(span for span in spans if span["name"] == "run omnirt.generate")
    job_span = next(span for span in spans if span["name"] == "job bench-noop")
    assert task["parent_span_id"] == submit["span_id"]  # traceparent travelled in the task headers
    assert job_span["parent_span_id"] == task["span_id"]
    assert job_span["attributes"]["omnirt.job_id"] == job["id"]
    stages = [span for span in spans if span["name"].startswith("stage ")]
    assert {"stage load", "stage denoise_loop"} <= {span["name"] for span in stages}
    assert {span["parent_span_id"] for span in stages} == {job_span["span_id"]}
    check_trace_route(server.url, job["id"], trace_id, spans)

    # The worker's JSON log lines name the job and its trace.
    def job_lines() -> list[dict[str, Any]]:
        lines = Path(worker.log.name).read_text().splitlines()
        parsed = [json.loads(line) for line in lines if line.startswith("{")]
        return [line for line in parsed if line.get("job_id") == job["id"]]

    lines = wait_until(job_lines, timeout=10)
    assert all(line["trace_id"] == trace_id for line in lines), lines
    assert {"time", "level", "logger", "message"} <= set(lines[0])


def test_the_trace_route_is_documented(service_env: dict[str, str], service_dirs: dict[str, Path]) -> None:
    server = ApiServer(service_settings(None, service_dirs))
    try:
        spec = requests.get(f"{server.url}/openapi.json", timeout=10).json()
        route = spec["paths"]["/v1/jobs/{job_id}/trace"]["get"]
        assert set(route["responses"]) == {"200", "404"}
        assert {"Trace", "TraceSpan"} <= set(spec["components"]["schemas"])
    finally:
        server.stop()


def test_a_session_chunk_is_a_span_with_inference_and_encode(exporter: Any) -> None:
    import time

    from omnirt.tracing import log_context, record_chunk, span

    with log_context(session_id="s-1"), span("session test-model", attributes={"omnirt.session_id": "s-1"}) as session:
        now = time.perf_counter()
        record_chunk(0, now - 0.05, now - 0.01, now, **{"omnirt.frames": 5})
    trace_id = f"{session.get_span_context().trace_id:032x}"
    spans = {span["name"]: span for span in finished(exporter) if span["trace_id"] == trace_id}
    assert set(spans) == {"session test-model", "chunk", "inference", "encode"}
    assert spans["chunk"]["parent_span_id"] == spans["session test-model"]["span_id"]
    assert spans["inference"]["parent_span_id"] == spans["encode"]["parent_span_id"] == spans["chunk"]["span_id"]
    assert spans["inference"]["end"] == spans["encode"]["start"] and spans["chunk"]["attributes"]["omnirt.frames"] == 5
    assert 30e6 < spans["inference"]["end"] - spans["inference"]["start"] < 60e6


def test_tracing_is_off_without_the_otel_variables() -> None:
    from omnirt.tracing import tracing_requested

    assert not tracing_requested({})
    assert not tracing_requested({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"})
    assert tracing_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_requested({"OTEL_TRACES_EXPORTER": "console"})
