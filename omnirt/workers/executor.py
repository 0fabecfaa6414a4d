"""Running one job: the code path a Celery task and an embedded worker thread share.

``execute_job`` claims the job (see :meth:`JobStore.claim`), emits ``job_started``, runs the request on this
process's warm engine with progress and cancellation wired to the job's event stream and record, writes the
artifacts under ``<artifact dir>/<job id>/`` and ends the job ``succeeded``, ``failed`` or ``cancelled`` with the
matching terminal event. Nothing large goes through the broker: the task carries the job id only.

Every claimed job ends: whatever is raised once the job is claimed fails it. A job past its time limit
(:mod:`omnirt.registry.limits`) fails with ``timeout`` at its next step (and Celery's soft limit interrupts one that
never reaches a step). Error messages name no server paths.

A job with a batch key (:mod:`omnirt.jobs.batching`) leaves its lobby when claimed; with dynamic batching on
(``OMNIRT_MAX_BATCH_SIZE`` above 1) the worker first takes compatible queued jobs from the lobby and runs them all as
one call (:mod:`omnirt.workers.batching`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from celery.exceptions import SoftTimeLimitExceeded

from omnirt.contracts.errors import JobCancelledError, OmniRTError
from omnirt.contracts.types import GenerateRequest
from omnirt.events.bus import job_event
from omnirt.jobs.job import Job, JobState
from omnirt.jobs.store import Claim
from omnirt.registry.limits import job_time_limit_s
from omnirt.tracing import StageSpans, current_span_fields, log_context, mark_error, span
from omnirt.workers.batching import execute_batch, take_companions
from omnirt.workers.outcomes import cancel_check, cancelled, error_of, fail, succeeded

if TYPE_CHECKING:
    from omnirt.backplane import Backplane
    from omnirt.workers.engine import Engine

log = logging.getLogger(__name__)


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
            companions = take_companions(job, backplane=backplane, worker_id=worker_id)
            if companions:
                state = execute_batch(
                    [job, *companions], backplane=backplane, engine=engine, worker_id=worker_id, stages=stages
                )
            else:
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
    events, job_id = backplane.events, job.id
    started = current_span_fields()  # the job span's ids, for GET /v1/jobs/{id}/trace
    log.info("job %s: running %s on %s (attempt %d)", job_id, job.model, worker_id, job.attempts)
    events.append_later(
        job_id, job_event("job_started", job_id=job_id, worker_id=worker_id, attempt=job.attempts, **started)
    )
    time_limit_s = job_time_limit_s(job.model, job.task, backplane.settings.limits)
    try:
        request = GenerateRequest.from_dict(job.request)
        result = engine.run(
            request,
            backend=job.backend,
            on_event=lambda event: (stages(event), events.append_later(job_id, event)),
            should_cancel=cancel_check(backplane, job_id, time_limit_s),
            job_id=job_id,
            run_dir=backplane.settings.artifact_dir.resolve() / job_id,
            avatars=backplane.avatars,
        )
    except JobCancelledError:
        events.flush()
        return cancelled(backplane, job_id)
    except Exception as exc:
        if not isinstance(exc, (OmniRTError, SoftTimeLimitExceeded)):
            log.exception("job %s failed", job_id)
        events.flush()
        return fail(backplane, job_id, error_of(exc, time_limit_s))
    events.flush()
    state = succeeded(backplane, job, result, worker_id=worker_id)
    if state is None:
        log.warning("job %s finished but its record had moved on; result dropped", job_id)
    return state
