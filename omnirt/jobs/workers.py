"""The worker registry: which worker processes are alive, from the heartbeats they write (Redis, or memory embedded).

A heartbeat is a small JSON record with a TTL (:func:`omnirt.keys.process`): device, queues, loaded models, memory,
the job it is running. When a process dies its record expires, and the job store treats a running job whose worker
has no record as orphaned (:meth:`omnirt.jobs.store.JobStore.claim`, the reaper). The beating thread itself is
:class:`omnirt.workers.heartbeat.Heartbeat`.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Protocol

from omnirt import keys


class WorkerRegistry(Protocol):
    def beat(self, worker_id: str, info: dict[str, Any], ttl_s: float) -> None: ...
    def forget(self, worker_id: str) -> None: ...
    def alive(self, worker_id: str) -> bool: ...
    def workers(self) -> list[dict[str, Any]]: ...


class RedisWorkerRegistry:
    """Heartbeat records with a TTL, indexed by expiry (:func:`omnirt.keys.workers`) so listing never scans the
    keyspace."""

    def __init__(self, client: Any) -> None:
        self.redis = client

    def beat(self, worker_id: str, info: dict[str, Any], ttl_s: float) -> None:
        expires_ms = int((time.time() + ttl_s) * 1000)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(keys.process(worker_id), json.dumps(info), px=int(ttl_s * 1000))
        pipe.zadd(keys.workers(), {worker_id: expires_ms})
        pipe.zremrangebyscore(keys.workers(), "-inf", int(time.time() * 1000) - 60_000)
        pipe.execute()

    def forget(self, worker_id: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(keys.process(worker_id))
        pipe.zrem(keys.workers(), worker_id)
        pipe.execute()

    def alive(self, worker_id: str) -> bool:
        return bool(self.redis.exists(keys.process(worker_id)))

    def workers(self) -> list[dict[str, Any]]:
        ids = self.redis.zrangebyscore(keys.workers(), int(time.time() * 1000), "+inf")
        values = self.redis.mget([keys.process(worker_id) for worker_id in ids]) if ids else []
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
