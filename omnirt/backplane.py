"""The services a process shares with the rest of the fleet: job store, event bus, worker registry, dispatcher.

In a fleet (a Redis URL is configured) they are Redis-backed and the dispatcher sends Celery tasks; embedded (no
Redis URL) they live in memory and the dispatcher hands jobs to worker threads in this process. Everything above
this module (the API, the executor) is the same in both modes.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from typing import Any, Protocol

from omnirt.avatars.store import AvatarIndex, AvatarStore
from omnirt.events.bus import EventBus, MemoryEventBus, RedisEventBus
from omnirt.events.channels import MemorySessionChannels, RedisSessionChannels, SessionChannels
from omnirt.jobs.job import Job
from omnirt.jobs.store import JobStore, MemoryJobStore, RedisJobStore
from omnirt.settings import Settings
from omnirt.workers.heartbeat import MemoryWorkerRegistry, RedisWorkerRegistry, WorkerRegistry

log = logging.getLogger(__name__)

STAGE_BUCKETS_MS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000)


class Dispatcher(Protocol):
    def dispatch(self, job: Job) -> None: ...
    def revoke(self, job: Job) -> None: ...
    def start_session(self, session_id: str, model: str, queue_name: str) -> None: ...


HARD_LIMIT_GRACE_S = 30.0  # from a task's soft time limit to its hard one (the child process is ended)


REDIS_POOL_WAIT_S = 10.0  # how long a request waits for a pooled Redis connection before store_unavailable


def redis_client(settings: Settings, **options: Any) -> Any:
    """A Redis client whose pool waits for a free connection (``OMNIRT_REDIS_MAX_CONNECTIONS``) instead of failing:
    an event-driven front end may hold a connection per open stream, and a burst of streams must queue, not 503."""
    import redis

    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=settings.redis_max_connections, timeout=REDIS_POOL_WAIT_S, **options
    )
    return redis.Redis(connection_pool=pool)


class CeleryDispatcher:
    """Sends ``omnirt.generate`` by name (the API never imports the task code), carrying the job id only. Sessions
    are no Celery tasks: they are offered on the queue's session list, which every worker process takes from beside
    its job slot (:class:`omnirt.workers.sessions.SessionConsumer`), so they never wait behind jobs."""

    def __init__(
        self, celery_app: Any, limits: dict[str, float] | None = None, sessions: RedisSessionChannels | None = None
    ) -> None:
        self.celery = celery_app
        self.limits = dict(limits or {})
        self.sessions = sessions

    @staticmethod
    def task_id(job: Job) -> str:
        return f"{job.id}.{job.attempts}"

    def dispatch(self, job: Job) -> None:
        """Send the job's task, with soft and hard time limits from its model's ``time_limit_s``: the soft limit
        fails the job with ``timeout`` where it never reaches a step; the hard one, a little later, ends the child."""
        from omnirt.registry.limits import job_time_limit_s

        kwargs = {"model": job.model, "task": job.task}
        limit = job_time_limit_s(job.model, job.task, self.limits)
        self.celery.send_task(
            "omnirt.generate",
            args=[job.id],
            kwargs=kwargs,
            queue=job.queue,
            task_id=self.task_id(job),
            argsrepr=repr([job.id]),
            kwargsrepr=repr(kwargs),
            soft_time_limit=limit,
            time_limit=limit + HARD_LIMIT_GRACE_S,
        )

    def revoke(self, job: Job) -> None:
        self.celery.control.revoke(self.task_id(job))

    def start_session(self, session_id: str, model: str, queue_name: str) -> None:
        """Offer the pending session to the workers of ``queue_name``; the front end's admission deadline answers
        ``no_capacity`` when none takes it."""
        if self.sessions is None:
            raise RuntimeError("CeleryDispatcher needs the session channels to start sessions")
        self.sessions.offer(session_id, queue_name)


class EmbeddedDispatcher:
    """In-process worker threads fed from a queue: the embedded stand-in for Celery and Redis."""

    def __init__(self, backplane: Backplane, workers: int) -> None:
        self.backplane = backplane
        self.jobs: queue.Queue[str] = queue.Queue()
        self.worker_ids = [f"embedded:{socket.gethostname()}:{os.getpid()}:{index}" for index in range(workers)]
        self._threads = [
            threading.Thread(target=self._work, args=(worker_id,), name=f"omnirt-{worker_id}", daemon=True)
            for worker_id in self.worker_ids
        ]
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        from omnirt.avatars.scheduler import set_frame_lanes
        from omnirt.runtime.engine import get_default_engine
        from omnirt.tasks.routing import all_tier_queues
        from omnirt.workers.heartbeat import Heartbeat
        from omnirt.workers.reaper import Reaper

        with self._lock:
            if self._started:
                return
            settings = self.backplane.settings
            get_default_engine().configure(settings)
            set_frame_lanes(settings.lanes())
            for worker_id in self.worker_ids:
                heartbeat = Heartbeat(
                    self.backplane.workers,
                    worker_id,
                    lambda: {"mode": "embedded", "device": "auto", "queues": all_tier_queues(), "pid": os.getpid()},
                    interval_s=settings.heartbeat_interval_s,
                    ttl_s=settings.heartbeat_ttl_s,
                ).start()
                self.backplane.background.append(heartbeat)
            for thread in self._threads:
                thread.start()
            self.backplane.background.append(Reaper(self.backplane).start())
            self._started = True

    def dispatch(self, job: Job) -> None:
        self.start()
        self.jobs.put(job.id)

    def revoke(self, job: Job) -> None:
        """A queued embedded job is skipped when a thread takes it: its record already says cancelled."""

    def start_session(self, session_id: str, model: str, queue_name: str) -> None:
        """Run the session in this process's session host (the embedded worker id holds the lease)."""
        from omnirt.runtime.engine import get_default_engine
        from omnirt.workers.sessions import get_session_host

        self.start()
        get_session_host().try_start(
            session_id, backplane=self.backplane, engine=get_default_engine(), worker_id=self.worker_ids[0]
        )

    def _work(self, worker_id: str) -> None:
        from omnirt.runtime.engine import get_default_engine
        from omnirt.workers.executor import execute_job

        while True:
            job_id = self.jobs.get()
            try:
                execute_job(job_id, backplane=self.backplane, engine=get_default_engine(), worker_id=worker_id)
            except Exception:
                log.exception("embedded worker failed on job %s", job_id)


