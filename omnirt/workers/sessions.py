"""Realtime avatar sessions on a worker: each session is a lease, run by a loop in its own thread.

A worker process hosts up to ``OMNIRT_SESSION_CAPACITY`` sessions at once (default 4), all sharing the warm model, and
admits a session only while the model's measured frames per second cover it (lip-sync models, see
:mod:`omnirt.avatars.scheduler`).

Sessions do not wait for the Celery job slot. In a fleet, each worker process runs a :class:`SessionConsumer`, a
thread of its own that blocks on the session lists of the process's queues (:mod:`omnirt.events.channels`) while it
has a free slot, and starts what it takes in the process's :class:`SessionHost`: a process busy with a diffusion job
still admits sessions. A session it cannot take (the model cannot load here, or the measured capacity does not cover
it) goes back on the list for another worker, after which the consumer pauses briefly; one the front end gave up on is
dropped. Embedded, the front end starts sessions in the host directly.

The loop claims the session's lease, opens a rendering session, answers ``ready`` with the media contract, then for
each inbound message: renders audio to one ``video`` message (``VIDX`` plus timings), applies a config update,
flushes, cancels, or closes. Every message gets an answer: when opening, rendering or a config update fails, the
answer is an ``error`` message with a stable code (``bad_config`` for a config the session refuses, the error's own
code for OmniRT errors, ``runtime_error`` otherwise), and the session goes on. When the loop stops, for whatever
reason, the session's channels are ended. A session that streams audio of any size and then stops is flushed after
``OMNIRT_SESSION_FLUSH_S`` (0.3 s): the frames its audio covers go out. A session with no input for
``OMNIRT_SESSION_IDLE_S`` (default 60 s) ends with an ``idle_timeout`` error. If the process dies, the front end sees
the worker's heartbeat vanish and tells the client.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from omnirt.avatars.media import AvatarSession, SessionSpec, pack_vidx
from omnirt.avatars.media import MessageKind as Kind
from omnirt.avatars.names import READY, local_readiness
from omnirt.avatars.scheduler import scheduler_of
from omnirt.contracts.errors import OmniRTError
from omnirt.events.channels import Message
from omnirt.registry.registry import get_model
from omnirt.tracing import log_context, record_chunk, span

if TYPE_CHECKING:
    from omnirt.backplane import Backplane
    from omnirt.events.channels import RedisSessionChannels
    from omnirt.workers.engine import Engine

log = logging.getLogger(__name__)

TAKE_WAIT_S = 1.0  # one blocking take from the session lists; also how soon the consumer notices stop()
RETRY_S = 0.2  # the pause after putting a session back, so that another worker takes it first
MAX_BACKOFF_S = 5.0  # the longest pause between takes while Redis is unreachable


class SessionHost:
    """Runs session loops in threads, at most ``capacity`` at a time."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.active: dict[str, str] = {}  # session id -> model
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)

    def resize(self, capacity: int) -> None:
        """Host up to ``capacity`` sessions from now on (sessions already running keep running)."""
        with self._slot_freed:
            self.capacity = capacity
            self._slot_freed.notify_all()

    def by_model(self) -> dict[str, int]:
        """How many sessions run now, per model."""
        with self._lock:
            counts: dict[str, int] = {}
            for model in self.active.values():
                counts[model or "unknown"] = counts.get(model or "unknown", 0) + 1
            return counts

    def wait_for_slot(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until fewer than ``capacity`` sessions run; True when a slot is free."""
        with self._slot_freed:
            return self._slot_freed.wait_for(lambda: len(self.active) < self.capacity, timeout_s)

    def try_start(
        self,
        session_id: str,
        *,
        backplane: Backplane,
        engine: Engine,
        worker_id: str,
        model: str = "",
        fps: float = 0.0,
    ) -> bool:
        """Start the session if a slot is free and the model's measured capacity covers ``fps`` more frames per
        second (not judged without ``fps``: embedded sessions)."""
        with self._lock:
            if len(self.active) >= self.capacity or (model and fps and not admits(model, fps)):
                return False
            self.active[session_id] = model
        thread = threading.Thread(
            target=self._run,
            args=(session_id, backplane, engine, worker_id),
            name=f"omnirt-session-{session_id}",
            daemon=True,
        )
        thread.start()
        return True

    def _run(self, session_id: str, backplane: Backplane, engine: Engine, worker_id: str) -> None:
        try:
            run_session(session_id, backplane=backplane, engine=engine, worker_id=worker_id)
        except Exception:
            log.exception("session %s failed", session_id)
        finally:
            with self._lock:
                self.active.pop(session_id, None)
                self._slot_freed.notify_all()


_HOST: SessionHost | None = None
_HOST_LOCK = threading.Lock()


def get_session_host() -> SessionHost:
    """This process's session host, sized on first use by ``OMNIRT_SESSION_CAPACITY`` (and by the settings of
    :func:`omnirt.workers.engine.configure_process`)."""
    global _HOST
    with _HOST_LOCK:
        if _HOST is None:
            from omnirt.settings import Settings

            _HOST = SessionHost(Settings.from_env().session_capacity)
        return _HOST


class Admission:
    """What :meth:`SessionConsumer.admit` did with a session it took."""

    STARTED = "started"  # running in this process's host
    DROPPED = "dropped"  # no longer pending (the front end gave up, or another worker has it): forgotten
    REFUSED = "refused"  # this process cannot take it now: back on the list for another worker


class SessionConsumer:
    """Takes the sessions offered on ``queues`` and starts them in ``host``, beside (never behind) the job slot.

    One thread per worker process: while the host has a free slot it blocks on the queues' session lists (up to
    ``take_wait_s`` a time), admits what it takes, and puts a refused session back, then pauses ``retry_s`` so that
    another worker gets it first. No slot free: it waits for one without touching Redis.
    """

    def __init__(
        self,
        host: SessionHost,
        *,
        backplane: Backplane,
        engine: Engine,
        worker_id: str,
        queues: list[str],
        take_wait_s: float = TAKE_WAIT_S,
        retry_s: float = RETRY_S,
    ) -> None:
        self.host, self.backplane, self.engine, self.worker_id = host, backplane, engine, worker_id
        self.queues = list(queues)
        self.take_wait_s, self.retry_s = take_wait_s, retry_s
        self.channels = cast("RedisSessionChannels", backplane.sessions)  # fleet processes only
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="omnirt-consumer-sessions", daemon=True)

    def start(self) -> SessionConsumer:
        self._thread.start()
        return self

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop taking sessions (those running go on); returns once the thread ends or ``timeout_s`` passes."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s if timeout_s is not None else 2 * self.take_wait_s + 1)

    def admit(self, session_id: str) -> str:
        """Start ``session_id`` here if it is still pending, its model can load here and the host has room."""
        record = self.channels.record(session_id)
        if record is None or record.get("state") != "pending":
            return Admission.DROPPED
        try:
            spec = json.loads(record.get("spec") or "{}")
            model = str(spec.get("model", ""))
            fps = float(spec.get("fps", 25))
            readiness = local_readiness(get_model(model, "audio2video"), models_dir=self.engine.models_dir)
        except Exception:  # a model this worker does not know: another worker may
            log.info("session %s: cannot judge its model here", session_id, exc_info=True)
            return Admission.REFUSED
        if readiness != READY:
            return Admission.REFUSED
        started = self.host.try_start(
            session_id, backplane=self.backplane, engine=self.engine, worker_id=self.worker_id, model=model, fps=fps
        )
        return Admission.STARTED if started else Admission.REFUSED

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if not self.host.wait_for_slot(self.take_wait_s):
                continue
            try:
                taken = self.channels.take(self.queues, self.take_wait_s)
                if taken is not None and self.admit(taken[1]) == Admission.REFUSED:
                    self.channels.put_back(taken[1], taken[0])
                    self._stop.wait(self.retry_s)
                failures = 0
            except Exception:  # Redis away: back off and go on; the front end's deadline answers
                failures += 1
                log.warning("session consumer: taking sessions failed (%d in a row)", failures, exc_info=failures == 1)
                self._stop.wait(min(MAX_BACKOFF_S, self.retry_s * 2**failures))


def admits(model: str, fps: float) -> bool:
    """Whether this process's measured capacity for ``model`` covers one more session at ``fps``."""
    scheduler = scheduler_of(model)
    return scheduler is None or scheduler.admits(fps)


