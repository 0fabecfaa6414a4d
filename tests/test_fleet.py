"""Fleet-only behaviour with real processes: a worker killed mid-job, a front end restarted, Redis going away,
readiness with and without workers, and what Flower sees of a task."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import service_settings
from tests.support.servers import ApiServer, RedisServer, Worker, wait_until

SLOW = {
    "task": "text2image",
    "model": "bench-noop",
    "inputs": {"prompt": "x"},
    "config": {"steps": 40, "step_ms": 50},
    "async_run": True,
}


@pytest.fixture()
def private_redis() -> Any:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture()
def private_fleet(private_redis: RedisServer, service_env: dict[str, str], service_dirs: dict[str, Path]) -> Any:
    """A Redis, an API and helpers to start workers, all private to one test."""
    api = ApiServer(service_settings(private_redis.url, service_dirs))
    workers: list[Worker] = []

    class Fleet:
        redis = private_redis

        @staticmethod
        def worker(name: str) -> Worker:
            worker = Worker(private_redis.url, ["omnirt.experimental.cpu"], service_env, service_dirs["logs"], name)
            workers.append(worker)
            worker.wait_ready(api.backplane)
            return worker

    fleet = Fleet()
    fleet.api = api
    yield fleet
    for worker in workers:
        worker.stop()
    api.stop()


def job(url: str, job_id: str) -> dict[str, Any]:
    return requests.get(f"{url}/v1/jobs/{job_id}", timeout=10).json()


def test_worker_killed_mid_job_is_rerun_on_another_worker(private_fleet: Any) -> None:
    url = private_fleet.api.url
    first = private_fleet.worker("doomed")
    submitted = requests.post(f"{url}/v1/generate", json=SLOW, timeout=30).json()
    wait_until(lambda: job(url, submitted["id"])["state"] == "running", timeout=60)
    wait_until(lambda: any(e["event"] == "progress" for e in job(url, submitted["id"])["events"]), timeout=30)
    private_fleet.worker("rescuer")
    first.kill9()
    killed_at = time.monotonic()
    record = wait_until(lambda: (r := job(url, submitted["id"]))["state"] in ("succeeded", "failed") and r, timeout=60)
    assert time.monotonic() - killed_at < 30
    names = [event["event"] for event in record["events"]]
    assert record["state"] == "succeeded" and record["attempts"] == 2
    assert "job_requeued" in names and names.count("job_started") == 2 and names[-1] == "job_finished"
    assert record["worker_id"].startswith("rescuer@")


def running_attempt(url: str, job_id: str, attempt: int) -> bool:
    record = job(url, job_id)
    return record["state"] == "running" and record["attempts"] == attempt


def test_job_whose_workers_keep_dying_ends_failed(private_fleet: Any) -> None:
    url = private_fleet.api.url
    submitted = requests.post(f"{url}/v1/generate", json=SLOW, timeout=30).json()
    for attempt in (1, 2):
        worker = private_fleet.worker(f"fragile{attempt}")
        wait_until(lambda expected=attempt: running_attempt(url, submitted["id"], expected), timeout=60)
        worker.kill9()
    record = wait_until(lambda: (r := job(url, submitted["id"]))["state"] in ("failed", "succeeded") and r, timeout=30)
    assert record["state"] == "failed" and record["error"]["code"] == "worker_lost"
    assert [event["event"] for event in record["events"]][-1] == "job_failed"


def test_restarting_the_front_end_loses_nothing(private_fleet: Any, service_dirs: dict[str, Path]) -> None:
    private_fleet.worker("steady")
    first_api = private_fleet.api
    submitted = requests.post(f"{first_api.url}/v1/generate", json=SLOW, timeout=30).json()
    first_api.stop()
    second_api = ApiServer(service_settings(private_fleet.redis.url, service_dirs))
    private_fleet.api = second_api
    record = wait_until(lambda: (r := job(second_api.url, submitted["id"]))["state"] == "succeeded" and r, timeout=60)
    assert [event["event"] for event in record["events"]][-1] == "job_finished"


def test_redis_outage_gives_503_and_the_api_recovers(private_fleet: Any) -> None:
    url = private_fleet.api.url
    private_fleet.redis.stop()
    down = requests.get(f"{url}/v1/jobs", timeout=30)
    assert down.status_code == 503 and down.json()["error"]["code"] == "store_unavailable"
    submit = requests.post(f"{url}/v1/generate", json=SLOW, timeout=30)
    assert submit.status_code == 503
    assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
    assert requests.get(f"{url}/readyz", timeout=30).status_code == 503
    private_fleet.redis.start()
    recovered = wait_until(lambda: requests.get(f"{url}/v1/jobs", timeout=30).status_code == 200, timeout=30)
    assert recovered


def test_readiness_with_and_without_workers(private_fleet: Any, service_dirs: dict[str, Path]) -> None:
    url = private_fleet.api.url
    waiting = requests.get(f"{url}/readyz", timeout=10)
    assert waiting.status_code == 503 and waiting.json()["reasons"] == ["no live worker serves any OmniRT queue"]
    declared = ApiServer(service_settings(private_fleet.redis.url, service_dirs, models=("sd15",)))
    try:
        assert requests.get(f"{declared.url}/readyz", timeout=10).status_code == 503
        worker = private_fleet.worker("ready")
        assert requests.get(f"{url}/readyz", timeout=10).status_code == 200
        assert requests.get(f"{declared.url}/readyz", timeout=10).status_code == 200
        worker.kill9()
        wait_until(lambda: requests.get(f"{declared.url}/readyz", timeout=10).status_code == 503, timeout=10)
    finally:
        declared.stop()


def test_tasks_carry_only_the_job_id(private_fleet: Any) -> None:
    """What Flower shows: task name omnirt.generate, args [job id], kwargs {model, task}; no payloads."""
    import json

    import redis

    submitted = requests.post(f"{private_fleet.api.url}/v1/generate", json=SLOW, timeout=30).json()
    raw = redis.Redis.from_url(private_fleet.redis.url).lrange("omnirt.experimental.cpu", 0, -1)
    message = json.loads(raw[0])
    assert message["headers"]["task"] == "omnirt.generate"
    assert message["headers"]["argsrepr"] == repr([submitted["id"]])
    assert "bench-noop" in message["headers"]["kwargsrepr"] and len(raw[0]) < 2000


def test_worker_preloads_and_reports_its_warm_models(
    private_fleet: Any, service_env: dict[str, str], service_dirs: dict[str, Path]
) -> None:
    worker = Worker(
        private_fleet.redis.url,
        ["omnirt.experimental.cpu"],
        {**service_env, "OMNIRT_PRELOAD": "sd15"},
        service_dirs["logs"],
        "preloader",
    )
    try:
        worker.wait_ready(private_fleet.api.backplane)
        record = wait_until(
            lambda: next(
                (
                    w
                    for w in private_fleet.api.backplane.workers.workers()
                    if w["node"].startswith("preloader@") and w["loaded_models"]
                ),
                None,
            ),
            timeout=60,
        )
        assert [model["model"] for model in record["loaded_models"]] == ["sd15"]
        assert record["device"] == "cpu" and record["queues"] == ["omnirt.experimental.cpu"]
        assert record["memory"]["rss_mb"] > 0
    finally:
        worker.stop()


def test_metrics_are_merged_across_gunicorn_workers(
    private_redis: RedisServer, service_env: dict[str, str], service_dirs: dict[str, Path]
) -> None:
    import os
    import re
    import subprocess
    import sys

    from tests.support.servers import free_port

    port = free_port()
    env = {**os.environ, **service_env, "OMNIRT_REDIS_URL": private_redis.url}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "omnirt.cli", "serve", "--port", str(port), "--workers", "2", "--threads", "4"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _up(url), timeout=60)
        for _ in range(30):
            requests.get(f"{url}/v1/models", headers={"Connection": "close"}, timeout=10)
        pattern = re.compile(r'omnirt_http_request_duration_seconds_count\{[^}]*url_rule="/v1/models"[^}]*\} (\S+)')
        counts = set()
        for _ in range(6):  # each scrape may land on either worker: all must agree
            text = requests.get(f"{url}/metrics", headers={"Connection": "close"}, timeout=10).text
            counts.add(sum(float(value) for value in pattern.findall(text)))
        assert counts == {30.0}
    finally:
        import signal

        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still loading the app
        return False
