"""Running one job: the code path a Celery task and an embedded worker thread share.

``execute_job`` claims the job (see :meth:`JobStore.claim`), emits ``job_started``, runs the request on this
process's warm engine with progress and cancellation wired to the job's event stream and record, writes the
artifacts under ``<artifact dir>/<job id>/`` and ends the job ``succeeded``, ``failed`` or ``cancelled`` with the
matching terminal event. Nothing large goes through the broker: the task carries the job id only.

Every claimed job ends: whatever is raised once the job is claimed fails it. A job past its time limit
(:mod:`omnirt.registry.limits`) fails with ``timeout`` at its next step (and Celery's soft limit interrupts one that
never reaches a step). Error messages name no server paths.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded

from omnirt.contracts.errors import JobCancelledError, JobTimeoutError, OmniRTError
from omnirt.contracts.types import GenerateRequest
from omnirt.events.bus import job_event
from omnirt.jobs.job import Job, JobState
from omnirt.jobs.store import Claim
from omnirt.registry.limits import job_time_limit_s
from omnirt.tracing import StageSpans, current_span_fields, log_context, mark_error, span

if TYPE_CHECKING:
    from omnirt.backplane import Backplane
    from omnirt.workers.engine import Engine

log = logging.getLogger(__name__)

CANCEL_POLL_S = 0.05


def execute_job(job_id: str, *, backplane: Backplane, engine: Engine, worker_id: str) -> JobState | None:
    """Run ``job_id`` if this delivery may; returns the job's final state, or None when the delivery was dropped."""
    store, events = backplane.store, backplane.events
    claim, job = store.claim(job_id, worker_id, backplane.settings.max_attempts)
    if claim is Claim.SKIP or job is None:
        log.info("job %s: delivery dropped (%s)", job_id, job.state.value if job else "unknown")
        return None
    if claim is Claim.EXHAUSTED:
        events.append(job_id, job_event("job_failed", job_id=job_id, error=job.error))
        return JobState.FAILED
    parent = {"traceparent": job.traceparent} if job.traceparent else None
    attributes = {
        "omnirt.job_id": job_id,
        "omnirt.model": job.model,
        "omnirt.task": job.task,
        "omnirt.queue": job.queue,
    }
    with (
        log_context(job_id=job_id, trace_id=job.trace_id),
        span(f"job {job.model}", parent=parent, attributes={**attributes, "omnirt.attempt": job.attempts}) as job_span,
    ):
        stages = StageSpans()
        try:
            state = _run_claimed(job, backplane=backplane, engine=engine, worker_id=worker_id, stages=stages)
        finally:
            stages.close(error="the job ended inside this stage")
        if state is not None and state is not JobState.SUCCEEDED:
            mark_error(job_span, state.value)
        log.info("job %s: %s", job_id, state.value if state else "dropped")
        return state


def _run_claimed(
    job: Job, *, backplane: Backplane, engine: Engine, worker_id: str, stages: StageSpans
) -> JobState | None:
    store, events, job_id = backplane.store, backplane.events, job.id
    started = current_span_fields()  # the job span's ids, for GET /v1/jobs/{id}/trace
    log.info("job %s: running %s on %s (attempt %d)", job_id, job.model, worker_id, job.attempts)
    events.append_later(
        job_id, job_event("job_started", job_id=job_id, worker_id=worker_id, attempt=job.attempts, **started)
    )

    last_poll = [time.monotonic(), False]  # a cancel before the start was seen by claim()
    time_limit_s = job_time_limit_s(job.model, job.task, backplane.settings.limits)
    deadline = time.monotonic() + time_limit_s

    def should_cancel() -> bool:
        now = time.monotonic()
        if now > deadline:
            raise JobTimeoutError(f"The job ran past its time limit of {time_limit_s:g} s and was stopped.")
        if now - last_poll[0] >= CANCEL_POLL_S:
            last_poll[:] = [now, store.cancel_requested(job_id)]
        return bool(last_poll[1])

    try:
        request = GenerateRequest.from_dict(job.request)
        result = engine.run(
            request,
            backend=job.backend,
            on_event=lambda event: (stages(event), events.append_later(job_id, event)),
            should_cancel=should_cancel,
            job_id=job_id,
            run_dir=backplane.settings.artifact_dir.resolve() / job_id,
            avatars=backplane.avatars,
        )
    except JobCancelledError:
        events.flush()
        store.finish(job_id, JobState.CANCELLED, event=job_event("job_cancelled", job_id=job_id))
        return JobState.CANCELLED
    except SoftTimeLimitExceeded:
        events.flush()
        timeout = JobTimeoutError(f"The job ran past its time limit of {time_limit_s:g} s and was stopped.")
        return _fail(backplane, job_id, timeout.to_dict())
    except OmniRTError as exc:
        events.flush()
        return _fail(backplane, job_id, exc.to_dict())
    except Exception as exc:
        log.exception("job %s failed", job_id)
        events.flush()
        return _fail(
            backplane, job_id, {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}", "details": {}}
        )
    result.metadata.worker_id = worker_id
    result.metadata.trace_id = job.trace_id
    if job.started_at_ms is not None:
        result.metadata.queue_wait_ms = float(job.started_at_ms - job.enqueued_at_ms)
    payload = result.to_dict()
    events.flush()
    finished = job_event("job_finished", job_id=job_id, outputs=len(result.outputs))
    if not store.finish(job_id, JobState.SUCCEEDED, result=payload, event=finished):
        log.warning("job %s finished but its record had moved on; result dropped", job_id)
        return None
    backplane.record_stage_timings(job.model, result.metadata.timings)
    return JobState.SUCCEEDED


_SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+-]+/)+[\w.@+-]*")


def redact_paths(message: str) -> str:
    """``message`` with absolute server paths replaced by their last component (``.../image-0.png``)."""
    return _SERVER_PATH.sub(lambda match: ".../" + match.group(0).rstrip("/").rsplit("/", 1)[-1], message)


def _fail(backplane: Backplane, job_id: str, error: dict[str, Any]) -> JobState:
    error = {**error, "message": redact_paths(str(error.get("message", "")))}
    backplane.store.finish(
        job_id, JobState.FAILED, error=error, event=job_event("job_failed", job_id=job_id, error=error)
    )
    return JobState.FAILED
