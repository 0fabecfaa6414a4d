"""``omnirt bench streams``: a fleet front end holding many long-lived streams while it keeps answering.

It starts a private Redis (unless given ``--redis-url``), a front end the production way (``omnirt serve
--redis-url``: gunicorn, gevent workers unless ``--worker-class gthread``) and, when ``--sessions`` is above zero, one
Celery worker on ``omnirt.core.cpu`` for the avatar sessions. Then:

1. submits one queued job per stream (``bench-noop`` on ``omnirt.experimental.cpu``, which no worker serves, so the
   jobs wait and their streams stay open) and opens every stream at once from a separate process (aiohttp, one
   event loop): ``ws_share`` of them are ``WS /v1/jobs/<id>/stream``, the rest ``GET /v1/jobs/<id>/events`` (SSE);
2. meanwhile, from this process, probes ``GET /healthz`` and async ``POST /v1/generate`` every ``probe_interval_s``,
   each on a fresh connection (as a load balancer's health check does), from the first stream opened to the last
   terminal event received;
3. runs ``sessions`` avatar sessions (``photoreal-avatar``, FlashTalk protocol, one ``AUDI`` chunk of 1.12 s sent
   every 1.12 s) for ``seconds``; every chunk's ``VIDX`` must come back within the chunk's duration;
4. cancels every stream's job (``DELETE /v1/jobs/<id>``) and waits for each stream's terminal event.

Memory per open stream is the growth of the front end's worker processes' RSS (psutil) from before the streams open
to when all are open, divided by their number. Percentiles are nearest-rank (``omnirt.bench.dispatch.percentile``).
The stream clients run as ``python -m omnirt.bench.streams`` (this module's ``main``), reporting JSON lines.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from omnirt.bench.dispatch import Processes, _free_port, _wait, percentile, summary
from omnirt.events.bus import TERMINAL_EVENTS

NOOP_ASYNC = {
    "task": "text2image",
    "model": "bench-noop",
    "inputs": {"prompt": "bench"},
    "config": {"steps": 1},
    "async_run": True,
}
HEALTHZ_P99_MS = 100.0
GENERATE_P99_MS = 250.0
STATUS_EVERY_S = 0.5


# -- HTTP helpers (stdlib, one request per fresh connection unless a connection is passed) ---------------------------


def _request(
    base: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    timeout: float = 10.0,
    connection: http.client.HTTPConnection | None = None,
) -> tuple[int, bytes]:
    parts = urlsplit(base)
    conn = connection or http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if connection is None:
            conn.close()


def submit_jobs(base: str, count: int) -> list[str]:
    """``count`` async bench-noop jobs over one keep-alive connection; their ids."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    ids = []
    try:
        for _ in range(count):
            status, data = _request(base, "POST", "/v1/generate", NOOP_ASYNC, connection=conn)
            if status != 202:
                raise RuntimeError(f"submit answered {status}: {data[:200]!r}")
            ids.append(json.loads(data)["id"])
    finally:
        conn.close()
    return ids


def cancel_jobs(base: str, job_ids: list[str], clients: int = 8) -> dict[int | str, int]:
    """``DELETE`` every job from ``clients`` threads; how many answers of each status (``"timeout"`` or
    ``"error"`` when a starved front end did not answer)."""
    statuses: dict[int | str, int] = {}
    lock = threading.Lock()

    def cancel(share: list[str]) -> None:
        parts = urlsplit(base)
        for job_id in share:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            try:
                status: int | str = _request(base, "DELETE", f"/v1/jobs/{job_id}", connection=conn)[0]
            except TimeoutError:
                status = "timeout"
            except OSError:
                status = "error"
            finally:
                conn.close()
            with lock:
                statuses[status] = statuses.get(status, 0) + 1

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(cancel, [job_ids[index::clients] for index in range(clients)]))
    return statuses


# -- Probes -----------------------------------------------------------------------------------------------------------


