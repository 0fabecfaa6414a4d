"""A thin restart wrapper around one fleet process: ``python -m omnirt.profiles.respawn [options] -- COMMAND...``.

honcho (which ``omnirt profile up`` uses to start, prefix and stop the fleet's processes) stops the whole fleet when
one process exits; it does not restart. Each process therefore runs under this wrapper, which

* waits, if told, until a TCP address answers (the owned Redis) before the first start;
* restarts the command when it exits, after a backoff that doubles from ``--backoff`` up to ``--max-backoff``
  seconds and starts over once a run lasted ``--reset-after`` seconds; after ``--give-up-after`` quick failures in a
  row it exits with the command's status (and honcho stops the fleet);
* on SIGTERM or SIGINT sends SIGTERM to the command's main process only (a Celery worker then finishes its job
  within its soft shutdown and stops its pool children; gunicorn stops its workers), waits up to ``--grace``
  seconds, then kills the command's whole process group;
* with ``--drain-redis HOST:PORT`` (the owned Redis), holds that SIGTERM until no other client is connected to the
  Redis, for up to ``--grace`` seconds: workers and front ends stopping at the same time still reach it to finish;
* stops the command the same way when its own parent dies, or the process ``--watch-pid`` names (``profile up``)
  is gone, so a supervisor killed with SIGKILL leaves nothing running.

The command runs in a session of its own, so a signal to the wrapper's group never reaches the command's children
directly.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence


class Respawner:
    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str = "",
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        reset_after: float = 60.0,
        give_up_after: int = 10,
        grace: float = 40.0,
        wait_for: str | None = None,
        drain_redis: str | None = None,
        watch_pid: int | None = None,
    ) -> None:
        self.argv = list(argv)
        self.name = name or os.path.basename(self.argv[0])
        self.backoff, self.max_backoff, self.reset_after = backoff, max_backoff, reset_after
        self.give_up_after, self.grace, self.wait_for = give_up_after, grace, wait_for
        self.drain_redis = drain_redis
        self.watch_pid = watch_pid
        self.stopping = threading.Event()
        self.terminated_at: float | None = None
        self.child: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def say(self, message: str) -> None:
        print(f"[respawn] {self.name}: {message}", flush=True)

    def stop(self, *_: object) -> None:
        """Begin a clean stop (signal handler, or the parent-death watch)."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self.drain_redis:
            threading.Thread(target=self._drain_then_terminate, daemon=True).start()
        else:
            self._terminate()

    def _terminate(self) -> None:
        child = self.child
        self.terminated_at = time.monotonic()
        if child is not None and child.poll() is None:
            try:
                child.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _drain_then_terminate(self) -> None:
        """Wait until the Redis at ``--drain-redis`` has no client but this one (or the grace period is over)."""
        assert self.drain_redis is not None
        host, _, port = self.drain_redis.rpartition(":")
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline:
            clients = redis_clients(host or "127.0.0.1", int(port))
            if clients is None or clients <= 1:
                break
            time.sleep(0.2)
        self._terminate()

    def _watch_parent(self) -> None:
        parent = os.getppid()
        while not self.stopping.wait(0.5):
            if os.getppid() != parent or (self.watch_pid and not _exists(self.watch_pid)):
                self.say("supervisor exited; stopping")
                self.stop()

    def _wait_for_address(self) -> bool:
        assert self.wait_for is not None
        host, _, port = self.wait_for.rpartition(":")
        deadline = time.monotonic() + 120
        while not self.stopping.is_set():
            try:
                with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
                    return True
            except OSError:
                if time.monotonic() > deadline:
                    self.say(f"{self.wait_for} did not answer within 120 s")
                    return False
                self.stopping.wait(0.2)
        return False

    def _kill_group(self, child: subprocess.Popen[bytes], sig: int) -> None:
        try:
            os.killpg(child.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _run_once(self) -> int:
        child = subprocess.Popen(self.argv, start_new_session=True)
        self.child = child
        if self.terminated_at is not None:  # a stop that came while starting
            child.send_signal(signal.SIGTERM)
        killed = False
        while child.poll() is None:
            if not killed and self.terminated_at is not None and time.monotonic() > self.terminated_at + self.grace:
                self.say(f"still running {self.grace:g} s after SIGTERM; killing it")
                self._kill_group(child, signal.SIGKILL)
                killed = True
            time.sleep(0.1)
        self._kill_group(child, signal.SIGKILL)  # what the main process left behind in its group
        return child.returncode

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        threading.Thread(target=self._watch_parent, daemon=True).start()
        if self.wait_for and not self._wait_for_address():
            return 0 if self.stopping.is_set() else 1
        delay, failures = self.backoff, 0
        while True:
            started = time.monotonic()
            code = self._run_once()
            if self.stopping.is_set():  # a requested stop, however the command ended
                return 0
            if time.monotonic() - started >= self.reset_after:
                delay, failures = self.backoff, 0
            failures += 1
            status = f"signal {-code}" if code < 0 else f"status {code}"
            if failures > self.give_up_after:
                self.say(f"exited ({status}) {failures} times in a row; giving up")
                return code if code > 0 else 1
            self.restarts += 1
            self.say(f"exited ({status}); restarting in {delay:g} s")
            if self.stopping.wait(delay):
                return 0
            delay = min(delay * 2, self.max_backoff)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def redis_clients(host: str, port: int) -> int | None:
    """Clients connected to a Redis (``INFO clients``), this connection included; None when it does not answer."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"INFO clients\r\n")
            reply = b""
            while b"connected_clients:" not in reply or not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return None
    for line in reply.decode(errors="replace").splitlines():
        if line.startswith("connected_clients:"):
            return int(line.split(":", 1)[1])
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omnirt.profiles.respawn", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="")
    parser.add_argument("--backoff", type=float, default=1.0)
    parser.add_argument("--max-backoff", type=float, default=30.0)
    parser.add_argument("--reset-after", type=float, default=60.0)
    parser.add_argument("--give-up-after", type=int, default=10)
    parser.add_argument("--grace", type=float, default=40.0)
    parser.add_argument("--wait-for", help="HOST:PORT that must accept connections before the first start")
    parser.add_argument("--drain-redis", help="HOST:PORT of a Redis to stop only once its other clients are gone")
    parser.add_argument("--watch-pid", type=int, help="stop when this process (the supervisor) is gone")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("no command given")
    return Respawner(
        command,
        name=options.name,
        backoff=options.backoff,
        max_backoff=options.max_backoff,
        reset_after=options.reset_after,
        give_up_after=options.give_up_after,
        grace=options.grace,
        wait_for=options.wait_for,
        drain_redis=options.drain_redis,
        watch_pid=options.watch_pid,
    ).run()


if __name__ == "__main__":
    sys.exit(main())