class Backplane:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.background: list[Any] = []  # threads with a stop(): reapers, heartbeats
        self._cache: dict[str, tuple[float, Any]] = {}
        self.redis: Any = None
        self.store: JobStore
        self.events: EventBus
        self.workers: WorkerRegistry
        self.dispatcher: Dispatcher
        self.sessions: SessionChannels
        self.avatars: AvatarStore
        if settings.embedded:
            self.workers = MemoryWorkerRegistry()
            self.events = MemoryEventBus(ttl_s=settings.events_ttl_s)
            self.store = MemoryJobStore(is_alive=self.workers.alive, events=self.events)
            self.sessions = MemorySessionChannels()
            self.dispatcher = EmbeddedDispatcher(self, settings.embedded_workers)
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
            sessions = RedisSessionChannels(settings.redis_url)
            self.sessions = sessions
            self.store = RedisJobStore(
                self.redis,
                ttl_s=settings.job_ttl_s,
                events_maxlen=settings.events_maxlen,
                events_ttl_s=settings.events_ttl_s,
            )
            self.events = RedisEventBus(
                relay_client, maxlen=settings.events_maxlen, ttl_s=settings.events_ttl_s, job_ttl_s=settings.job_ttl_s
            )
            from omnirt.tasks.app import make_celery

            self.dispatcher = CeleryDispatcher(make_celery(settings), settings.limits, sessions)
            self._record_stages = self.redis.register_script(_RECORD_STAGES)
        self.avatars = AvatarStore(
            settings.avatar_root, AvatarIndex(self.redis), max_video_bytes=settings.max_avatar_video_bytes
        )

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
        if self.redis is None:
            from omnirt.telemetry.metrics import observe_stage_locally

            observe_stage_locally(model, timings)
            return
        args = [model, *(item for key, value in timings.items() for item in (key.removesuffix("_ms"), value))]
        try:
            self._record_stages(args=args)
        except Exception:
            log.warning("could not record stage timings", exc_info=True)


# ARGV: model, then stage, milliseconds pairs. Per stage: the sum, the count, and the one bucket the value falls in
# (the scrape makes them cumulative).
_RECORD_STAGES = """
local bounds = {BOUNDS}
for i = 2, #ARGV, 2 do
  local key = 'omnirt:stats:stage:' .. ARGV[i] .. '|' .. ARGV[1]
  local value = tonumber(ARGV[i + 1])
  redis.call('HINCRBYFLOAT', key, 'sum', value)
  redis.call('HINCRBY', key, 'count', 1)
  for _, bound in ipairs(bounds) do
    if value <= bound then
      redis.call('HINCRBY', key, 'in_' .. bound, 1)
      break
    end
  end
end
return 1
""".replace("BOUNDS", ", ".join(str(bound) for bound in STAGE_BUCKETS_MS))


_BACKPLANE: Backplane | None = None
_LOCK = threading.Lock()


def get_backplane(settings: Settings | None = None) -> Backplane:
    """This process's backplane, built on first use from ``settings`` (default: the environment)."""
    global _BACKPLANE
    with _LOCK:
        if _BACKPLANE is None or (settings is not None and settings is not _BACKPLANE.settings):
            _BACKPLANE = Backplane(settings or Settings.from_env())
        return _BACKPLANE