@dataclass
class Probe:
    """One route probed every ``interval_s`` on a fresh connection, in a thread, until :meth:`stop`."""

    base: str
    method: str
    path: str
    body: dict[str, Any] | None
    expect: int
    interval_s: float
    timeout_s: float
    latencies_ms: list[float] = field(default_factory=list)
    started_at: list[float] = field(default_factory=list)  # time.monotonic() of each probe
    failures: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"probe {self.path}", daemon=True)

    def start(self) -> Probe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 5)

    def _run(self) -> None:
        next_at = time.perf_counter()
        while not self._stop.is_set():
            started = time.perf_counter()
            self.started_at.append(time.monotonic())
            try:
                status, _ = _request(self.base, self.method, self.path, self.body, timeout=self.timeout_s)
                error = None if status == self.expect else f"status {status}"
            except Exception as exc:  # noqa: BLE001 - a probe that fails is a figure, not a crash
                error = type(exc).__name__
            self.latencies_ms.append((time.perf_counter() - started) * 1000)
            if error is not None:
                self.failures += 1
                self.errors[error] = self.errors.get(error, 0) + 1
            next_at = max(next_at + self.interval_s, time.perf_counter())
            self._stop.wait(max(0.0, next_at - time.perf_counter()))

    def report(self, limit_ms: float, phases: dict[str, tuple[float, float]]) -> dict[str, Any]:
        """Figures over the whole run, the p99 and worst of each phase (name: monotonic start, end), and ok."""
        values = self.latencies_ms or [0.0]
        by_phase = {}
        for name, (start, end) in phases.items():
            inside = [ms for at, ms in zip(self.started_at, self.latencies_ms, strict=False) if start <= at < end]
            if inside:
                by_phase[name] = {"p99_ms": round(percentile(inside, 0.99), 3), "max_ms": round(max(inside), 3)}
        return {
            **summary(values),
            "phases": by_phase,
            "max_ms": round(max(values), 3),
            "failures": self.failures,
            "errors": self.errors,
            "limit_p99_ms": limit_ms,
            "ok": bool(self.latencies_ms) and self.failures == 0 and percentile(values, 0.99) <= limit_ms,
        }


# -- Stream clients (a separate process: python -m omnirt.bench.streams) ---------------------------------------------


async def _follow(
    session: Any, base: str, job_id: str, websocket: bool, opened: list[int], gate: asyncio.Semaphore
) -> dict[str, Any]:
    """Follow one job's stream until its terminal event; the events seen and how it ended. ``gate`` is held until
    the stream is open: it bounds how many clients are connecting at the same moment."""
    import aiohttp

    outcome: dict[str, Any] = {"job_id": job_id, "ws": websocket, "events": 0, "terminal": None, "error": None}
    holding = True
    await gate.acquire()

    def mark(kind: int) -> None:  # 0: open, 1: refused
        nonlocal holding
        opened[kind] += 1
        holding = False
        gate.release()

    try:
        if websocket:
            async with session.ws_connect(f"{base.replace('http', 'ws', 1)}/v1/jobs/{job_id}/stream") as ws:
                mark(0)
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    event = json.loads(message.data).get("event")
                    outcome["events"] += event != "keep_alive"
                    if event in TERMINAL_EVENTS:
                        outcome["terminal"] = event
                        break
            return outcome
        async with session.get(f"{base}/v1/jobs/{job_id}/events") as response:
            if response.status != 200:
                outcome["error"] = f"status {response.status}: {(await response.text())[:200]}"
                mark(1)
                return outcome
            async for line in response.content:
                if holding:  # the first line ("retry: 2000"): the server is in the stream
                    mark(0)
                if line.startswith(b"event: "):
                    event = line[7:].strip().decode()
                    outcome["events"] += 1
                    if event in TERMINAL_EVENTS:
                        outcome["terminal"] = event
                        break
    except Exception as exc:  # noqa: BLE001 - a stream that breaks is a figure
        outcome["error"] = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        if holding:
            gate.release()
    return outcome


