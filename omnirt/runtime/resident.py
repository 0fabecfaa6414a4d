"""Supervising an external resident model server (e.g. SoulX-FlashTalk under torchrun) from a worker.

:class:`ResidentProcess` launches the command, keeps the last lines of its output, waits until its port accepts
connections (the health check), and when the process dies, starts it again with exponential backoff. A
:class:`CircuitBreaker` stops the restarts after too many failures in a row: callers then get
:class:`CircuitBreakerOpen` at once, with the log tail, instead of waiting on a server that keeps crashing.
"""

from __future__ import annotations

import collections
import logging
import shlex
import socket
import subprocess
import threading
import time

from omnirt.contracts.errors import OmniRTError
from omnirt.runtime.launcher import end_group

log = logging.getLogger(__name__)


class CircuitBreakerOpen(OmniRTError):
    code = "runtime_unavailable"
    http_status = 503


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; half-opens (allows one try) after ``reset_s``."""

    def __init__(self, threshold: int = 3, reset_s: float = 60.0) -> None:
        self.threshold, self.reset_s = threshold, reset_s
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def open(self) -> bool:
        if self.opened_at is None:
            return False
        if time.monotonic() - self.opened_at >= self.reset_s:
            return False  # half-open: let one attempt through
        return True

    def success(self) -> None:
        self.failures, self.opened_at = 0, None

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = time.monotonic()


class ResidentProcess:
    """One external server process on ``port``: started on demand, health-checked, restarted with backoff."""

    def __init__(
        self,
        command: str,
        *,
        port: int,
        host: str = "127.0.0.1",
        start_timeout_s: float = 600.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.argv = shlex.split(command.format(port=port, host=host))
        self.host, self.port = host, port
        self.start_timeout_s = start_timeout_s
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.breaker = breaker or CircuitBreaker()
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self._lock = threading.Lock()

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(list(self.tail)[-lines:])

    def healthy(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            return False
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def ensure_running(self) -> str:
        """Start (or restart) the server if needed; returns its address. Raises CircuitBreakerOpen."""
        with self._lock:
            if self.healthy():
                return f"{self.host}:{self.port}"
            delay = self.backoff_s
            while True:
                if self.breaker.open:
                    raise CircuitBreakerOpen(
                        f"The resident server keeps failing ({self.breaker.failures} times); not restarting for now. "
                        f"Last output:\n{self.log_tail()}",
                        details={"command": self.argv, "log_tail": self.log_tail()},
                    )
                if self._start():
                    self.breaker.success()
                    return f"{self.host}:{self.port}"
                self.breaker.failure()
                self.restarts += 1
                log.warning("resident server failed to start; retrying in %.1fs", delay)
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)

    def _start(self) -> bool:
        self.stop()
        self.process = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        threading.Thread(target=self._pump, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                time.sleep(0.05)  # let the pump read the last lines
                return False
            if self.healthy():
                return True
            time.sleep(0.1)
        return False

    def _pump(self, process: subprocess.Popen) -> None:
        for line in process.stdout or []:
            self.tail.append(line.rstrip())

    def stop(self) -> None:
        """End the server and every process it started (its process group): SIGTERM, SIGKILL after 10 s."""
        if self.process is not None and self.process.poll() is None:
            end_group(self.process.pid, self.process, grace_s=10.0)
        self.process = None
