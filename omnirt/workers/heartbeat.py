"""Heartbeats: each process that runs jobs says, every few seconds, that it is alive and what it serves.

The records go to the worker registry (:mod:`omnirt.jobs.workers`): device, queues, loaded models, memory, the job
it is running. When a process dies, its record expires; the job store treats a running job whose worker has no
record as orphaned, and :mod:`omnirt.workers.reaper` re-runs or fails it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from omnirt.jobs.workers import WorkerRegistry

log = logging.getLogger(__name__)


class Heartbeat:
    """A daemon thread that beats every ``interval_s`` with ``describe()``, then runs ``on_beat`` hooks."""

    def __init__(
        self,
        registry: WorkerRegistry,
        worker_id: str,
        describe: Callable[[], dict[str, Any]],
        *,
        interval_s: float,
        ttl_s: float,
        on_beat: tuple[Callable[[], None], ...] = (),
    ) -> None:
        self.registry = registry
        self.worker_id = worker_id
        self.describe = describe
        self.interval_s = interval_s
        self.ttl_s = ttl_s
        self.on_beat = on_beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"omnirt-heartbeat-{worker_id}", daemon=True)

    def start(self) -> Heartbeat:
        self.beat_once()
        self._thread.start()
        return self

    def beat_once(self) -> None:
        try:
            self.registry.beat(self.worker_id, {"worker_id": self.worker_id, **self.describe()}, self.ttl_s)
        except Exception:
            log.warning("heartbeat for %s failed", self.worker_id, exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat_once()
            for hook in self.on_beat:
                try:
                    hook()
                except Exception:
                    log.warning("heartbeat hook failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        try:
            self.registry.forget(self.worker_id)
        except Exception:
            log.debug("could not remove heartbeat", exc_info=True)