def run_session(session_id: str, *, backplane: Backplane, engine: Engine, worker_id: str) -> None:
    """Hold one session's lease until it closes, goes idle, or cannot open. Every inbound message gets an answer
    (an ``error`` message when handling it fails), and the session's channels are ended whatever happens."""
    channels = backplane.sessions
    record = channels.claim(session_id, worker_id)
    if record is None:
        log.info("session %s: lease already taken or abandoned", session_id)
        return
    # Read the inbound channel from the claim on: a close the API sends while the session opens is not lost.
    inbound = channels.reader(session_id, "in")

    def out(kind: str, data: bytes = b"", **meta: Any) -> None:
        channels.send(session_id, "out", Message(kind, meta, data))

    try:
        spec = SessionSpec.from_dict(json.loads(record["spec"]))
        image = base64.b64decode(record["image"]) if record.get("image") else None
        pipeline = engine.pipeline_for(spec.model, backend=record.get("backend", "auto"))
        session = pipeline.open_session(spec, image, backplane.avatars)
    except Exception as exc:  # noqa: BLE001 - every message gets an answer; _failure logs it
        out(Kind.ERROR, **_failure(exc, session_id, "open"))
        channels.end(session_id)
        return
    try:
        out(Kind.READY, spec=spec.to_dict(), worker_id=worker_id, session=session.describe())
        with (
            log_context(session_id=session_id),
            span(f"session {spec.model}", attributes={"omnirt.session_id": session_id, "omnirt.worker_id": worker_id}),
        ):
            created_ms = float(record.get("created_ms", time.time() * 1000))
            _serve(session_id, session, spec, inbound, out, backplane, created_ms)
    finally:
        try:
            session.close()
        finally:
            channels.end(session_id)


