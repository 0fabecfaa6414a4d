"""Running one job: the code path a Celery task and an embedded worker thread share.

``execute_job`` claims the job (see :meth:`JobStore.claim`), emits ``job_started``, runs the request on this
process's warm engine with progress and cancellation wired to the job's event stream and record, writes the
artifacts under ``<artifact dir>/<job id>/`` and ends the job ``succeeded``, ``failed`` or ``cancelled`` with the
matching terminal event. Nothing large goes through the broker: the task carries the job id only.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from omnirt.contracts.errors import JobCancelledError, OmniRTError
from omnirt.contracts.types import GenerateRequest
from omnirt.events.bus import job_event
from omnirt.jobs.job import JobState
from omnirt.jobs.store import Claim

if TYPE_CHECKING:
    from omnirt.backplane import Backplane
    from omnirt.runtime.engine import Engine

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
    events.append_later(job_id, job_event("job_started", job_id=job_id, worker_id=worker_id, attempt=job.attempts))

    last_poll = [time.monotonic(), False]  # a cancel before the start was seen by claim()

    def should_cancel() -> bool:
        now = time.monotonic()
        if now - last_poll[0] >= CANCEL_POLL_S:
            last_poll[:] = [now, store.cancel_requested(job_id)]
        return bool(last_poll[1])

    request = GenerateRequest.from_dict(job.request)
    try:
        result = engine.run(
            request,
            backend=job.backend,
            on_event=lambda event: events.append_later(job_id, event),
            should_cancel=should_cancel,
            job_id=job_id,
            run_dir=backplane.settings.artifact_dir.resolve() / job_id,
            avatars=backplane.avatars,
        )
    except JobCancelledError:
        events.flush()
        store.finish(job_id, JobState.CANCELLED, event=job_event("job_cancelled", job_id=job_id))
        return JobState.CANCELLED
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


def _fail(backplane: Backplane, job_id: str, error: dict[str, Any]) -> JobState:
    backplane.store.finish(
        job_id, JobState.FAILED, error=error, event=job_event("job_failed", job_id=job_id, error=error)
    )
    return JobState.FAILED
