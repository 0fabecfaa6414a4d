"""Running an external repository's script for one job: the launcher command, its environment, and its lifetime.

A script-backed model (SoulX-FlashHead, SoulX-LiveAct, LongCat-Video-Avatar) runs its upstream checkout's own entry
script per request. :func:`build_command` turns a :class:`Launch` into the command for one of three launchers:

- ``python``: ``<python> <script> <args>``;
- ``torchrun``: ``<python> -m torch.distributed.run --nproc_per_node=N <script> <args>``;
- ``accelerate``: ``<accelerate> launch --num_processes N <script> <args>``.

:func:`run_script` runs it with ``bash -c "cd <repo> && source <env_script> && exec <command>"`` in a process group
of its own, with ``CUDA_VISIBLE_DEVICES`` and ``ASCEND_RT_VISIBLE_DEVICES`` set from ``visible_devices``. It keeps
the last lines of output, polls the job's cancel check while the script runs, and ends the **whole group** (SIGTERM,
then SIGKILL after a grace period) on cancel, on time-out, and after the script exits (a worker rank left behind
must not keep an accelerator). A script that exits non-zero raises :class:`ScriptFailedError` and one that runs too
long :class:`ScriptTimeoutError`, both with the output's tail.

A script that writes fixed paths inside its checkout (LiveAct's ``tmp.mp4`` and ``<image>_<audio>.mp4``) runs under
:func:`checkout_lock`, so that two workers sharing one checkout take turns instead of overwriting each other's files.

None of these upstream scripts keeps a process resident: each loads its weights, renders, writes an MP4 and exits.
Resident servers (FlashTalk) are supervised by :mod:`omnirt.runtime.resident` instead.
"""

from __future__ import annotations

import collections
import os
import queue
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from omnirt.contracts.errors import JobTimeoutError, OmniRTError

LAUNCHERS = ("python", "torchrun", "accelerate")
VISIBLE_DEVICE_VARIABLES = ("CUDA_VISIBLE_DEVICES", "ASCEND_RT_VISIBLE_DEVICES")
TAIL_LINES = 40  # lines of output kept
CHECKOUT_LOCK = ".omnirt-run.lock"  # in a checkout whose script writes fixed paths inside it
LOCK_POLL_S = 0.1
ERROR_TAIL_LINES = 20  # lines of output an error message quotes
POLL_S = 0.05


class ScriptFailedError(OmniRTError):
    """The upstream script exited with a non-zero status (or finished without its output)."""

    code = "script_failed"
    http_status = 502


class ScriptTimeoutError(JobTimeoutError):
    """The upstream script ran past its time-out and was stopped (with everything it started)."""


@dataclass(frozen=True)
class Launch:
    """One run of ``script`` (relative to ``repo_path``, or absolute) with ``args``, and how to start it."""

    repo_path: Path
    script: str
    args: Sequence[str] = ()
    launcher: str = "python"
    python_executable: str = "python"
    nproc_per_node: int = 1
    num_processes: int | None = None  # accelerate; defaults to nproc_per_node
    accelerate_executable: str | None = None
    env_script: str | None = None
    visible_devices: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float | None = None


def build_command(launch: Launch) -> list[str]:
    """The argv that starts ``launch.script`` under its launcher."""
    if launch.launcher not in LAUNCHERS:
        raise ValueError(f"Unknown launcher '{launch.launcher}'. Expected one of: {', '.join(LAUNCHERS)}.")
    script_and_args = [launch.script, *[str(arg) for arg in launch.args]]
    if launch.launcher == "python":
        return [launch.python_executable, *script_and_args]
    if launch.launcher == "torchrun":
        return [
            launch.python_executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={int(launch.nproc_per_node)}",
            *script_and_args,
        ]
    processes = launch.num_processes if launch.num_processes is not None else launch.nproc_per_node
    accelerate = launch.accelerate_executable or "accelerate"
    return [accelerate, "launch", "--num_processes", str(int(processes)), *script_and_args]


def shell_line(launch: Launch) -> str:
    """The ``bash -c`` line: enter the checkout, source the environment script if any, then exec the command."""
    parts = [f"cd {shlex.quote(str(launch.repo_path))}"]
    if launch.env_script:
        parts.append(f"source {shlex.quote(str(launch.env_script))}")
    parts.append("exec " + shlex.join(build_command(launch)))
    return " && ".join(parts)


