"""The serving contracts, run against the embedded server and against the fleet (real Redis, real Celery worker).

Every test here runs twice: ``[embedded]`` and ``[fleet]``.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from typing import Any

import pytest
import requests
from PIL import Image

from tests.support.servers import wait_until

NOOP = {"task": "text2image", "model": "bench-noop", "inputs": {"prompt": "x"}}


def sd15_request(**extra: Any) -> dict[str, Any]:
    return {"task": "text2image", "model": "sd15", "inputs": {"prompt": "a cat"}, "config": {"seed": 5}, **extra}


def read_sse(
    url: str, *, headers: dict[str, str] | None = None, limit: int | None = None, timeout: float = 60
) -> list[dict[str, Any]]:
    """Events from an SSE stream until it closes (or ``limit`` events): [{"id", "event", "data"}]."""
    events: list[dict[str, Any]] = []
    with requests.get(url, headers=headers or {}, stream=True, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["X-Accel-Buffering"] == "no"
        current: dict[str, Any] = {}
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("id: "):
                current["id"] = line[4:]
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and "event" in current:
                events.append(current)
                current = {}
                if limit is not None and len(events) >= limit:
                    break
    return events


def wait_state(url: str, job_id: str, states: set[str], timeout: float = 60) -> dict[str, Any]:
    def check() -> Any:
        job = requests.get(f"{url}/v1/jobs/{job_id}", timeout=10).json()
        return job if job["state"] in states else None

    return wait_until(check, timeout=timeout, interval=0.05)


def test_sync_generate_returns_result_with_downloadable_png(service) -> None:
    response = requests.post(f"{service.url}/v1/generate", json=sd15_request(), timeout=120)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["metadata"]["schema_version"] == "1.0.0" and result["metadata"]["model"] == "sd15"
    artifact = result["outputs"][0]
    download = requests.get(artifact["url"], timeout=10)
    assert download.status_code == 200 and download.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(download.content)).size == (64, 64)
    assert len(download.content) == artifact["bytes"]
    partial = requests.get(artifact["url"], headers={"Range": "bytes=0-7"}, timeout=10)
    assert partial.status_code == 206 and partial.content == download.content[:8]
    assert (
        requests.get(f"{service.url}/v1/artifacts/{result['job_id']}/../../etc/passwd", timeout=10).status_code == 404
    )


def test_async_submit_streams_events_then_closes(service) -> None:
    submitted = requests.post(f"{service.url}/v1/generate", json=sd15_request(async_run=True), timeout=30)
    assert submitted.status_code == 202
    job = submitted.json()
    assert job["state"] in ("queued", "running") and job["links"]["events"].endswith(f"/v1/jobs/{job['id']}/events")
    events = read_sse(job["links"]["events"])
    names = [event["event"] for event in events]
    assert names[0] == "job_enqueued" and "job_started" in names and names[-1] == "job_finished"
    assert [event["data"]["data"]["step"] for event in events if event["event"] == "progress"] == [1, 2]
    ids = [event["id"] for event in events]
    assert ids == sorted(ids, key=lambda entry: tuple(map(int, entry.split("-")))) and len(set(ids)) == len(ids)
    record = requests.get(f"{service.url}/v1/jobs/{job['id']}", timeout=10).json()
    assert record["state"] == "succeeded" and record["result"]["outputs"][0]["url"]
    assert [event["event"] for event in record["events"]] == names


def test_sse_resumes_after_last_event_id_without_loss_or_duplicates(service) -> None:
    job = requests.post(
        f"{service.url}/v1/generate",
        json={**NOOP, "config": {"steps": 8, "step_ms": 60}, "async_run": True},
        timeout=30,
    ).json()
    first = read_sse(f"{service.url}/v1/jobs/{job['id']}/events", limit=4)
    rest = read_sse(f"{service.url}/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": first[-1]["id"]})
    everything = read_sse(f"{service.url}/v1/jobs/{job['id']}/events")  # finished: replays, then closes
    assert [event["id"] for event in first + rest] == [event["id"] for event in everything]
    assert everything[-1]["event"] == "job_finished"
    assert sum(event["event"] == "progress" for event in everything) == 8
    bad = requests.get(f"{service.url}/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "nope"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"


def test_websocket_cancels_a_running_job(service) -> None:
    from simple_websocket import Client, ConnectionClosed

    job = requests.post(
        f"{service.url}/v1/generate",
        json={**NOOP, "config": {"steps": 200, "step_ms": 50}, "async_run": True},
        timeout=30,
    ).json()
    ws = Client.connect(job["links"]["stream"])
    received = []
    try:
        while True:
            message = json.loads(ws.receive(timeout=30))
            received.append(message)
            if message["event"] == "progress":
                ws.send(json.dumps({"action": "cancel"}))
                break
        while True:
            try:
                raw = ws.receive(timeout=30)
            except ConnectionClosed:
                break
            if raw is None:
                break
            received.append(json.loads(raw))
    finally:
        if ws.connected:
            ws.close()
    assert not ws.connected  # the server closed the socket after the terminal event
    names = [message["event"] for message in received]
    ack = next(message for message in received if message["event"] == "control_ack")
    assert ack["data"] == {"job_id": job["id"], "action": "cancel", "cancelled": True, "outcome": "requested"}
    assert names[-1] == "job_cancelled"
    steps = [message["data"]["step"] for message in received if message["event"] == "progress"]
    assert max(steps) < 200
    record = wait_state(service.url, job["id"], {"cancelled"}, timeout=10)
    assert record["finished_at_ms"] is not None


def test_delete_cancels_queued_and_running_jobs_distinctly(service) -> None:
    blocker = requests.post(
        f"{service.url}/v1/generate",
        json={**NOOP, "config": {"steps": 100, "step_ms": 50}, "async_run": True},
        timeout=30,
    ).json()
    wait_state(service.url, blocker["id"], {"running"})
    queued = requests.post(f"{service.url}/v1/generate", json={**NOOP, "async_run": True}, timeout=30).json()
    assert requests.get(f"{service.url}/v1/jobs/{queued['id']}", timeout=10).json()["state"] == "queued"
    cancel_queued = requests.delete(f"{service.url}/v1/jobs/{queued['id']}", timeout=10)
    assert cancel_queued.status_code == 200 and cancel_queued.json()["state"] == "cancelled"
    cancel_running = requests.delete(f"{service.url}/v1/jobs/{blocker['id']}", timeout=10)
    assert cancel_running.status_code == 202 and cancel_running.json()["state"] == "running"
    assert cancel_running.json()["cancel_requested"] is True
    wait_state(service.url, blocker["id"], {"cancelled"}, timeout=10)
    again = requests.delete(f"{service.url}/v1/jobs/{blocker['id']}", timeout=10)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    time.sleep(0.5)  # the cancelled queued job must never start
    events = requests.get(f"{service.url}/v1/jobs/{queued['id']}", timeout=10).json()["events"]
    assert [event["event"] for event in events] == ["job_enqueued", "job_cancelled"]


def test_idempotent_submit_runs_once(service) -> None:
    headers = {"Idempotency-Key": f"retry-{time.time_ns()}"}
    body = {**NOOP, "config": {"steps": 2}, "async_run": True}
    first = requests.post(f"{service.url}/v1/generate", json=body, headers=headers, timeout=30)
    second = requests.post(f"{service.url}/v1/generate", json=body, headers=headers, timeout=30)
    assert first.json()["id"] == second.json()["id"]
    chosen = f"client-{time.time_ns()}"
    by_id = [requests.post(f"{service.url}/v1/generate", json={**body, "job_id": chosen}, timeout=30) for _ in (1, 2)]
    assert {response.json()["id"] for response in by_id} == {chosen}
    clash = requests.post(
        f"{service.url}/v1/generate", json={**body, "job_id": chosen, "config": {"steps": 3}}, timeout=30
    )
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "conflict"
    for job_id in (first.json()["id"], chosen):
        record = wait_state(service.url, job_id, {"succeeded"})
        assert sum(event["event"] == "job_started" for event in record["events"]) == 1


def test_api_keys_protect_http_and_websocket(service) -> None:
    from simple_websocket import Client
    from simple_websocket import ConnectionError as WsConnectionError

    secured = service.start(api_keys=("s3cret",))
    assert requests.get(f"{secured.url}/healthz", timeout=10).status_code == 200
    assert requests.get(f"{secured.url}/readyz", timeout=10).status_code in (200, 503)
    denied = requests.get(f"{secured.url}/v1/jobs", timeout=10)
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthorized"
    assert requests.get(f"{secured.url}/metrics", timeout=10).status_code == 401
    assert (
        requests.get(f"{secured.url}/v1/jobs", headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    )
    assert (
        requests.get(f"{secured.url}/v1/jobs", headers={"Authorization": "Bearer s3cret"}, timeout=10).status_code
        == 200
    )
    job = requests.post(
        f"{secured.url}/v1/generate",
        json={**NOOP, "config": {"steps": 20, "step_ms": 50}, "async_run": True},
        headers={"x-api-key": "s3cret"},
        timeout=30,
    ).json()
    stream = f"{secured.url.replace('http', 'ws')}/v1/jobs/{job['id']}/stream"
    with pytest.raises(WsConnectionError):
        Client.connect(stream)
    for ws in (
        Client.connect(f"{stream}?api_key=s3cret"),
        Client.connect(stream, headers={"Authorization": "Bearer s3cret"}),
    ):
        assert json.loads(ws.receive(timeout=30))["event"] == "job_enqueued"
        if ws.connected:
            ws.close()


def test_official_openai_client(service) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{service.url}/v1", api_key="unused", max_retries=0)
    image = client.images.generate(model="sd15", prompt="a cat", size="64x64", response_format="b64_json")
    png = Image.open(io.BytesIO(base64.b64decode(image.data[0].b64_json)))
    assert png.format == "PNG" and png.size == (64, 64)
    linked = client.images.generate(model="sd15", prompt="a cat", size="64x64", response_format="url", n=2)
    assert len(linked.data) == 2
    assert requests.get(linked.data[0].url, timeout=10).headers["Content-Type"] == "image/png"
    source = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 100, 50)).save(source, format="PNG")
    source.seek(0)
    edited = client.images.edit(
        model="sd15", image=("in.png", source, "image/png"), prompt="a dog", size="64x64", response_format="b64_json"
    )
    assert Image.open(io.BytesIO(base64.b64decode(edited.data[0].b64_json))).size == (64, 64)
    assert any(model.id == "sd15" for model in client.models.list().data)
    with pytest.raises(openai.BadRequestError):
        client.images.generate(model="sd15", prompt="a cat", size="huge")


def test_errors_are_json_with_the_right_status(service) -> None:
    cases = [
        (requests.get(f"{service.url}/v1/jobs/nope", timeout=10), 404, "not_found"),
        (
            requests.post(
                f"{service.url}/v1/generate", data="[]", headers={"Content-Type": "application/json"}, timeout=10
            ),
            400,
            "invalid_request",
        ),
        (
            requests.post(
                f"{service.url}/v1/generate",
                json={"task": "text2image", "model": "sd-15", "inputs": {"prompt": "x"}},
                timeout=10,
            ),
            400,
            "invalid_request",
        ),
        (
            requests.post(f"{service.url}/v1/generate", json=sd15_request(config={"output_dir": "/tmp"}), timeout=10),
            400,
            "invalid_request",
        ),
        (
            requests.post(
                f"{service.url}/v1/generate",
                json=sd15_request(inputs={"prompt": "x", "image": "/etc/passwd"}, task="image2image"),
                timeout=10,
            ),
            400,
            "invalid_request",
        ),
        (requests.put(f"{service.url}/v1/generate", timeout=10), 405, "method_not_allowed"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code and "Traceback" not in response.text
    assert "Did you mean: sd15" in cases[2][0].json()["error"]["message"]
    small = service.start(max_request_bytes=1000)
    too_big = requests.post(f"{small.url}/v1/generate", json={**NOOP, "inputs": {"prompt": "x" * 5000}}, timeout=10)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    policy = service.start(model_tiers=("adjacent",))
    refused = requests.post(f"{policy.url}/v1/generate", json=sd15_request(), timeout=10)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_enabled"


def test_data_url_inputs_are_accepted(service, sample_image) -> None:
    encoded = base64.b64encode(sample_image.read_bytes()).decode()
    body = {
        "task": "image2image",
        "model": "sd15",
        "inputs": {"prompt": "a cat", "image": f"data:image/png;base64,{encoded}"},
        "config": {"strength": 0.5},
    }
    response = requests.post(f"{service.url}/v1/generate", json=body, timeout=120)
    assert response.status_code == 200, response.text


def test_jobs_list_filters_and_pages(service) -> None:
    ids = [
        requests.post(f"{service.url}/v1/generate", json={**NOOP, "async_run": True}, timeout=30).json()["id"]
        for _ in range(3)
    ]
    for job_id in ids:
        wait_state(service.url, job_id, {"succeeded"})
    page = requests.get(
        f"{service.url}/v1/jobs", params={"model": "bench-noop", "state": "succeeded", "limit": 2}, timeout=10
    ).json()
    assert len(page["data"]) == 2 and page["total"] >= 3 and page["next_offset"] == 2
    assert all(job["model"] == "bench-noop" and job["state"] == "succeeded" for job in page["data"])
    newest = [job["id"] for job in page["data"]]
    assert newest == [ids[2], ids[1]]
    assert requests.get(f"{service.url}/v1/jobs", params={"state": "bogus"}, timeout=10).status_code == 400


def test_readiness_openapi_and_metrics(service) -> None:
    ready = requests.get(f"{service.url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["ok"] is True
    strict = service.start(model_tiers=("adjacent",))
    not_ready = requests.get(f"{strict.url}/readyz", timeout=10)
    if service.mode == "fleet":
        assert not_ready.status_code == 503 and "omnirt.adjacent" in not_ready.json()["reasons"][0]
    workers = requests.get(f"{service.url}/v1/workers", timeout=10).json()["data"]
    assert workers and all({"worker_id", "queues"} <= set(worker) for worker in workers)
    spec = requests.get(f"{service.url}/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.") and {"/v1/generate", "/v1/jobs/{job_id}", "/readyz"} <= set(spec["paths"])
    assert "GenerateSubmission" in spec["components"]["schemas"]
    requests.post(f"{service.url}/v1/generate", json={**NOOP}, timeout=30)
    text = requests.get(f"{service.url}/metrics", timeout=10).text
    for name in (
        "omnirt_http_request_duration_seconds",
        'omnirt_jobs{model="bench-noop",state="succeeded"}',
        "omnirt_queue_depth",
        "omnirt_oldest_queued_job_age_seconds",
        "omnirt_stage_duration_ms_bucket",
        "omnirt_live_workers",
    ):
        assert name in text, name


def test_concurrent_clients_follow_one_job(service) -> None:
    job = requests.post(
        f"{service.url}/v1/generate",
        json={**NOOP, "config": {"steps": 5, "step_ms": 40}, "async_run": True},
        timeout=30,
    ).json()
    results: list[list[str]] = []

    def follow() -> None:
        results.append([event["event"] for event in read_sse(f"{service.url}/v1/jobs/{job['id']}/events")])

    threads = [threading.Thread(target=follow) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 5 and all(names == results[0] for names in results)
    assert results[0][-1] == "job_finished"


def test_sync_timeout_answers_202_and_back_pressure_answers_429(service) -> None:
    slow = requests.post(
        f"{service.url}/v1/generate",
        json={**NOOP, "config": {"steps": 20, "step_ms": 50}, "timeout_s": 0.2},
        timeout=30,
    )
    assert slow.status_code == 202 and slow.json()["state"] in ("queued", "running")
    wait_state(service.url, slow.json()["id"], {"succeeded"})
    full = service.start(max_queued_jobs=0)
    refused = requests.post(f"{full.url}/v1/generate", json=NOOP, timeout=30)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_queued"
    assert refused.headers["Retry-After"] == "5"


def test_server_alias_map_routes_to_the_registered_model(service) -> None:
    aliased = service.start(model_aliases={"house-style": "bench-noop"})
    response = requests.post(f"{aliased.url}/v1/generate", json={**NOOP, "model": "house-style"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["model"] == "bench-noop"
