"""``WS /v1/realtime``: an OpenAI-Realtime-like wrapper over native jobs (OmniRT's protocol, not OpenAI's schema).

Client to server, JSON text messages with a ``type``:

* ``response.create`` (or ``generate``): a GenerateRequest ``{task, model, backend?, inputs, config, adapters?}``
  under ``response``, or those fields at the top level. The job is queued through the same service as
  ``POST /v1/generate`` (aliases, tier policy, input checks) and the server answers ``response.created``
  ``{job_id, trace_id}``, then ``response.event`` ``{event}`` per job event (from the job's start), then
  ``response.completed`` ``{job}`` with the job record, whatever its end (succeeded, failed, cancelled).
* ``response.cancel`` (or ``cancel``): ``response.cancelled`` ``{job_id, outcome}``; the job's last events and its
  ``response.completed`` follow.

The server sends ``keep_alive`` after ``OMNIRT_SSE_KEEPALIVE_S`` of silence, and ``error`` ``{error: {code, message,
details}}`` for a message that is not a JSON object or has an unknown type (``invalid_request``), a request refused
(its code: ``invalid_request``, ``model_not_enabled``, ``too_many_queued``, ...), a second ``response.create`` while a
job runs (``conflict``: one job per connection at a time) or a cancel with no job (``not_found``). A connection may
run jobs one after another. Closing the socket cancels its running job. API keys apply as on every route
(:mod:`omnirt.api.auth`; a browser may send ``?api_key=``).

One thread reads the socket and one follows the active job's events; both only post to this connection's inbox, and
the handler's own thread (the one with the request context) answers each item in turn.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app
from marshmallow import ValidationError

from omnirt.api.jobs import cancel_job, follow_events
from omnirt.api.presenters import job_to_dict
from omnirt.api.services import backplane
from omnirt.api.sock import sock
from omnirt.api.submission import submit
from omnirt.contracts.errors import OmniRTError
from omnirt.contracts.schemas import GenerateRequestSchema, flatten_messages
from omnirt.events.bus import Subscription

bp = Blueprint("realtime", __name__)

CREATE = ("response.create", "generate")
CANCEL = ("response.cancel", "cancel")
ENVELOPE_KEYS = ("type", "event_id")  # beside a top-level request: OpenAI clients tag their messages


class RealtimeError(Exception):
    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}


@dataclass
class ActiveJob:
    job_id: str
    subscription: Subscription
    stop: threading.Event


class RealtimeConnection:
    """One client's socket: its inbox, its active job, and the answers to each message."""

    def __init__(self, ws: Any, plane: Any) -> None:
        self.ws, self.plane = ws, plane
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.closed = threading.Event()
        self.active: ActiveJob | None = None

    def serve(self) -> None:
        keepalive = self.plane.settings.sse_keepalive_s
        threading.Thread(target=self._read, name="realtime-reader", daemon=True).start()
        try:
            while not self.closed.is_set():
                try:
                    kind, item = self.inbox.get(timeout=keepalive)
                except queue.Empty:
                    self.send({"type": "keep_alive"})
                    continue
                if kind == "closed":
                    return
                if kind == "message":
                    self._answer(item)
                elif self.active is not None and item[0] == self.active.job_id:
                    self._relay(kind, item[1])
        finally:
            self.closed.set()
            self._leave()

    def send(self, payload: dict[str, Any]) -> None:
        try:
            self.ws.send(json.dumps(payload, separators=(",", ":")))
        except Exception:  # noqa: BLE001 - the client went away; the reader reports it
            self.closed.set()

    def _read(self) -> None:
        while not self.closed.is_set():
            try:
                message = self.ws.receive(timeout=1.0)
            except Exception:  # noqa: BLE001 - the client closed the socket
                break
            if message is not None:
                self.inbox.put(("message", message))
        self.inbox.put(("closed", None))

    def _answer(self, raw: str | bytes) -> None:
        try:
            message = self._parse(raw)
            kind = message.get("type")
            if kind in CREATE:
                self._create(message)
            elif kind in CANCEL:
                self._cancel()
            else:
                raise RealtimeError("invalid_request", f"Unsupported realtime message type {str(kind)[:100]!r}.")
        except RealtimeError as exc:
            self.send({"type": "error", "error": {"code": exc.code, "message": exc.message, "details": exc.details}})

    @staticmethod
    def _parse(raw: str | bytes) -> dict[str, Any]:
        try:
            message = current_app.json.loads(raw)  # bounded nesting (omnirt.api.errors.BoundedJSONProvider)
        except ValueError as exc:
            raise RealtimeError("invalid_request", f"Could not read the message as JSON: {exc}") from None
        if not isinstance(message, dict):
            raise RealtimeError("invalid_request", "A realtime message must be a JSON object with a type.")
        return message

    def _create(self, message: dict[str, Any]) -> None:
        if self.active is not None:
            raise RealtimeError(
                "conflict",
                "A response is already in progress on this connection; cancel it or wait for response.completed.",
                {"job_id": self.active.job_id},
            )
        body = message.get("response", {key: value for key, value in message.items() if key not in ENVELOPE_KEYS})
        if not isinstance(body, dict):
            raise RealtimeError("invalid_request", "response must be a JSON object (a GenerateRequest).")
        try:
            job, _ = submit(self.plane, GenerateRequestSchema().load(body))
        except ValidationError as exc:
            issues = flatten_messages(exc.messages)
            raise RealtimeError("invalid_request", "Request is malformed: " + "; ".join(issues)) from None
        except OmniRTError as exc:
            raise RealtimeError(exc.code, exc.message, exc.details) from None
        self.send({"type": "response.created", "job_id": job.id, "trace_id": job.trace_id})
        self.active = ActiveJob(job.id, self.plane.events.subscribe(job.id, "0-0"), threading.Event())
        threading.Thread(target=self._follow, args=(self.active,), name=f"realtime-{job.id}", daemon=True).start()

    def _cancel(self) -> None:
        if self.active is None:
            raise RealtimeError("not_found", "No response is in progress on this connection.")
        outcome, _ = cancel_job(self.plane, self.active.job_id)
        self.send({"type": "response.cancelled", "job_id": self.active.job_id, "outcome": outcome.value})

    def _follow(self, active: ActiveJob) -> None:
        """Post the job's events to the inbox until its terminal one (or its record says it ended)."""
        for entry in follow_events(self.plane, active.job_id, active.subscription, 1.0, stop=active.stop):
            if entry is not None:
                self.inbox.put(("event", (active.job_id, entry)))
        self.inbox.put(("ended", (active.job_id, None)))

    def _relay(self, kind: str, entry: Any) -> None:
        assert self.active is not None
        if kind == "event":
            entry_id, event = entry
            self.send({"type": "response.event", "event": {**event.to_dict(), "id": entry_id}})
            return
        job = self.plane.store.get(self.active.job_id)
        self._release()
        if job is not None:
            self.send({"type": "response.completed", "job": job_to_dict(job)})

    def _release(self) -> None:
        if self.active is not None:
            self.active.stop.set()
            self.plane.events.unsubscribe(self.active.subscription)
            self.active = None

    def _leave(self) -> None:
        """The client is gone: its running job is cancelled, and the socket closed."""
        if self.active is not None:
            cancel_job(self.plane, self.active.job_id)  # a job that already ended stays as it is
            self._release()
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - already closed by the client
            pass


@sock.route("/v1/realtime", bp=bp)
def realtime(ws: Any) -> None:
    """WebSocket: queue jobs and follow their events (module docstring)."""
    RealtimeConnection(ws, backplane()).serve()
