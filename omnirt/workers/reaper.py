"""The reaper: finds running jobs whose worker's heartbeat has expired and re-runs them once, or fails them.

Every front end and every worker process runs one; the store's transitions are atomic, so several reapers never
requeue a job twice. A job therefore never stays ``running`` longer than the heartbeat TTL plus one sweep after its
worker died (kill -9 included).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from omnirt.events.bus import job_event
from omnirt.jobs.job import JobState
from omnirt.workers.embedded import in_this_process

if TYPE_CHECKING:
    from omnirt.backplane import Backplane

log = logging.getLogger(__name__)


def sweep(backplane: Backplane) -> list[tuple[str, JobState]]:
    """One pass over running jobs; returns what changed."""
    changed = []
    settings = backplane.settings
    for job_id, worker_id in backplane.store.running():
        if worker_id and (in_this_process(worker_id) or backplane.workers.alive(worker_id)):
            continue
        outcome = backplane.store.requeue_if_orphaned(job_id, settings.max_attempts, holder=worker_id)
        if outcome is None:
            continue
        changed.append((job_id, outcome))
        if outcome == JobState.QUEUED:
            job = backplane.store.get(job_id)
            backplane.events.append(job_id, job_event("job_requeued", job_id=job_id, lost_worker=worker_id))
            if job is not None:
                backplane.dispatcher.dispatch(job)
        else:
            job = backplane.store.get(job_id)
            event = "job_cancelled" if outcome == JobState.CANCELLED else "job_failed"
            backplane.events.append(job_id, job_event(event, job_id=job_id, error=job.error if job else None))
        log.warning("job %s: worker %s is gone; job is now %s", job_id, worker_id, outcome.value)
    return changed


class Reaper:
    def __init__(self, backplane: Backplane, interval_s: float | None = None) -> None:
        self.backplane = backplane
        self.interval_s = interval_s or backplane.settings.heartbeat_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="omnirt-reaper", daemon=True)

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.interval_s):
            try:
                sweep(self.backplane)
                failing = False
            except Exception as exc:  # noqa: BLE001 - Redis down or similar: try again next interval
                if not failing:
                    log.warning("reaper cannot sweep (%s: %s); retrying quietly", type(exc).__name__, exc)
                failing = True
