"""Realtime avatar sessions on a worker: each session is a lease, run by a loop in its own thread.

A worker process hosts up to ``OMNIRT_SESSION_CAPACITY`` sessions at once (default 4), all sharing the warm model, and
admits a session only while the model's measured frames per second cover it (lip-sync models, see
:mod:`omnirt.avatars.scheduler`).

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
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from omnirt.avatars.media import AvatarSession, SessionSpec, pack_vidx
from omnirt.avatars.media import MessageKind as Kind
from omnirt.avatars.scheduler import scheduler_of
from omnirt.contracts.errors import OmniRTError
from omnirt.events.channels import Message

if TYPE_CHECKING:
    from omnirt.backplane import Backplane
    from omnirt.runtime.engine import Engine

log = logging.getLogger(__name__)


def session_capacity() -> int:
    return int(os.environ.get("OMNIRT_SESSION_CAPACITY", "4"))


def idle_timeout_s() -> float:
    return float(os.environ.get("OMNIRT_SESSION_IDLE_S", "60"))


class SessionHost:
    """Runs session loops in threads, at most ``capacity`` at a time."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.active: set[str] = set()
        self._lock = threading.Lock()

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
        """Start the session if a slot is free and the model's measured capacity covers it."""
        with self._lock:
            if len(self.active) >= self.capacity or (model and not admits(model, fps)):
                return False
            self.active.add(session_id)
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
                self.active.discard(session_id)


_HOST: SessionHost | None = None
_HOST_LOCK = threading.Lock()


def get_session_host() -> SessionHost:
    global _HOST
    with _HOST_LOCK:
        if _HOST is None:
            _HOST = SessionHost(session_capacity())
        return _HOST


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
        _serve(session_id, session, spec, inbound, out, backplane, float(record.get("created_ms", time.time() * 1000)))
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
            if time.monotonic() - last_input > idle_timeout_s():
                message_text = f"No input for {idle_timeout_s():g} s; session closed."
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
