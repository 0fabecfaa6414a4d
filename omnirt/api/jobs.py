"""Jobs: read, list, cancel; follow a job's events over SSE (resumable) or a WebSocket (which also cancels)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context

from omnirt.api.errors import ApiError
from omnirt.api.presenters import job_to_dict
from omnirt.api.services import backplane
from omnirt.api.sock import sock
from omnirt.contracts.types import StageEvent
from omnirt.events.bus import TERMINAL_EVENTS, Subscription, job_event, valid_id
from omnirt.jobs.job import JobState, now_ms
from omnirt.jobs.store import CancelOutcome
from omnirt.tracing import job_trace

bp = Blueprint("jobs", __name__)


def load_job(job_id: str) -> Any:
    job = backplane().store.get(job_id)
    if job is None:
        raise ApiError(404, "not_found", f"Job '{job_id}' not found.")
    return job


@bp.get("/v1/jobs/<job_id>")
def get_job(job_id: str) -> Any:
    """A job record with its events.
    ---
    get:
      parameters: [{in: path, name: job_id, required: true, schema: {type: string}}]
      responses:
        200: {description: The job, content: {application/json: {schema: Job}}}
        404: {description: Unknown job, content: {application/json: {schema: Error}}}
    """
    job = load_job(job_id)
    events = [dict(event.to_dict(), id=entry_id) for entry_id, event in backplane().events.read(job_id)]
    return jsonify(job_to_dict(job, events=events))


@bp.get("/v1/jobs/<job_id>/trace")
def get_job_trace(job_id: str) -> Any:
    """A job's trace, rebuilt from its events: a span per attempt and per stage, for users without a collector.
    ---
    get:
      parameters: [{in: path, name: job_id, required: true, schema: {type: string}}]
      responses:
        200: {description: The job's spans, content: {application/json: {schema: Trace}}}
        404: {description: Unknown job, content: {application/json: {schema: Error}}}
    """
    job = load_job(job_id)
    return jsonify(job_trace(job, [event for _, event in backplane().events.read(job_id)]))


@bp.get("/v1/jobs")
def list_jobs() -> Any:
    """Jobs, newest first, filtered by state and model.
    ---
    get:
      parameters:
        - {in: query, name: state, schema: {type: string, enum: [queued, running, succeeded, failed, cancelled]}}
        - {in: query, name: model, schema: {type: string}}
        - {in: query, name: limit, schema: {type: integer, default: 50, maximum: 500}}
        - {in: query, name: offset, schema: {type: integer, default: 0}}
      responses:
        200: {description: A page of jobs}
    """
    state = request.args.get("state") or None
    if state is not None and state not in {item.value for item in JobState}:
        raise ApiError(400, "invalid_request", f"Unknown state '{state}'.")
    try:
        limit = min(max(int(request.args.get("limit", 50)), 1), 500)
        offset = max(int(request.args.get("offset", 0)), 0)
    except ValueError:
        raise ApiError(400, "invalid_request", "limit and offset must be integers.") from None
    jobs, total = backplane().store.list(
        state=state, model=request.args.get("model") or None, limit=limit, offset=offset
    )
    next_offset = offset + len(jobs) if offset + len(jobs) < total else None
    return jsonify(
        {
            "object": "list",
            "data": [job_to_dict(job) for job in jobs],
            "total": total,
            "limit": limit,
            "offset": offset,
            "next_offset": next_offset,
        }
    )


def cancel_job(plane: Any, job_id: str) -> tuple[CancelOutcome, Any]:
    outcome, job = plane.store.cancel(job_id)  # a queued job's job_cancelled event is written with its state
    if outcome == CancelOutcome.CANCELLED:
        plane.dispatcher.revoke(job)
    elif outcome == CancelOutcome.REQUESTED:
        plane.events.append(job_id, job_event("cancel_requested", job_id=job_id))
    return outcome, job


@bp.delete("/v1/jobs/<job_id>")
def delete_job(job_id: str) -> Any:
    """Cancel a job: a queued job ends now; a running job stops at its next step. Both end `cancelled`.
    ---
    delete:
      parameters: [{in: path, name: job_id, required: true, schema: {type: string}}]
      responses:
        200: {description: Cancelled (was queued), content: {application/json: {schema: Job}}}
        202: {description: Cancel requested (running), content: {application/json: {schema: Job}}}
        404: {description: Unknown job, content: {application/json: {schema: Error}}}
        409: {description: Already finished, content: {application/json: {schema: Error}}}
    """
    outcome, job = cancel_job(backplane(), job_id)
    if outcome == CancelOutcome.MISSING:
        raise ApiError(404, "not_found", f"Job '{job_id}' not found.")
    if outcome == CancelOutcome.FINISHED:
        raise ApiError(
            409, "conflict", f"Job '{job_id}' already ended ({job.state.value}).", {"state": job.state.value}
        )
    response = jsonify(job_to_dict(job))
    response.status_code = 200 if outcome == CancelOutcome.CANCELLED else 202
    return response


def sse_frame(entry_id: str, event: StageEvent) -> str:
    return f"id: {entry_id}\nevent: {event.event}\ndata: {json.dumps(event.to_dict(), separators=(',', ':'))}\n\n"


def follow_events(
    plane: Any, job_id: str, subscription: Subscription, wait_s: float, stop: threading.Event | None = None
) -> Iterator[tuple[str, StageEvent] | None]:
    """The job's events from ``subscription`` up to its terminal one, and None after each ``wait_s`` without one (a
    keep-alive tick). Ends early when the job is gone, or has ended and its remaining events expired, or ``stop`` is
    set (checked before each wait). Shared by the SSE and WebSocket event routes and ``/v1/realtime``."""
    while stop is None or not stop.is_set():
        entry = subscription.get(timeout=wait_s)
        if entry is None:
            current = plane.store.get(job_id)
            if current is None or (current.terminal and not plane.events.read(job_id, subscription.cursor)):
                return  # ended while its events expired
            yield None
            continue
        yield entry
        if entry[1].event in TERMINAL_EVENTS:
            return


@bp.get("/v1/jobs/<job_id>/events")
def job_events(job_id: str) -> Any:
    """Server-sent events for a job: replay, then live; resumable with Last-Event-ID; closes after the end.
    ---
    get:
      parameters:
        - {in: path, name: job_id, required: true, schema: {type: string}}
        - {in: header, name: Last-Event-ID, schema: {type: string}}
      responses:
        200: {description: text/event-stream of job events}
        404: {description: Unknown job, content: {application/json: {schema: Error}}}
    """
    job = load_job(job_id)
    after = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or "0-0"
    if not valid_id(after):
        raise ApiError(400, "invalid_request", f"Last-Event-ID '{after}' is not an event id.")
    plane = backplane()
    bus = plane.events
    keepalive = current_app.config["OMNIRT_SETTINGS"].sse_keepalive_s

    def stream() -> Iterator[str]:
        subscription = bus.subscribe(job_id, after)
        try:
            yield "retry: 2000\n\n"
            if job.terminal and not bus.read(job_id, after):
                return
            for entry in follow_events(plane, job_id, subscription, keepalive):
                yield ": keep-alive\n\n" if entry is None else sse_frame(*entry)
        finally:
            bus.unsubscribe(subscription)

    # No hop-by-hop headers (Connection) from a WSGI app: the server owns the connection, and keep-alive after a
    # finished stream is its call.
    headers = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}
    return Response(stream_with_context(stream()), mimetype="text/event-stream", headers=headers)


@sock.route("/v1/jobs/<job_id>/stream", bp=bp)
def job_stream(ws: Any, job_id: str) -> None:
    """WebSocket: the job's events as JSON; send {"action": "cancel"} to cancel; closes after the end."""
    plane = backplane()
    job = plane.store.get(job_id)
    if job is None:
        ws.send(
            json.dumps(
                {
                    "event": "error",
                    "stage": "job",
                    "timestamp_ms": now_ms(),
                    "data": {"code": "not_found", "message": f"Job '{job_id}' not found."},
                }
            )
        )
        ws.close(reason=4404, message="Job not found")
        return
    bus = plane.events
    after = request.args.get("last_id") or "0-0"
    subscription = bus.subscribe(job_id, after if valid_id(after) else "0-0")
    send_lock = threading.Lock()
    closed = threading.Event()

    def send(payload: dict[str, Any]) -> None:
        with send_lock:
            ws.send(json.dumps(payload, separators=(",", ":")))

    def read_controls() -> None:
        while not closed.is_set():
            try:
                message = ws.receive(timeout=1.0)
            except Exception:  # noqa: BLE001 - the client went away
                closed.set()
                return
            if message is None:
                continue
            try:
                action = json.loads(message).get("action")
            except (ValueError, AttributeError):
                action = None
            if action == "cancel":
                outcome, _ = cancel_job(plane, job_id)
                send(
                    {
                        "event": "control_ack",
                        "stage": "job",
                        "timestamp_ms": now_ms(),
                        "data": {
                            "job_id": job_id,
                            "action": "cancel",
                            "cancelled": outcome in (CancelOutcome.CANCELLED, CancelOutcome.REQUESTED),
                            "outcome": outcome.value,
                        },
                    }
                )
            else:
                send(
                    {
                        "event": "error",
                        "stage": "job",
                        "timestamp_ms": now_ms(),
                        "data": {"code": "invalid_request", "message": "Unknown control message."},
                    }
                )

    reader = threading.Thread(target=read_controls, name=f"ws-control-{job_id}", daemon=True)
    reader.start()
    try:
        if job.terminal and not bus.read(job_id, subscription.cursor):
            return
        for entry in follow_events(plane, job_id, subscription, 15.0, stop=closed):
            if entry is None:
                send({"event": "keep_alive", "stage": "job", "timestamp_ms": now_ms(), "data": {}})
            else:
                entry_id, event = entry
                send({**event.to_dict(), "id": entry_id})
    finally:
        closed.set()
        bus.unsubscribe(subscription)
        try:
            ws.close()
        except Exception:  # noqa: BLE001 - already closed by the client
            pass
