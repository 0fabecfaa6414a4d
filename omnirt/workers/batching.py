"""Dynamic batching on a worker: take compatible queued jobs beside the one it starts, run them as one call.

A job with a batch key (:mod:`omnirt.jobs.batching`) waits in its key's lobby (:mod:`omnirt.jobs.store`) while
queued. The worker that claims one (through its own delivery) leaves the lobby with it and, with
``OMNIRT_MAX_BATCH_SIZE`` above 1, :func:`take_companions` claims up to ``max_batch_size - 1`` more from the lobby,
waiting at most ``OMNIRT_BATCH_WINDOW_MS`` for them (0: only those already queued). Every companion is taken with the
store's atomic ``claim``, so it is ``running`` under this worker exactly as if its own delivery had started it: its own
delivery, when it comes, finds it held or finished and is dropped; if this worker dies, the reaper re-queues each
member like any running job (up to ``OMNIRT_MAX_ATTEMPTS``).

:func:`execute_batch` runs the members as one pipeline call (:meth:`omnirt.workers.engine.Engine.run_batch`). Each
job keeps its own events (``job_started`` and ``job_finished`` carry ``batch_group_id`` and ``batch_size``), report
and artifacts folder. A job cancelled during the batch ends ``cancelled`` at the next step and its output is
discarded; the others go on. An error fails every member with that error. The batch runs within the first job's
time limit and Celery time limits (the members share one model and task, hence one limit).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING

from omnirt.contracts.errors import JobCancelledError
from omnirt.contracts.types import GenerateRequest, StageEvent
from omnirt.events.bus import job_event
from omnirt.jobs.job import Job, JobState
from omnirt.jobs.store import Claim
from omnirt.models.base import EventSink
from omnirt.models.batching import BatchRequest
from omnirt.registry.limits import job_time_limit_s
from omnirt.tracing import StageSpans, current_span_fields
from omnirt.workers.outcomes import cancel_check, cancelled, error_of, fail, succeeded

if TYPE_CHECKING:
    from omnirt.backplane import Backplane
    from omnirt.workers.engine import Engine

log = logging.getLogger(__name__)

LOBBY_POLL_S = 0.005


def take_companions(job: Job, *, backplane: Backplane, worker_id: str) -> list[Job]:
    """Leave ``job``'s lobby and, with batching on, claim compatible queued jobs for one batch with it."""
    store, settings = backplane.store, backplane.settings
    key = job.batch_key
    if not key:
        return []
    taken: list[Job] = []
    try:
        store.leave_lobby(key, [job.id])
        wanted = settings.max_batch_size - 1
        deadline = time.monotonic() + max(0.0, settings.batch_window_ms) / 1000
        while len(taken) < wanted:
            candidates = [item for item in store.lobby(key, wanted - len(taken) + 1) if item != job.id]
            for candidate in candidates:
                claim, other = store.claim(candidate, worker_id, settings.max_attempts)
                store.leave_lobby(key, [candidate])  # claimed here, held elsewhere or finished: not queued any more
                if claim is Claim.RUN and other is not None:
                    taken.append(other)
                    if len(taken) == wanted:
                        break
                elif claim is Claim.EXHAUSTED and other is not None:
                    backplane.events.append(candidate, job_event("job_failed", job_id=candidate, error=other.error))
            if candidates:
                continue  # the lobby changed: look again at once
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(LOBBY_POLL_S, remaining))
    except Exception:  # the store failed: run what is held; the lobby is only a hint
        log.warning("job %s: could not take batch companions", job.id, exc_info=True)
    if taken:
        log.info("job %s: batched with %s", job.id, ", ".join(other.id for other in taken))
    return taken


def execute_batch(
    jobs: list[Job], *, backplane: Backplane, engine: Engine, worker_id: str, stages: StageSpans
) -> JobState | None:
    """Run claimed ``jobs`` (one batch key) as one call and end each; returns the first job's final state.
    ``stages`` (the first job's stage spans) sees the first job's events."""
    events, settings = backplane.events, backplane.settings
    group, size = uuid.uuid4().hex, len(jobs)
    started = current_span_fields()
    time_limit_s = job_time_limit_s(jobs[0].model, jobs[0].task, settings.limits)
    ended: dict[str, JobState | None] = {}

    def finish_cancelled(job_id: str) -> None:
        events.flush()
        ended[job_id] = cancelled(backplane, job_id)

    for index, job in enumerate(jobs):
        log.info("job %s: running %s on %s in batch %s (%d jobs)", job.id, job.model, worker_id, group, size)
        events.append_later(
            job.id,
            job_event(
                "job_started",
                job_id=job.id,
                worker_id=worker_id,
                attempt=job.attempts,
                batch_group_id=group,
                batch_size=size,
                **(started if index == 0 else {}),
            ),
        )
    try:
        members = [
            BatchRequest(
                request=GenerateRequest.from_dict(job.request),
                job_id=job.id,
                run_dir=settings.artifact_dir.resolve() / job.id,
                on_event=_sink(backplane, job.id, stages if index == 0 else None),
                should_cancel=cancel_check(backplane, job.id, time_limit_s),
                on_cancelled=lambda job_id=job.id: finish_cancelled(job_id),
            )
            for index, job in enumerate(jobs)
        ]
        results = engine.run_batch(members, backend=jobs[0].backend, batch_group_id=group)
    except JobCancelledError:  # every member was cancelled (and has ended)
        events.flush()
        for job in jobs:
            ended.setdefault(job.id, cancelled(backplane, job.id))
        return ended[jobs[0].id]
    except Exception as exc:
        log.exception("batch %s failed", group)
        events.flush()
        error = error_of(exc, time_limit_s)
        for job in jobs:
            if job.id not in ended:
                ended[job.id] = fail(backplane, job.id, error)
        return ended[jobs[0].id]
    events.flush()
    for job, result in zip(jobs, results, strict=True):
        if result is None or job.id in ended:
            continue
        ended[job.id] = succeeded(backplane, job, result, worker_id=worker_id, batch_group_id=group, batch_size=size)
        if ended[job.id] is None:
            log.warning("job %s finished but its record had moved on; result dropped", job.id)
    return ended.get(jobs[0].id)


def _sink(backplane: Backplane, job_id: str, stages: StageSpans | None) -> EventSink:
    """Job ``job_id``'s event listener: its event stream, and its stage spans where given."""

    def on_event(event: StageEvent) -> None:
        if stages is not None:
            stages(event)
        backplane.events.append_later(job_id, event)

    return on_event
