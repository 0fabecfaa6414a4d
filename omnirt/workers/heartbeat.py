"""Heartbeats: each process that runs jobs says, every few seconds, that it is alive and what it serves.

A heartbeat is a small JSON record with a TTL (``omnirt:proc:<worker id>`` in Redis): device, queues, loaded
models, memory, the job it is running. When a process dies, its record expires; the job store treats a running job
whose worker has no record as orphaned, and :mod:`omnirt.workers.reaper` re-runs or fails it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from omnirt.jobs.store import PREFIX, process_key

log = logging.getLogger(__name__)


class WorkerRegistry(Protocol):
    def beat(self, worker_id: str, info: dict[str, Any], ttl_s: float) -> None: ...
    def forget(self, worker_id: str) -> None: ...
    def alive(self, worker_id: str) -> bool: ...
    def workers(self) -> list[dict[str, Any]]: ...


class RedisWorkerRegistry:
    """Heartbeat records with a TTL, indexed by expiry in ``omnirt:workers`` so listing never scans the keyspace."""

    INDEX = f"{PREFIX}:workers"

    def __init__(self, client: Any) -> None:
        self.redis = client

    def beat(self, worker_id: str, info: dict[str, Any], ttl_s: float) -> None:
        expires_ms = int((time.time() + ttl_s) * 1000)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(process_key(worker_id), json.dumps(info), px=int(ttl_s * 1000))
        pipe.zadd(self.INDEX, {worker_id: expires_ms})
        pipe.zremrangebyscore(self.INDEX, "-inf", int(time.time() * 1000) - 60_000)
        pipe.execute()

    def forget(self, worker_id: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(process_key(worker_id))
        pipe.zrem(self.INDEX, worker_id)
        pipe.execute()

    def alive(self, worker_id: str) -> bool:
        return bool(self.redis.exists(process_key(worker_id)))

    def workers(self) -> list[dict[str, Any]]:
        ids = self.redis.zrangebyscore(self.INDEX, int(time.time() * 1000), "+inf")
        values = self.redis.mget([process_key(worker_id) for worker_id in ids]) if ids else []
        return [json.loads(value) for value in values if value]


class MemoryWorkerRegistry:
    def __init__(self) -> None:
        self._records: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def beat(self, worker_id: str, info: dict[str, Any], ttl_s: float) -> None:
        with self._lock:
            self._records[worker_id] = (time.monotonic() + ttl_s, info)

    def forget(self, worker_id: str) -> None:
        with self._lock:
            self._records.pop(worker_id, None)

    def alive(self, worker_id: str) -> bool:
        with self._lock:
            record = self._records.get(worker_id)
            return bool(record and record[0] > time.monotonic())

    def workers(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            return [info for deadline, info in self._records.values() if deadline > now]


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
