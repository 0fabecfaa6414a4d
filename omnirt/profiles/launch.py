"""``omnirt profile up``: start and supervise a whole profile on this host.

honcho's :class:`~honcho.manager.Manager` starts every process of the profile (an owned Redis, each front end through
``omnirt serve``, each pool replica through ``celery -A omnirt worker``, Flower), prefixes each output line with the
process's name (honcho's :class:`~honcho.printer.Printer`) and, on Ctrl-C or SIGTERM, stops them all. honcho does not
restart a process that dies; each one therefore runs under :mod:`omnirt.profiles.respawn`, a thin wrapper that
restarts it with backoff and gives it a grace period above the Celery worker's soft shutdown when asked to stop.

Each process gets its settings as the ``OMNIRT_*`` variables of its plan (:mod:`omnirt.profiles.plan`); the
calling shell's own ``OMNIRT_*`` variables are not passed on, so the profile is the whole configuration.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from omnirt.profiles.plan import STOP_GRACE_S, Placement, Process, local_placement, processes, redis_address
from omnirt.profiles.schema import Profile


class LaunchError(Exception):
    """The profile cannot start on this host (a missing program, a port in use)."""


def local_argv(argv: Sequence[str]) -> list[str]:
    """A planned command as this host runs it: ``omnirt`` and ``celery`` through this interpreter."""
    head, *rest = argv
    if head == "omnirt":
        return [sys.executable, "-m", "omnirt.cli", *rest]
    if head == "celery":
        return [sys.executable, "-m", "celery", *rest]
    found = shutil.which(head)
    if found is None:
        raise LaunchError(f"{head} is not installed (apt-get install {'redis-server' if 'redis' in head else head})")
    return [found, *rest]


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def inherited_env() -> dict[str, str]:
    """This process's environment without any ``OMNIRT_*`` variable (the profile sets those)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("OMNIRT_")}


def wrapped(process: Process, placement: Placement, profile: Profile, grace: float) -> str:
    """The shell line honcho runs: the respawn wrapper around the process's command."""
    wrapper = [sys.executable, "-m", "omnirt.profiles.respawn", "--name", process.name, "--grace", f"{grace:g}"]
    wrapper += ["--watch-pid", str(os.getpid())]  # this supervisor: if it dies, so does the fleet
    if profile.redis.owned:
        host, port, _ = redis_address(placement.redis_url)
        # the others wait for the owned Redis to start; it waits for them to stop
        wrapper += ["--drain-redis" if process.role == "redis" else "--wait-for", f"{host}:{port}"]
    return "exec " + shlex.join([*wrapper, "--", *local_argv(process.argv)])


def prepare(profile: Profile, base: Path) -> tuple[Placement, list[Process]]:
    """The placement and processes of ``profile`` on this host, with its directories made; raises
    :class:`LaunchError` when a program is missing or a port is taken."""
    placement = local_placement(profile, base)
    planned = processes(profile, placement, one_per_replica=True)
    for process in planned:
        local_argv(process.argv)
    busy = [f"{process.name} ({process.port})" for process in planned if process.port and _port_in_use(process.port)]
    if busy:
        raise LaunchError(f"port(s) already in use: {', '.join(busy)}")
    for path in (placement.artifact_dir, placement.avatar_dir, placement.redis_dir if profile.redis.owned else None):
        if path:
            Path(path).mkdir(parents=True, exist_ok=True)
    return placement, planned


def up(
    profile: Profile, *, base: Path | None = None, output: IO[str] | None = None, grace: float = STOP_GRACE_S
) -> int:
    """Run ``profile`` until Ctrl-C or SIGTERM (exit 0 once everything stopped) or until a process gives up
    restarting (its status)."""
    import honcho.manager
    from honcho.printer import Printer

    placement, planned = prepare(profile, base or Path.cwd())
    # honcho kills what is left KILL_WAIT seconds after its SIGTERM: leave the wrappers their grace period first
    # (the owned Redis's wrapper waits up to one grace period for the others, then gives Redis one).
    honcho.manager.KILL_WAIT = 2 * grace + 10
    manager = honcho.manager.Manager(Printer(output or sys.stdout))
    base_env = inherited_env()
    for process in planned:
        manager.add_process(process.name, wrapped(process, placement, profile, grace), env={**base_env, **process.env})
    manager.loop()
    code = manager.returncode or 0
    return 0 if code in (130, 143) else code
