"""``omnirt bench dispatch``: what the fleet adds on top of Celery and Redis, measured beside both in one run.

It starts a Redis-backed front end (``omnirt serve``, gunicorn), one OmniRT worker and one bare Celery worker, then:

1. **full path**: a synchronous ``POST /v1/generate`` of ``bench-noop`` (HTTP submit, validation, job record,
   Celery task, worker claim, the five stages with their events, result visible to the caller), alternated with the
   baseline, a bare Celery ``apply_async(...).get()`` round trip;
2. **event relay**: an event appended to a job's stream (as a worker does) until an SSE client of the front end
   receives it, beside the baseline of a raw Redis ``XADD`` to ``XREAD BLOCK`` hop;
3. **accepted submits per second**: async ``POST /v1/generate`` from two load processes with keep-alive
   connections, with the OmniRT worker paused (SIGSTOP) so that it does not drain the flood on the same cores.

Latencies are wall-clock on one machine (``time.time_ns`` across processes). Percentiles are nearest-rank.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

NOOP = {"task": "text2image", "model": "bench-noop", "inputs": {"prompt": "bench"}, "config": {"steps": 1}}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.5), 3),
        "p99_ms": round(percentile(values, 0.99), 3),
        "mean_ms": round(statistics.fmean(values), 3),
        "n": len(values),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {timeout}s")


class Processes:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.children: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("w")
        child = subprocess.Popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append(child)
        return child

    def stop(self) -> None:
        import signal

        for child in self.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)


def run(
    redis_url: str, *, rounds: int = 200, submits: int = 2000, clients: int = 8, events: int = 500, api_workers: int = 2
) -> dict[str, Any]:
    import redis
    import requests

    scratch = Path(tempfile.mkdtemp(prefix="omnirt-bench-dispatch-"))
    env = {
        **os.environ,
        "OMNIRT_REDIS_URL": redis_url,
        "OMNIRT_PLUGINS": "omnirt.bench.noop",
        "OMNIRT_ARTIFACT_DIR": str(scratch / "artifacts"),
        "OMP_NUM_THREADS": "1",
        "OMNIRT_MAX_QUEUED_JOBS": str(10 * submits),
    }
    os.environ.update({key: env[key] for key in ("OMNIRT_REDIS_URL", "OMNIRT_PLUGINS")})
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    procs = Processes(env, scratch)
    python = sys.executable
    try:
        procs.start(
            "api",
            [
                python,
                "-m",
                "omnirt.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(api_workers),
                "--threads",
                "32",
            ],
        )
        procs.start(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "omnirt",
                "worker",
                "-Q",
                "omnirt.experimental.cpu",
                "--pool",
                "prefork",
                "-c",
                "1",
                "-n",
                f"bench-{port}@%h",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "WARNING",
            ],
        )
        procs.start(
            "raw-worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "omnirt.bench.raw_celery",
                "worker",
                "-Q",
                "omnirt.bench.raw",
                "--pool",
                "prefork",
                "-c",
                "1",
                "-n",
                f"raw-{port}@%h",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "WARNING",
            ],
        )
        session = requests.Session()
        _wait(lambda: session.get(f"{base}/readyz", timeout=2).status_code == 200, 120, "the OmniRT fleet")
        from omnirt.bench.raw_celery import RAW_QUEUE, echo

        _wait(lambda: echo.apply_async(args=[0], queue=RAW_QUEUE).get(timeout=2) == 0, 60, "the raw Celery worker")
        for _ in range(10):  # warm both paths
            session.post(f"{base}/v1/generate", json=NOOP, timeout=30).raise_for_status()
            echo.apply_async(args=[0], queue=RAW_QUEUE).get(timeout=10)

        full, raw = [], []
        for index in range(rounds):
            started = time.perf_counter()
            response = session.post(f"{base}/v1/generate", json=NOOP, timeout=30)
            full.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            started = time.perf_counter()
            echo.apply_async(args=[index], queue=RAW_QUEUE).get(timeout=10)
            raw.append((time.perf_counter() - started) * 1000)

        relay, hop = _relay(base, redis.Redis.from_url(redis_url, decode_responses=True), events)
        # The worker would drain the flood on the same two cores; pause it so the figure is the front end's.
        import signal

        worker = procs.children[1]
        os.killpg(worker.pid, signal.SIGSTOP)
        try:
            rate = _submit_rate(base, submits, clients)
        finally:
            os.killpg(worker.pid, signal.SIGCONT)
    finally:
        procs.stop()
    full_s, raw_s = summary(full), summary(raw)
    return {
        "full_path": full_s,
        "raw_celery_round_trip": raw_s,
        "full_path_overhead_p50_ms": round(full_s["p50_ms"] - raw_s["p50_ms"], 3),
        "accepted_submits_per_s": rate,
        "event_relay": summary(relay),
        "raw_redis_xadd_xread": summary(hop),
        "setup": {
            "api_workers": api_workers,
            "api_threads": 32,
            "clients": clients,
            "rounds": rounds,
            "submits": submits,
            "events": events,
            "cpus": os.cpu_count(),
        },
    }


def _submit_client(base: str, body: bytes, count: int, threads: int, results: Any) -> None:
    """One load process: ``threads`` keep-alive connections posting async submits (stdlib http.client)."""
    import http.client
    from urllib.parse import urlsplit

    host = urlsplit(base)

    def post_many(share: int) -> int:
        connection = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
        accepted = 0
        for _ in range(share):
            connection.request("POST", "/v1/generate", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            accepted += response.status == 202
        connection.close()
        return accepted

    with ThreadPoolExecutor(threads) as pool:
        results.put(sum(pool.map(post_many, [count // threads] * threads)))


def _submit_rate(base: str, submits: int, clients: int) -> float:
    """Async submits accepted per second, from two load processes (a single Python client is the bottleneck)."""
    import multiprocessing

    body = json.dumps({**NOOP, "async_run": True}).encode()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [
        context.Process(target=_submit_client, args=(base, body, submits // 2, max(1, clients // 2), results))
        for _ in range(2)
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    accepted = sum(results.get(timeout=300) for _ in processes)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join(timeout=30)
    return round(accepted / elapsed, 1)


def _relay(base: str, client: Any, count: int) -> tuple[list[float], list[float]]:
    """Latency of an appended event to an SSE client, and of a raw XADD to a blocked XREAD."""
    import requests

    from omnirt import keys
    from omnirt.contracts.types import StageEvent
    from omnirt.events.bus import RedisEventBus

    # A job that stays queued (no CUDA worker here), so its stream is open while events are appended.
    job = requests.post(f"{base}/v1/generate", json={**NOOP, "backend": "cuda", "async_run": True}, timeout=30).json()
    bus = RedisEventBus(client, maxlen=10 * count, ttl_s=600, job_ttl_s=600)
    received: list[float] = []
    ready = threading.Event()

    def listen() -> None:
        # Read chunks as they arrive (iter_lines would wait to fill a 512-byte buffer first).
        with requests.get(f"{base}/v1/jobs/{job['id']}/events", stream=True, timeout=120) as response:
            ready.set()
            for chunk in response.iter_content(chunk_size=None):
                arrived = time.time_ns()
                for line in chunk.decode().splitlines():
                    if line.startswith("data: "):
                        data = json.loads(line[6:]).get("data", {})
                        if "sent_ns" in data:
                            received.append((arrived - data["sent_ns"]) / 1e6)
                if len(received) >= count:
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    ready.wait(10)
    time.sleep(0.5)
    for index in range(count):
        bus.append(
            job["id"],
            StageEvent(
                event="progress", stage="bench", timestamp_ms=0, data={"step": index, "sent_ns": time.time_ns()}
            ),
        )
        time.sleep(0.005)
    listener.join(timeout=30)
    requests.delete(f"{base}/v1/jobs/{job['id']}", timeout=10)

    hops: list[float] = []
    key = keys.bench_hop(time.time_ns())
    reader = client.connection_pool.get_connection("XREAD")
    reader_client = type(client)(connection_pool=client.connection_pool)
    client.connection_pool.release(reader)

    def read_hops() -> None:
        last = "$"
        while len(hops) < count:
            for _, entries in reader_client.xread({key: last}, block=5000, count=100) or []:
                for entry_id, fields in entries:
                    hops.append((time.time_ns() - int(fields["sent_ns"])) / 1e6)
                    last = entry_id

    hop_reader = threading.Thread(target=read_hops, daemon=True)
    hop_reader.start()
    time.sleep(0.2)
    for _ in range(count):
        client.xadd(key, {"sent_ns": time.time_ns()})
        time.sleep(0.005)
    hop_reader.join(timeout=30)
    client.delete(key)
    return received, hops
