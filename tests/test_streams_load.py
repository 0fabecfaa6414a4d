"""A fleet front end, started as ``omnirt serve`` starts it, keeps answering beside hundreds of open streams.

Real processes: a private redis-server, the gunicorn front end (gevent workers) on a free port, stream clients in
their own process (``python -m omnirt.bench.streams``). The control case shows what the probes catch: a threaded
front end whose threads are all held by streams stops answering ``/healthz``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from omnirt.bench import streams as bench
from omnirt.serve import frontend_config
from omnirt.settings import Settings
from tests.support.servers import RedisServer


@pytest.fixture()
def private_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own: its queued bench-noop jobs must not reach the session's worker."""
    server = RedisServer().start()
    yield server
    server.stop()


def test_frontend_config_is_event_driven_unless_told() -> None:
    gevent = frontend_config("127.0.0.1", 8000, Settings(redis_url="redis://x"), workers=2, threads=64)
    assert gevent["worker_class"] == "gevent"
    assert gevent["worker_connections"] == Settings.frontend_connections
    assert "threads" not in gevent and gevent["control_socket_disable"] is True
    threaded = frontend_config(
        "127.0.0.1", 8000, Settings(redis_url="redis://x", frontend_worker_class="gthread"), workers=2, threads=8
    )
    assert threaded["worker_class"] == "gthread" and threaded["threads"] == 8
    with pytest.raises(ValueError, match="OMNIRT_FRONTEND_WORKER_CLASS"):
        frontend_config("h", 1, Settings(redis_url="redis://x", frontend_worker_class="sync"), workers=1, threads=1)


@pytest.mark.timeout(120)
def test_health_and_submits_answer_beside_hundreds_of_streams(private_redis: RedisServer) -> None:
    result = bench.run(
        streams=300,
        sessions=0,
        seconds=4,
        redis_url=private_redis.url,
        ws_share=0.1,
        probe_interval_s=0.05,
        open_timeout_s=30,
        end_timeout_s=30,
    )
    streams = result["streams"]
    assert streams["opened"] == 300 and streams["refused"] == 0, streams
    assert streams["websocket"] == 30
    assert streams["terminal_events"] == {"job_cancelled": 300}, streams
    assert streams["cancel_statuses"] == {200: 300}
    healthz, generate = result["healthz"], result["generate_async"]
    # While the streams are open: the bounds. Opening 300 at once and ending them all (a CPU burst on two cores
    # shared with the clients and Redis): answered, within a second.
    assert healthz["failures"] == 0 and healthz["n"] >= 50, healthz
    assert healthz["phases"]["steady"]["p99_ms"] <= bench.HEALTHZ_P99_MS, healthz
    assert healthz["max_ms"] < 1000, healthz
    assert generate["failures"] == 0 and generate["n"] >= 50, generate
    assert generate["phases"]["steady"]["p99_ms"] <= bench.GENERATE_P99_MS, generate
    assert generate["max_ms"] < 1000, generate
    assert result["setup"]["worker_class"] == "gevent"


@pytest.mark.timeout(120)
def test_a_threaded_front_end_is_starved_by_as_many_streams_as_threads(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    """The control: 1 gthread worker with 4 threads, 4 streams open; /healthz gets no answer within 1 s."""
    import os

    from omnirt.backplane import Backplane

    env = {
        **os.environ,
        "OMNIRT_REDIS_URL": private_redis.url,
        "OMNIRT_PLUGINS": "omnirt.bench.noop",
        "OMNIRT_ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "OMNIRT_FRONTEND_WORKER_CLASS": "gthread",
    }
    port = bench._free_port()
    base = f"http://127.0.0.1:{port}"
    procs = bench.Processes(env, tmp_path)
    clients: Any = None
    try:
        serve = ["serve", "--port", str(port), "--workers", "1", "--threads", "4"]
        procs.start("api", [sys.executable, "-m", "omnirt.cli", *serve])
        bench._wait(lambda: bench._request(base, "GET", "/healthz", timeout=2)[0] == 200, 60, "the front end")
        job_ids = bench.submit_jobs(base, 4)
        clients = bench.StreamClients(base, job_ids, tmp_path, ws_share=0, deadline_s=60, open_concurrency=4)
        clients.wait_open(10)
        assert clients.status["opened"] == 4
        probe = bench.Probe(base, "GET", "/healthz", None, 200, 0.2, 1.0).start()
        import time

        time.sleep(2.5)
        probe.stop()
        assert probe.failures >= 1 and max(probe.latencies_ms) >= 1000, probe.latencies_ms
        plane = Backplane(Settings(redis_url=private_redis.url, artifact_dir=tmp_path / "artifacts"))
        for job_id in job_ids:  # straight in the store: the front end has no thread left for a DELETE
            plane.store.cancel(job_id)
        outcomes = clients.wait_done(30)
        assert [outcome["terminal"] for outcome in outcomes] == ["job_cancelled"] * 4
    finally:
        if clients is not None and clients.process.poll() is None:
            clients.process.kill()
        procs.stop()