async def _follow_all(
    base: str, job_ids: list[str], ws_share: float, deadline_s: float, open_concurrency: int
) -> list[dict[str, Any]]:
    import aiohttp

    opened = [0, 0]  # opened, refused
    gate = asyncio.Semaphore(open_concurrency)
    ws_every = round(1 / ws_share) if ws_share > 0 else 0
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        tasks = [
            asyncio.create_task(_follow(session, base, job_id, bool(ws_every) and index % ws_every == 0, opened, gate))
            for index, job_id in enumerate(job_ids)
        ]

        async def report() -> None:
            while True:
                finished = sum(task.done() for task in tasks)
                print(json.dumps({"opened": opened[0], "refused": opened[1], "finished": finished}), flush=True)
                await asyncio.sleep(STATUS_EVERY_S)

        reporter = asyncio.create_task(report())
        done, pending = await asyncio.wait(tasks, timeout=deadline_s)
        reporter.cancel()
        for task in pending:
            task.cancel()
        return [task.result() if task in done else {"error": "no terminal event in time"} for task in tasks]


def main(argv: list[str] | None = None) -> None:
    """The stream-client process: JSON status lines while it runs, then one line with every stream's outcome."""
    parser = argparse.ArgumentParser(prog="python -m omnirt.bench.streams")
    parser.add_argument("base")
    parser.add_argument("jobs", type=Path, help="A JSON list of job ids, one stream each.")
    parser.add_argument("--ws-share", type=float, default=0.1)
    parser.add_argument("--deadline-s", type=float, default=600.0)
    parser.add_argument("--open-concurrency", type=int, default=50, help="Clients connecting at the same moment.")
    args = parser.parse_args(argv)
    job_ids = json.loads(args.jobs.read_text())
    outcomes = asyncio.run(
        _follow_all(args.base, job_ids, args.ws_share, args.deadline_s, max(1, args.open_concurrency))
    )
    print(json.dumps({"outcomes": outcomes}), flush=True)