def _serve(
    session_id: str,
    session: AvatarSession,
    spec: SessionSpec,
    inbound: Any,
    out: Callable[..., None],
    backplane: Backplane,
    created_ms: float,
) -> None:
    """The session loop: answer each inbound message until ``close`` or the idle timeout."""
    chunk_index, cancelled, last_input, owed = 0, False, time.monotonic(), False
    flush_after = backplane.settings.session_flush_s

    def video(frames: list[bytes], started: float, rendered: float) -> None:
        nonlocal chunk_index
        payload = pack_vidx(frames)
        meta = {
            "chunk_index": chunk_index,
            "infer_ms": round((rendered - started) * 1000, 3),
            "encode_ms": round((time.perf_counter() - rendered) * 1000, 3),
            "frames": len(frames),
        }
        if chunk_index == 0:
            meta["ttff_ms"] = round(time.time() * 1000 - created_ms, 3)
        out(Kind.VIDEO, payload, **meta)
        record_chunk(chunk_index, started, rendered, time.perf_counter(), **{"omnirt.frames": len(frames)})
        chunk_index += 1

    while True:
        message = inbound.get(timeout=min(0.5, flush_after) if owed else 0.5)
        if message is None:
            if owed and time.monotonic() - last_input > flush_after:
                # The audio stopped mid-utterance: the frames it covers go out, unasked.
                owed = False
                started = time.perf_counter()
                try:
                    frames = session.flush()
                except Exception as exc:  # noqa: BLE001 - every message gets an answer; _failure logs it
                    out(Kind.ERROR, **_failure(exc, session_id, "flush"))
                    continue
                if frames:
                    video(frames, started, time.perf_counter())
            if time.monotonic() - last_input > backplane.settings.session_idle_s:
                message_text = f"No input for {backplane.settings.session_idle_s:g} s; session closed."
                out(Kind.ERROR, code="idle_timeout", message=message_text)
                return
            continue
        last_input = time.monotonic()
        if message.kind in (Kind.AUDIO, Kind.FLUSH):
            if cancelled:
                out(Kind.ERROR, code="session_cancelled", message="The session was cancelled.")
                continue
            import numpy as np

            started = time.perf_counter()
            try:
                if message.kind == Kind.AUDIO:
                    frames = session.render(np.frombuffer(message.data, "<i2"))
                    owed = not spec.chunked
                else:
                    frames, owed = session.flush(), False
            except Exception as exc:  # noqa: BLE001 - every message gets an answer; _failure logs it
                out(Kind.ERROR, **_failure(exc, session_id, message.kind))
                continue
            video(frames, started, time.perf_counter())
        elif message.kind == Kind.CONFIG:
            config = message.meta.get("config")
            try:
                if not isinstance(config, dict):
                    raise ValueError("config must be an object")
                updated = session.update(config)
            except (ValueError, TypeError) as exc:
                out(Kind.ERROR, code="bad_config", message=f"The session refused the config: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - every message gets an answer; _failure logs it
                out(Kind.ERROR, **_failure(exc, session_id, "config"))
                continue
            out(Kind.CONFIG_OK, updated=updated)
        elif message.kind == Kind.CANCEL:
            cancelled = True
            out(Kind.CANCELLED)
        elif message.kind == Kind.CLOSE:
            out(Kind.CLOSED)
            return
        else:
            out(Kind.ERROR, code="bad_message", message=f"Unknown session message kind: {message.kind!r}.")


def _failure(exc: Exception, session_id: str, stage: str) -> dict[str, str]:
    """The ``error`` message for ``exc``: an OmniRT error keeps its code; anything else is logged with its
    traceback and reported as ``runtime_error``."""
    if isinstance(exc, OmniRTError):
        return {"code": exc.code, "message": exc.message}
    log.exception("session %s: %s failed", session_id, stage)
    return {"code": "runtime_error", "message": f"The session failed ({stage}): {type(exc).__name__}: {exc}"}
