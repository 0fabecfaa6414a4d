"""Real processes for service tests: a private Redis server, the API on a real port, Celery worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

HEARTBEAT_ENV = {"OMNIRT_HEARTBEAT_INTERVAL_S": "0.3", "OMNIRT_HEARTBEAT_TTL_S": "2.5"}  # above a GIL-holding decode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")


class RedisServer:
    """A redis-server of our own on a free port, so tests can stop and restart it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        wait_until(lambda: self._ping(client), timeout=10)
        return self

    @staticmethod
    def _ping(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.exceptions.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class ApiServer:
    """The Flask app on a real port in a thread (threaded server), for HTTP, SSE and WebSocket clients."""

    def __init__(self, settings: Any) -> None:
        from werkzeug.serving import make_server

        from omnirt.api import create_app

        self.app = create_app(settings)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def backplane(self) -> Any:
        return self.app.extensions["omnirt"]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.backplane.close()


class Worker:
    """``celery -A omnirt worker`` in its own process group (so kill -9 takes the parent and its children)."""

    def __init__(self, redis_url: str, queues: list[str], env: dict[str, str], log_dir: Path, name: str) -> None:
        self.name = name
        self.log = (log_dir / f"{name}.log").open("w")
        self.env = {**os.environ, **HEARTBEAT_ENV, **env, "OMNIRT_REDIS_URL": redis_url, "OMP_NUM_THREADS": "1"}
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "omnirt",
            "worker",
            "-Q",
            ",".join(queues),
            "--pool",
            "prefork",
            "--concurrency",
            "1",
            "-E",
            "-n",
            f"{name}@%h",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ]
        self.process = subprocess.Popen(
            argv, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, backplane: Any, timeout: float = 60.0) -> dict[str, Any]:
        def ready() -> Any:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited; see {self.log.name}")
            return next((w for w in backplane.workers.workers() if w.get("node", "").startswith(f"{self.name}@")), None)

        return wait_until(ready, timeout=timeout, interval=0.1)

    def kill9(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()
