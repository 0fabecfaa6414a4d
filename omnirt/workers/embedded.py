"""The embedded server's workers: in-process threads fed from a queue, the stand-in for Celery and Redis.

:class:`EmbeddedDispatcher` is the backplane's dispatcher in embedded mode (no Redis URL). On start it prepares this
process the way a Celery worker process prepares itself (:func:`omnirt.workers.engine.configure_process`: the
engine's warm cache, torch threads and limits, frame lanes and session capacity from the settings; a heartbeat that
runs idle unload; ``OMNIRT_PRELOAD`` models loaded), then runs jobs on worker threads and sessions in this process's
session host.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from typing import TYPE_CHECKING, Any

from omnirt.jobs.job import Job

if TYPE_CHECKING:
    from omnirt.backplane import Backplane

log = logging.getLogger(__name__)


def embedded_worker_id(index: int) -> str:
    """The id of embedded worker thread ``index`` of this process."""
    return f"embedded:{socket.gethostname()}:{os.getpid()}:{index}"


def in_this_process(worker_id: str) -> bool:
    """Whether ``worker_id`` is an embedded worker thread of this process: alive as long as the process is, whatever
    its heartbeat says (a long call that holds the GIL can delay a beat past its TTL; the job is still running)."""
    return worker_id.startswith(f"embedded:{socket.gethostname()}:{os.getpid()}:")


class EmbeddedDispatcher:
    """In-process worker threads fed from a queue: the embedded stand-in for Celery and Redis. ``queues`` are the
    queues its heartbeats say it serves (all of them)."""

    def __init__(self, backplane: Backplane, workers: int, *, queues: list[str]) -> None:
        self.backplane = backplane
        self.queues = list(queues)
        self.jobs: queue.Queue[str] = queue.Queue()
        self.worker_ids = [embedded_worker_id(index) for index in range(workers)]
        self._threads = [
            threading.Thread(target=self._work, args=(worker_id,), name=f"omnirt-{worker_id}", daemon=True)
            for worker_id in self.worker_ids
        ]
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        from omnirt.workers.engine import configure_process, preload
        from omnirt.workers.heartbeat import Heartbeat
        from omnirt.workers.reaper import Reaper

        with self._lock:
            if self._started:
                return
            settings = self.backplane.settings
            engine = configure_process(settings)
            for index, worker_id in enumerate(self.worker_ids):
                heartbeat = Heartbeat(
                    self.backplane.workers,
                    worker_id,
                    self._describe,
                    interval_s=settings.heartbeat_interval_s,
                    ttl_s=settings.heartbeat_ttl_s,
                    on_beat=(engine.cache.sweep,) if index == 0 else (),  # one idle unload per process
                ).start()
                self.backplane.background.append(heartbeat)
            preload(engine, settings.preload)
            for thread in self._threads:
                thread.start()
            self.backplane.background.append(Reaper(self.backplane).start())
            self._started = True

    def _describe(self) -> dict[str, Any]:
        """The heartbeat of an embedded worker thread: as a fleet worker's, for this process."""
        import psutil

        from omnirt.workers.engine import get_default_engine
        from omnirt.workers.sessions import get_session_host

        host, engine = get_session_host(), get_default_engine()
        return {
            "mode": "embedded",
            "device": "auto",
            "queues": self.queues,
            "pid": os.getpid(),
            "loaded_models": engine.loaded_models(),
            "sessions": {"active": len(host.active), "capacity": host.capacity, "by_model": host.by_model()},
            "memory": {"rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1), **engine.device_memory()},
        }

    def dispatch(self, job: Job) -> None:
        self.start()
        self.jobs.put(job.id)

    def revoke(self, job: Job) -> None:
        """A queued embedded job is skipped when a thread takes it: its record already says cancelled."""

    def start_session(self, session_id: str, model: str, queue_name: str) -> None:
        """Run the session in this process's session host (the embedded worker id holds the lease)."""
        from omnirt.workers.engine import get_default_engine
        from omnirt.workers.sessions import get_session_host

        self.start()
        get_session_host().try_start(
            session_id, backplane=self.backplane, engine=get_default_engine(), worker_id=self.worker_ids[0], model=model
        )

    def _work(self, worker_id: str) -> None:
        from omnirt.workers.engine import get_default_engine
        from omnirt.workers.executor import execute_job

        while True:
            job_id = self.jobs.get()
            try:
                execute_job(job_id, backplane=self.backplane, engine=get_default_engine(), worker_id=worker_id)
            except Exception:
                log.exception("embedded worker failed on job %s", job_id)
