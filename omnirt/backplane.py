"""The state a process shares with the rest of the fleet: job store, event bus, worker registry, session channels,
avatar store and stage statistics, plus the dispatcher that sends work to workers.

In a fleet (a Redis URL is configured) the state is in Redis; embedded (no Redis URL) it lives in memory. How work
reaches workers is not this module's business: whoever builds a backplane gives it a dispatcher factory
(:func:`omnirt.tasks.dispatch.connect` gives Celery in a fleet and in-process worker threads embedded), so the
backplane sits below the tasks and the workers that use it. Everything above it (the API, the executor) is the same
in both modes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from omnirt.avatars.store import AvatarIndex, AvatarStore
from omnirt.events.bus import EventBus, MemoryEventBus, RedisEventBus
from omnirt.events.channels import MemorySessionChannels, RedisSessionChannels, SessionChannels
from omnirt.jobs.job import Job
from omnirt.jobs.stats import MemoryStageStats, RedisStageStats, StageStats
from omnirt.jobs.store import JobStore, MemoryJobStore, RedisJobStore
from omnirt.jobs.workers import MemoryWorkerRegistry, RedisWorkerRegistry, WorkerRegistry
from omnirt.settings import Settings

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    def dispatch(self, job: Job) -> None: ...
    def revoke(self, job: Job) -> None: ...
    def start_session(self, session_id: str, model: str, queue_name: str) -> None: ...


#: Builds a backplane's dispatcher once the backplane's stores exist (a dispatcher may use them).
DispatcherFactory = Callable[["Backplane"], Dispatcher]


class NoDispatcher:
    """The dispatcher of a backplane built without one (tests and tools that only read the shared state)."""

    def _refuse(self, *_: Any, **__: Any) -> None:
        raise RuntimeError("this backplane has no dispatcher; build it with omnirt.tasks.dispatch.connect")

    dispatch = revoke = start_session = _refuse


REDIS_POOL_WAIT_S = 10.0  # how long a request waits for a pooled Redis connection before store_unavailable


def redis_client(settings: Settings, **options: Any) -> Any:
    """A Redis client whose pool waits for a free connection (``OMNIRT_REDIS_MAX_CONNECTIONS``) instead of failing:
    an event-driven front end may hold a connection per open stream, and a burst of streams must queue, not 503."""
    import redis

    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=settings.redis_max_connections, timeout=REDIS_POOL_WAIT_S, **options
    )
    return redis.Redis(connection_pool=pool)


class Backplane:
    def __init__(self, settings: Settings, dispatcher: DispatcherFactory | None = None) -> None:
        self.settings = settings
        self.background: list[Any] = []  # threads with a stop(): reapers, heartbeats
        self._cache: dict[str, tuple[float, Any]] = {}
        self.redis: Any = None
        self.store: JobStore
        self.events: EventBus
        self.workers: WorkerRegistry
        self.sessions: SessionChannels
        self.avatars: AvatarStore
        self.stages: StageStats
        if settings.embedded:
            self.workers = MemoryWorkerRegistry()
            self.events = MemoryEventBus(ttl_s=settings.events_ttl_s)
            self.store = MemoryJobStore(is_alive=self.workers.alive, events=self.events)
            self.sessions = MemorySessionChannels()
            self.stages = MemoryStageStats()
        else:
            self.redis = redis_client(
                settings,
                decode_responses=True,
                socket_timeout=5,
                socket_connect_timeout=2,
                health_check_interval=30,
            )
            relay_client = redis_client(settings, decode_responses=True, socket_connect_timeout=2)
            self.workers = RedisWorkerRegistry(self.redis)
            self.sessions = RedisSessionChannels(settings.redis_url)
            self.store = RedisJobStore(
                self.redis,
                ttl_s=settings.job_ttl_s,
                events_maxlen=settings.events_maxlen,
                events_ttl_s=settings.events_ttl_s,
            )
            self.events = RedisEventBus(
                relay_client, maxlen=settings.events_maxlen, ttl_s=settings.events_ttl_s, job_ttl_s=settings.job_ttl_s
            )
            self.stages = RedisStageStats(self.redis)
        self.avatars = AvatarStore(
            settings.avatar_root, AvatarIndex(self.redis), max_video_bytes=settings.max_avatar_video_bytes
        )
        self.dispatcher: Dispatcher = dispatcher(self) if dispatcher is not None else NoDispatcher()

    def close(self) -> None:
        """Stop this backplane's background threads (tests and graceful shutdown)."""
        for thread in self.background:
            thread.stop()
        self.events.close()

    def live_queues(self) -> set[str]:
        """Queues some live worker consumes (cached for a second: heartbeats change no faster)."""
        return self.cached(
            "live_queues",
            lambda: {queue_name for worker in self.workers.workers() for queue_name in worker.get("queues", [])},
        )

    def queued_jobs(self) -> int:
        """Jobs waiting in all queues, for back-pressure (cached for a second)."""
        return self.cached(
            "queued", lambda: sum(count for (state, _model), count in self.store.counts().items() if state == "queued")
        )

    def cached(self, name: str, compute: Any, ttl_s: float = 1.0) -> Any:
        """``compute()``, remembered for ``ttl_s`` seconds under ``name`` (for values that change no faster than
        heartbeats)."""
        now = time.monotonic()
        hit = self._cache.get(name)
        if hit is not None and now - hit[0] < ttl_s:
            return hit[1]
        value = compute()
        self._cache[name] = (now, value)
        return value

    def record_stage_timings(self, model: str, timings: dict[str, float]) -> None:
        """Count stage durations into histogram buckets that any front end's /metrics can read (one round trip)."""
        try:
            self.stages.record(model, timings)
        except Exception:
            log.warning("could not record stage timings", exc_info=True)
