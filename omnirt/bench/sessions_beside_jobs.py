"""``omnirt bench sessions-beside-jobs``: realtime sessions on a worker whose only job slot is busy (issue 8, item 13).

It starts a private ``redis-server``, the API in this process and ONE Celery worker (prefork, ``--concurrency 1``) on
the core and experimental CPU queues, with ``OMNIRT_SESSION_CAPACITY`` = the sessions tried. After one warm-up
session (the photoreal avatar loaded), for each path:

1. ``jobs`` diffusion jobs (tiny random-weight sd15, ``steps`` steps at 64x64) are queued; the first is running;
2. ``sessions`` FlashTalk-protocol clients (``/v1/audio2video/photoreal-avatar``) send ``init`` at once, then their
   first ``AUDI`` chunk as soon as ``init_ok`` comes; a session is admitted when ``init_ok`` comes (else the API's
   ``no_capacity`` after ``OMNIRT_SESSION_ADMIT_S``); TTFF is ``init`` sent until the first ``VIDX`` arrives;
3. the jobs are cancelled and the worker drains before the next path.

Paths: ``session_queue`` (this build: the front end offers the session on the queue's session list, taken by the
worker process's session consumer beside its job slot) and ``celery_task`` (the path before it: the front end sends
the ``omnirt.session`` Celery task on the model's queue, which waits for the job slot; the task then hands the
session to the consumer, as a task from an older front end does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from omnirt.bench.dispatch import Processes, _free_port, _wait, summary

PATHS = ("session_queue", "celery_task")


def _start_redis(scratch: Path) -> tuple[str, subprocess.Popen]:
    port = _free_port()
    log = (scratch / "redis.log").open("w")
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    return f"redis://127.0.0.1:{port}/0", server


def _open_sessions(base: str, count: int, frame: dict[str, int], chunk: bytes) -> list[dict[str, Any]]:
    """Open ``count`` FlashTalk sessions at once; per session: admitted, init_ok and TTFF in ms, or the error code."""
    from simple_websocket import Client

    results: list[dict[str, Any]] = [{} for _ in range(count)]
    go = threading.Barrier(count)

    def client(index: int) -> None:
        ws = Client.connect(f"{base}/v1/audio2video/photoreal-avatar", max_message_size=2**26)
        try:
            go.wait(timeout=30)
            started = time.perf_counter()
            ws.send(json.dumps({"type": "init", **frame}))
            answer = json.loads(ws.receive(timeout=120))
            if answer.get("type") != "init_ok":
                results[index] = {"admitted": False, "code": answer.get("code")}
                return
            init_ok_ms = (time.perf_counter() - started) * 1000
            ws.send(b"AUDI" + chunk)
            video = ws.receive(timeout=120)
            if not isinstance(video, bytes):
                results[index] = {"admitted": True, "code": json.loads(video).get("code")}
                return
            ttff_ms = (time.perf_counter() - started) * 1000
            results[index] = {"admitted": True, "init_ok_ms": init_ok_ms, "ttff_ms": ttff_ms}
            ws.send(json.dumps({"type": "close"}))
            ws.receive(timeout=30)
        finally:
            ws.close()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results


def run(
    *, jobs: int = 100, sessions: int = 10, steps: int = 50, width: int = 416, height: int = 704, slice_len: int = 28
) -> dict[str, Any]:
    import numpy as np
    from werkzeug.serving import make_server

    from omnirt.api import create_app
    from omnirt.models.tiny_common import make_tiny
    from omnirt.settings import Settings

    scratch = Path(tempfile.mkdtemp(prefix="omnirt-bench-sessions-"))
    make_tiny("sd15", scratch / "models" / "sd15")
    redis_url, redis_server = _start_redis(scratch)
    env = {
        **os.environ,
        "OMNIRT_REDIS_URL": redis_url,
        "OMNIRT_MODELS_DIR": str(scratch / "models"),
        "OMNIRT_ARTIFACT_DIR": str(scratch / "artifacts"),
        "OMNIRT_SESSION_CAPACITY": str(sessions),
        "OMNIRT_PRELOAD": "sd15",
        "OMP_NUM_THREADS": "1",
    }
    os.environ.update({key: env[key] for key in ("OMNIRT_MODELS_DIR", "OMNIRT_ARTIFACT_DIR")})
    procs = Processes(env, scratch)
    server: Any = None
    app: Any = None
    try:
        _wait(lambda: _ping(redis_url), 10, "redis-server")
        settings = Settings(redis_url=redis_url, artifact_dir=scratch / "artifacts")
        app = create_app(settings)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        http = f"http://127.0.0.1:{server.server_port}"
        base = http.replace("http://", "ws://")
        backplane = app.extensions["omnirt"]
        queues = "omnirt.core.cpu,omnirt.experimental.cpu"
        celery = [sys.executable, "-m", "celery", "-A", "omnirt", "worker", "-Q", queues, "--pool", "prefork"]
        procs.start("worker", [*celery, "--concurrency", "1", "-n", "bench-sessions@%h", "--without-mingle"])
        _wait(lambda: backplane.workers.workers(), 120, "the worker")
        frame = {"width": width, "height": height, "slice_len": slice_len}
        t = np.arange(slice_len * 16000 // 25) / 16000
        chunk = (np.sin(2 * np.pi * 180 * t) * 12000).astype("<i2").tobytes()
        _open_sessions(base, 1, frame, chunk)  # warm-up: the photoreal avatar loads
        body = {
            "task": "text2image",
            "model": "sd15",
            "inputs": {"prompt": "a lighthouse at dusk"},
            "config": {"num_inference_steps": steps, "width": 64, "height": 64},
            "async_run": True,
        }
        dispatcher = backplane.dispatcher
        offer_on_list = dispatcher.start_session
        figures: dict[str, Any] = {}
        for path in PATHS:
            if path == "celery_task":  # as a front end before this change sent it
                dispatcher.start_session = lambda session_id, model, queue_name: dispatcher.celery.send_task(
                    "omnirt.session", args=[session_id], kwargs={"model": model}, queue=queue_name
                )
            else:
                dispatcher.start_session = offer_on_list
            figures[path] = _measure(http, base, body, jobs, sessions, frame, chunk)
        return {
            **figures,
            "jobs": jobs,
            "job": f"tiny sd15, {steps} steps, 64x64",
            "sessions": sessions,
            "frame": {**frame, "fps": 25},
            "worker": "one prefork worker, --concurrency 1, OMNIRT_SESSION_CAPACITY=sessions",
            "admit_deadline_s": Settings.from_env().session_admit_s,
            "cpus": len(os.sched_getaffinity(0)),
        }
    finally:
        if server is not None:
            server.shutdown()
            app.extensions["omnirt"].close()
        procs.stop()
        redis_server.terminate()
        redis_server.wait(timeout=10)


def _measure(
    http: str, base: str, body: dict[str, Any], jobs: int, sessions: int, frame: dict[str, int], chunk: bytes
) -> dict[str, Any]:
    """Queue ``jobs``, open ``sessions`` once the first runs, then cancel the jobs and wait for the worker to drain."""
    import requests

    ids = [requests.post(f"{http}/v1/generate", json=body, timeout=30).json()["id"] for _ in range(jobs)]
    _wait(lambda: _state(http, ids[0]) == "running", 120, "the first job")
    results = _open_sessions(base, sessions, frame, chunk)
    states = [_state(http, job_id) for job_id in ids]
    for job_id in ids:
        requests.delete(f"{http}/v1/jobs/{job_id}", timeout=30)
    _wait(lambda: all(_state(http, job_id) in ("cancelled", "succeeded") for job_id in ids), 120, "the drain")
    admitted = [result for result in results if result.get("admitted")]
    return {
        "admitted": f"{len(admitted)}/{sessions}",
        "refused": sorted({str(result.get("code")) for result in results if not result.get("admitted")}),
        "init_ok": summary([result["init_ok_ms"] for result in admitted if "init_ok_ms" in result] or [0.0]),
        "ttff": summary([result["ttff_ms"] for result in admitted if "ttff_ms" in result] or [0.0]),
        "jobs_finished_meanwhile": states.count("succeeded"),
        "jobs_still_queued_after": states.count("queued"),
    }


def _ping(redis_url: str) -> bool:
    import redis

    return bool(redis.Redis.from_url(redis_url).ping())


def _state(http: str, job_id: str) -> str:
    import requests

    return requests.get(f"{http}/v1/jobs/{job_id}", timeout=30).json()["state"]
