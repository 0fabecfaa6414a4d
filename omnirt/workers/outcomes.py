"""How a claimed job ends, shared by the single-job path (:mod:`omnirt.workers.executor`) and batches
(:mod:`omnirt.workers.batching`): its cancel check (a cancel flag polled at most every ``CANCEL_POLL_S``, the job's
time limit), the error a raised exception becomes (server paths redacted), and the terminal transitions with their
events.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded

from omnirt.contracts.errors import JobTimeoutError, OmniRTError
from omnirt.contracts.types import GenerateResult
from omnirt.events.bus import job_event
from omnirt.jobs.job import Job, JobState

if TYPE_CHECKING:
    from omnirt.backplane import Backplane

CANCEL_POLL_S = 0.05


def cancel_check(backplane: Backplane, job_id: str, time_limit_s: float) -> Callable[[], bool]:
    """A run's ``should_cancel`` for ``job_id``: True once a cancel is requested (polled at most every
    ``CANCEL_POLL_S``); raises :class:`JobTimeoutError` once the job is past ``time_limit_s`` from now."""
    store = backplane.store
    last_poll = [time.monotonic(), False]  # a cancel before the start was seen by claim()
    deadline = time.monotonic() + time_limit_s

    def should_cancel() -> bool:
        now = time.monotonic()
        if now > deadline:
            raise JobTimeoutError(f"The job ran past its time limit of {time_limit_s:g} s and was stopped.")
        if now - last_poll[0] >= CANCEL_POLL_S:
            last_poll[:] = [now, store.cancel_requested(job_id)]
        return bool(last_poll[1])

    return should_cancel


def error_of(exc: BaseException, time_limit_s: float) -> dict[str, Any]:
    """The job error a run's exception becomes (not for a cancel)."""
    if isinstance(exc, SoftTimeLimitExceeded):
        exc = JobTimeoutError(f"The job ran past its time limit of {time_limit_s:g} s and was stopped.")
    if isinstance(exc, OmniRTError):
        return exc.to_dict()
    return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}", "details": {}}


_SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+-]+/)+[\w.@+-]*")


def redact_paths(message: str) -> str:
    """``message`` with absolute server paths replaced by their last component (``.../image-0.png``)."""
    return _SERVER_PATH.sub(lambda match: ".../" + match.group(0).rstrip("/").rsplit("/", 1)[-1], message)


def fail(backplane: Backplane, job_id: str, error: dict[str, Any]) -> JobState:
    error = {**error, "message": redact_paths(str(error.get("message", "")))}
    backplane.store.finish(
        job_id, JobState.FAILED, error=error, event=job_event("job_failed", job_id=job_id, error=error)
    )
    return JobState.FAILED


def cancelled(backplane: Backplane, job_id: str) -> JobState:
    backplane.store.finish(job_id, JobState.CANCELLED, event=job_event("job_cancelled", job_id=job_id))
    return JobState.CANCELLED


def succeeded(
    backplane: Backplane, job: Job, result: GenerateResult, *, worker_id: str, **event_data: Any
) -> JobState | None:
    """Finish ``job`` with ``result`` (``job_finished`` carries ``event_data`` too); None when the record had moved
    on meanwhile (the result is dropped)."""
    result.metadata.worker_id = worker_id
    result.metadata.trace_id = job.trace_id
    if job.started_at_ms is not None:
        result.metadata.queue_wait_ms = float(job.started_at_ms - job.enqueued_at_ms)
    payload = result.to_dict()
    finished = job_event("job_finished", job_id=job.id, outputs=len(result.outputs), **event_data)
    if not backplane.store.finish(job.id, JobState.SUCCEEDED, result=payload, event=finished):
        return None
    backplane.record_stage_timings(job.model, result.metadata.timings)
    return JobState.SUCCEEDED