class StreamClients:
    """The stream-client process, and the latest status it reported."""

    def __init__(
        self, base: str, job_ids: list[str], scratch: Path, *, ws_share: float, deadline_s: float, open_concurrency: int
    ) -> None:
        jobs = scratch / "stream-jobs.json"
        jobs.write_text(json.dumps(job_ids))
        self.total = len(job_ids)
        self.status: dict[str, int] = {"opened": 0, "refused": 0, "finished": 0}
        self.outcomes: list[dict[str, Any]] | None = None
        argv = [sys.executable, "-m", "omnirt.bench.streams", base, str(jobs), "--ws-share", str(ws_share)]
        argv += ["--deadline-s", str(deadline_s), "--open-concurrency", str(open_concurrency)]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            if "outcomes" in message:
                self.outcomes = message["outcomes"]
            else:
                self.status = message

    def wait_open(self, timeout: float) -> float:
        """Wait until every stream is open (or refused), at most ``timeout``; the seconds it took."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout and self.process.poll() is None:
            if self.status["opened"] + self.status["refused"] + self.status["finished"] >= self.total:
                break
            time.sleep(0.05)
        return time.perf_counter() - started

    def wait_done(self, timeout: float) -> list[dict[str, Any]]:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
        return self.outcomes or []


# -- Avatar sessions --------------------------------------------------------------------------------------------------


@dataclass
class AvatarSessions:
    """``count`` FlashTalk clients of ``photoreal-avatar``, each sending one chunk per chunk duration till ``until``."""

    base: str
    count: int
    model: str = "photoreal-avatar"
    chunk_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def warm(self) -> None:
        """One session, one chunk: loads the model and prepares the portrait before the paced sessions start."""
        self._session(time.monotonic(), chunks=1)

    def run(self, until: float) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._guarded, args=(until,), daemon=True) for _ in range(self.count)]
        for thread in threads:
            thread.start()
        return threads

    def _guarded(self, until: float) -> None:
        try:
            self._session(until)
        except Exception as exc:  # noqa: BLE001 - recorded, counted as a failed session
            self.errors.append(f"{type(exc).__name__}: {exc}"[:200])

    def _session(self, until: float, chunks: int | None = None) -> None:
        from simple_websocket import Client

        from omnirt.bench.avatar import CHUNK_SECONDS, _portrait_b64, _speech_like

        audio = _speech_like(17920)
        ws = Client.connect(f"{self.base.replace('http', 'ws', 1)}/v1/audio2video/{self.model}", max_message_size=2**26)
        try:
            ws.send(json.dumps({"type": "init", "ref_image": _portrait_b64()}))
            answer = json.loads(ws.receive(timeout=300))
            if answer.get("type") != "init_ok":
                raise RuntimeError(f"init answered {answer}")
            next_send, sent = time.perf_counter(), 0
            while (chunks is None and time.monotonic() < until) or (chunks is not None and sent < chunks):
                time.sleep(max(0.0, next_send - time.perf_counter()))
                started = time.perf_counter()
                ws.send(b"AUDI" + audio)
                reply = ws.receive(timeout=60)
                if not isinstance(reply, bytes) or not reply.startswith(b"VIDX"):
                    raise RuntimeError(f"AUDI answered {str(reply)[:200]}")
                if chunks is None:
                    self.chunk_ms.append((time.perf_counter() - started) * 1000)
                next_send += CHUNK_SECONDS
                sent += 1
            ws.send(json.dumps({"type": "close"}))
            ws.receive(timeout=30)
        finally:
            ws.close()


# -- The run ----------------------------------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of the bench's own on a free port (needs ``redis-server`` on PATH)."""

    def __init__(self) -> None:
        import redis

        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: redis.Redis(port=self.port).ping(), 10, "redis-server")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def front_end_rss(server_pid: int) -> int:
    """Resident bytes of the front end's gunicorn workers (the children of the ``omnirt serve`` process)."""
    import psutil

    total = 0
    for child in psutil.Process(server_pid).children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run(
    *,
    streams: int = 1000,
    sessions: int = 20,
    seconds: float = 300.0,
    redis_url: str | None = None,
    worker_class: str = "gevent",
    api_workers: int = 2,
    threads: int = 64,
    ws_share: float = 0.1,
    open_concurrency: int = 50,
    probe_interval_s: float = 0.1,
    probe_timeout_s: float = 10.0,
    open_timeout_s: float = 120.0,
    end_timeout_s: float = 120.0,
) -> dict[str, Any]:
    """Measure a fleet front end under ``streams`` open streams and ``sessions`` avatar sessions for ``seconds``."""
    scratch = Path(tempfile.mkdtemp(prefix="omnirt-bench-streams-"))
    redis_server = PrivateRedis() if redis_url is None else None
    redis_url = redis_url or redis_server.url  # type: ignore[union-attr]
    env = {
        **os.environ,
        "OMNIRT_REDIS_URL": redis_url,
        "OMNIRT_PLUGINS": "omnirt.bench.noop",
        "OMNIRT_ARTIFACT_DIR": str(scratch / "artifacts"),
        "OMNIRT_FRONTEND_WORKER_CLASS": worker_class,
        "OMNIRT_MAX_QUEUED_JOBS": str(10 * streams + 100_000),
        "OMNIRT_SESSION_CAPACITY": str(max(1, sessions)),
        "OMP_NUM_THREADS": "1",
    }
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    procs = Processes(env, scratch)
    python = sys.executable
    healthz = generate = clients = None
    avatars = AvatarSessions(base, sessions)
    try:
        serve = ["serve", "--port", str(port), "--workers", str(api_workers), "--threads", str(threads)]
        server = procs.start("api", [python, "-m", "omnirt.cli", *serve])
        if sessions:
            worker = ["worker", "-Q", "omnirt.core.cpu", "--pool", "prefork", "-c", "1", "-n", f"streams-{port}@%h"]
            procs.start("worker", [python, "-m", "celery", "-A", "omnirt", *worker, "--without-mingle", "-l", "ERROR"])
            _wait(lambda: _request(base, "GET", "/readyz", timeout=2)[0] == 200, 120, "the fleet")
            avatars.warm()
        else:
            _wait(lambda: _request(base, "GET", "/healthz", timeout=2)[0] == 200, 60, "the front end")
        for _ in range(5):  # warm both routes in every worker process
            _request(base, "GET", "/healthz")
            _request(base, "POST", "/v1/generate", NOOP_ASYNC)
        job_ids = submit_jobs(base, streams)
        rss_before = front_end_rss(server.pid)

        healthz = Probe(base, "GET", "/healthz", None, 200, probe_interval_s, probe_timeout_s).start()
        generate = Probe(base, "POST", "/v1/generate", NOOP_ASYNC, 202, probe_interval_s, probe_timeout_s).start()
        deadline_s = open_timeout_s + seconds + end_timeout_s + 60
        opening = time.monotonic()
        clients = StreamClients(
            base, job_ids, scratch, ws_share=ws_share, deadline_s=deadline_s, open_concurrency=open_concurrency
        )
        open_s = clients.wait_open(open_timeout_s)
        opened = dict(clients.status)
        rss_open = front_end_rss(server.pid)

        steady = time.monotonic()
        until = steady + seconds
        session_threads = avatars.run(until) if sessions else []
        while time.monotonic() < until and clients.process.poll() is None:
            time.sleep(0.2)
        for thread in session_threads:
            thread.join(timeout=120)

        ending = time.monotonic()
        cancelled = cancel_jobs(base, job_ids)
        outcomes = clients.wait_done(end_timeout_s)
        ended = time.monotonic()
        end_s = ended - ending
    finally:
        for probe in (healthz, generate):
            if probe is not None:
                probe.stop()
        if clients is not None and clients.process.poll() is None:
            clients.process.kill()
        procs.stop()
        if redis_server is not None:
            redis_server.stop()

    from omnirt.bench.avatar import CHUNK_SECONDS

    terminals: dict[str, int] = {}
    for outcome in outcomes:
        key = outcome.get("terminal") or "none"
        terminals[key] = terminals.get(key, 0) + 1
    errors = [outcome["error"] for outcome in outcomes if outcome.get("error")]
    chunk_limit_ms = CHUNK_SECONDS * 1000
    late = sum(value > chunk_limit_ms for value in avatars.chunk_ms)
    stream_report = {
        "requested": streams,
        "websocket": sum(bool(outcome.get("ws")) for outcome in outcomes),
        "opened": opened["opened"],
        "refused": opened["refused"],
        "open_all_s": round(open_s, 3),
        "terminal_events": terminals,
        "errors": errors[:10],
        "cancel_statuses": cancelled,
        "all_terminal_s": round(end_s, 3),
        "ok": len(outcomes) == streams and terminals.get("job_cancelled", 0) == streams,
    }
    session_report = {
        "sessions": sessions,
        "chunks": len(avatars.chunk_ms),
        "chunk_duration_ms": round(chunk_limit_ms, 1),
        "chunk_latency": summary(avatars.chunk_ms) if avatars.chunk_ms else {},
        "worst_chunk_ms": round(max(avatars.chunk_ms), 1) if avatars.chunk_ms else None,
        "late_chunks": late,
        "errors": avatars.errors[:10],
        "ok": not sessions or (not avatars.errors and bool(avatars.chunk_ms) and late == 0),
    }
    memory = {
        "front_end_rss_before_mib": round(rss_before / 2**20, 1),
        "front_end_rss_open_mib": round(rss_open / 2**20, 1),
        "per_open_stream_kib": round((rss_open - rss_before) / 1024 / max(1, opened["opened"]), 1),
    }
    phases = {"opening": (opening, steady), "steady": (steady, ending), "ending": (ending, ended)}
    health_report = healthz.report(HEALTHZ_P99_MS, phases)  # type: ignore[union-attr]
    generate_report = generate.report(GENERATE_P99_MS, phases)  # type: ignore[union-attr]
    return {
        "ok": all(part["ok"] for part in (stream_report, session_report, health_report, generate_report)),
        "streams": stream_report,
        "healthz": health_report,
        "generate_async": generate_report,
        "avatar_sessions": session_report,
        "memory": memory,
        "setup": {
            "worker_class": worker_class,
            "api_workers": api_workers,
            "threads": threads if worker_class == "gthread" else None,
            "seconds": seconds,
            "open_concurrency": open_concurrency,
            "probe_interval_s": probe_interval_s,
            "cpus": os.cpu_count(),
        },
    }


if __name__ == "__main__":
    main()