def launch_environment(launch: Launch, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The script's environment: this process's, the launch's own variables, and the visible devices."""
    env = dict(os.environ if base is None else base)
    env.update({key: str(value) for key, value in launch.env.items()})
    if launch.visible_devices:
        for variable in VISIBLE_DEVICE_VARIABLES:
            env[variable] = str(launch.visible_devices)
    env.setdefault("PYTHONUNBUFFERED", "1")  # progress lines as they happen, not at exit
    return env


@dataclass
class ScriptRun:
    """What a finished script left: its exit status, how long it ran, and its output's last lines."""

    exit_code: int
    elapsed_s: float
    tail: list[str]

    def tail_text(self, lines: int = ERROR_TAIL_LINES) -> str:
        return "\n".join(self.tail[-lines:])


def run_script(
    launch: Launch,
    *,
    check_cancelled: Callable[[], None] | None = None,
    on_line: Callable[[str], None] | None = None,
    grace_s: float = 5.0,
    label: str | None = None,
) -> ScriptRun:
    """Run ``launch`` to its end. ``check_cancelled`` is polled while it runs and raises to stop it (the job's
    cancel or time limit); the script's whole process group is ended before the exception propagates.
    ``on_line`` sees each line of output, on the calling thread. Raises :class:`ScriptFailedError` or
    :class:`ScriptTimeoutError`."""
    name = label or Path(launch.script).name
    if not Path(launch.repo_path).is_dir():
        raise ScriptFailedError(f"{name}: the checkout {launch.repo_path} is not a directory.")
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    started = time.monotonic()
    process = subprocess.Popen(
        ["bash", "-c", shell_line(launch)],
        cwd=str(launch.repo_path),
        env=launch_environment(launch),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group: ending it ends every rank it spawned
    )
    group = process.pid
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()
    reader = threading.Thread(target=_pump, args=(process, tail, lines), daemon=True)
    reader.start()
    try:
        while process.poll() is None:
            _deliver(lines, on_line)
            if check_cancelled is not None:
                check_cancelled()
            if launch.timeout_s is not None and time.monotonic() - started > launch.timeout_s:
                end_group(group, process, grace_s)
                reader.join(timeout=1.0)
                raise ScriptTimeoutError(
                    f"{name} ran past its time-out of {launch.timeout_s:g} s and was stopped. "
                    f"Last output:\n{_tail_text(tail)}",
                    details={"script": name, "timeout_s": launch.timeout_s},
                )
            try:
                process.wait(timeout=POLL_S)
            except subprocess.TimeoutExpired:
                pass
    except BaseException:
        end_group(group, process, grace_s)
        raise
    end_group(group, process, grace_s)  # ranks or helpers the script left behind
    reader.join(timeout=5.0)
    _deliver(lines, on_line)
    run = ScriptRun(exit_code=process.returncode, elapsed_s=time.monotonic() - started, tail=list(tail))
    if run.exit_code != 0:
        raise ScriptFailedError(
            f"{name} failed with exit code {run.exit_code}. Last output:\n{run.tail_text()}",
            details={"script": name, "exit_code": run.exit_code},
        )
    return run


def _pump(process: subprocess.Popen, tail: collections.deque[str], lines: queue.SimpleQueue[str]) -> None:
    for raw in process.stdout or []:
        line = raw.rstrip("\n")
        tail.append(line)
        lines.put(line)


def _deliver(lines: queue.SimpleQueue[str], on_line: Callable[[str], None] | None) -> None:
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return
        if on_line is not None:
            on_line(line)


def _tail_text(tail: collections.deque[str]) -> str:
    return "\n".join(list(tail)[-ERROR_TAIL_LINES:])


def group_alive(group: int) -> bool:
    """Whether any process of process group ``group`` is still running."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_group(group: int, process: subprocess.Popen | None = None, grace_s: float = 5.0) -> None:
    """SIGTERM every process of ``group``; SIGKILL what is left after ``grace_s``; reap ``process``."""
    _signal_group(group, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if process is not None:
            process.poll()
        if not group_alive(group):
            break
        time.sleep(0.02)
    else:
        _signal_group(group, signal.SIGKILL)
    if process is not None:
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass


def _signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass


@contextmanager
def checkout_lock(repo: Path, check_cancelled: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Hold ``repo`` for one run (an ``flock`` on its ``.omnirt-run.lock``, across processes and threads); while
    another run holds it, wait, calling ``check_cancelled`` (a cancel or the job's time limit ends the wait)."""
    import fcntl

    with open(Path(repo) / CHECKOUT_LOCK, "a+") as handle:  # closing it releases the lock
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                check_cancelled()
                time.sleep(LOCK_POLL_S)
        yield
