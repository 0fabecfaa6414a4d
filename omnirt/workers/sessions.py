"""Realtime avatar sessions on a worker: each session is a lease, run by a loop in its own thread.

A worker process hosts up to ``OMNIRT_SESSION_CAPACITY`` sessions at once (default 4), all sharing the warm model.
The loop claims the session's lease, opens a rendering session, answers ``ready`` with the media contract, then
for each inbound message: renders an audio chunk to one ``video`` message (``VIDX`` plus timings), applies a
config update, cancels, or closes. A session with no input for ``OMNIRT_SESSION_IDLE_S`` (default 60 s) ends with
an ``idle_timeout`` error. If the process dies, the front end sees the worker's heartbeat vanish and tells the client.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from omnirt.contracts.errors import OmniRTError
from omnirt.events.channels import Message
from omnirt.models.avatar import SessionSpec, pack_vidx

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

    def try_start(self, session_id: str, *, backplane: Backplane, engine: Engine, worker_id: str) -> bool:
        with self._lock:
            if len(self.active) >= self.capacity:
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


def run_session(session_id: str, *, backplane: Backplane, engine: Engine, worker_id: str) -> None:
    channels = backplane.sessions
    record = channels.claim(session_id, worker_id)
    if record is None:
        log.info("session %s: lease already taken or abandoned", session_id)
        return

    def out(kind: str, data: bytes = b"", **meta: Any) -> None:
        channels.send(session_id, "out", Message(kind, meta, data))

    spec = SessionSpec(**json.loads(record["spec"]))
    image = base64.b64decode(record["image"]) if record.get("image") else None
    try:
        pipeline = engine.pipeline_for(spec.model, backend=record.get("backend", "auto"))
        session = pipeline.open_session(spec, image)
    except OmniRTError as exc:
        out("error", code=exc.code, message=exc.message)
        channels.set_state(session_id, "closed")
        return
    out("ready", spec=spec.to_dict(), worker_id=worker_id)
    created_ms = float(record.get("created_ms", time.time() * 1000))
    inbound = channels.reader(session_id, "in")
    chunk_index, cancelled, last_input = 0, False, time.monotonic()
    try:
        while True:
            message = inbound.get(timeout=0.5)
            if message is None:
                if time.monotonic() - last_input > idle_timeout_s():
                    out("error", code="idle_timeout", message=f"No input for {idle_timeout_s():g} s; session closed.")
                    return
                continue
            last_input = time.monotonic()
            if message.kind == "audio":
                if cancelled:
                    out("error", code="session_cancelled", message="The session was cancelled.")
                    continue
                import numpy as np

                started = time.perf_counter()
                frames = session.render(np.frombuffer(message.data, "<i2"))
                rendered = time.perf_counter()
                payload = pack_vidx(frames)
                meta = {
                    "chunk_index": chunk_index,
                    "infer_ms": round((rendered - started) * 1000, 3),
                    "encode_ms": round((time.perf_counter() - rendered) * 1000, 3),
                    "frames": len(frames),
                }
                if chunk_index == 0:
                    meta["ttff_ms"] = round(time.time() * 1000 - created_ms, 3)
                out("video", payload, **meta)
                chunk_index += 1
            elif message.kind == "config":
                out("config_ok", updated=session.update(message.meta.get("config", {})))
            elif message.kind == "cancel":
                cancelled = True
                out("cancelled")
            elif message.kind == "close":
                out("closed")
                return
    finally:
        session.close()
        channels.set_state(session_id, "closed")
