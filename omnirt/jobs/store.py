"""Where job records live: Redis in a fleet (namespaced keys, a TTL per record), memory in embedded mode.

Both stores have the same methods, and every state change is atomic (a Lua script in Redis, a lock in memory):

* ``create`` records a queued job, or returns the existing one for a reused idempotency key;
* ``claim`` lets a worker start a job: a queued job, or a running job whose worker's heartbeat has expired
  (a re-run); never a job another live worker holds, a terminal job, or one past its attempt budget;
* ``finish`` ends a running job; ``cancel`` ends a queued job or flags a running one;
* ``requeue_if_orphaned`` puts a job whose worker died back in the queue (or fails it) for the reaper.

Redis keys: ``omnirt:job:<id>`` (hash), ``omnirt:jobs`` (all ids by enqueue time), ``omnirt:jobs:queued`` and
``omnirt:jobs:running`` (ids by time), ``omnirt:idem:<key>`` (idempotency), ``omnirt:stats:jobs`` (counts per state
and model), ``omnirt:proc:<worker id>`` (a worker process's heartbeat, written by :mod:`omnirt.workers.heartbeat`).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from omnirt.contracts.types import StageEvent
from omnirt.events.bus import encode, job_event, stream_key
from omnirt.jobs.job import TERMINAL_STATES, Job, JobState, now_ms

PREFIX = "omnirt"


class Claim(enum.StrEnum):
    RUN = "run"  # this worker now holds the job
    SKIP = "skip"  # terminal, cancelled, or held by a live worker: drop the delivery
    EXHAUSTED = "exhausted"  # its worker died too often: the job is now failed


class CancelOutcome(enum.StrEnum):
    CANCELLED = "cancelled"  # was queued, is now cancelled
    REQUESTED = "requested"  # is running; it stops at its next step
    FINISHED = "finished"  # already terminal
    MISSING = "missing"


def job_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def process_key(worker_id: str) -> str:
    return f"{PREFIX}:proc:{worker_id}"


WORKER_LOST = "the worker running this job stopped (heartbeat lost)"


class JobStore(Protocol):
    def create(self, job: Job, *, event: StageEvent | None = None) -> tuple[Job, bool]: ...
    def get(self, job_id: str) -> Job | None: ...
    def list(self, *, state: str | None, model: str | None, limit: int, offset: int) -> tuple[list[Job], int]: ...
    def claim(self, job_id: str, worker_id: str, max_attempts: int) -> tuple[Claim, Job | None]: ...
    def finish(
        self,
        job_id: str,
        state: JobState,
        *,
        result: dict | None = None,
        error: dict | None = None,
        event: StageEvent | None = None,
    ) -> bool: ...
    def cancel(self, job_id: str) -> tuple[CancelOutcome, Job | None]: ...
    def cancel_requested(self, job_id: str) -> bool: ...
    def running(self) -> list[tuple[str, str | None]]: ...
    def requeue_if_orphaned(self, job_id: str, max_attempts: int) -> JobState | None: ...
    def counts(self) -> dict[tuple[str, str], int]: ...
    def oldest_queued_ms(self) -> int | None: ...
    def ping(self) -> None: ...


# -- Redis ------------------------------------------------------------------------------------------------------------

# KEYS[1] job hash, KEYS[2] its event stream; ARGV: prefix, id, idempotency key or '', ttl, enqueued ms, model,
# number of hash items n, stream maxlen, (unused), n hash items, then the first event's fields (if any).
# Returns {1, id} when created, {0, existing id} for a reused id or idempotency key. One round trip.
_CREATE = """
if ARGV[3] ~= '' then
  local holder = redis.call('GET', ARGV[1] .. ':idem:' .. ARGV[3])
  if holder then return {0, holder} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, ARGV[2]} end
local n = tonumber(ARGV[7])
redis.call('HSET', KEYS[1], unpack(ARGV, 10, 9 + n))
redis.call('EXPIRE', KEYS[1], ARGV[4])
if #ARGV > 9 + n then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', unpack(ARGV, 10 + n))
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
if ARGV[3] ~= '' then redis.call('SET', ARGV[1] .. ':idem:' .. ARGV[3], ARGV[2], 'EX', ARGV[4]) end
redis.call('ZADD', ARGV[1] .. ':jobs', ARGV[5], ARGV[2])
redis.call('ZADD', ARGV[1] .. ':jobs:queued', ARGV[5], ARGV[2])
redis.call('HINCRBY', ARGV[1] .. ':stats:jobs', 'queued|' .. ARGV[6], 1)
return {1, ARGV[2]}
"""

# KEYS[1] job hash; ARGV: prefix, worker id, max attempts, now, ttl. Returns {outcome, attempts}.
_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'skip', 0} end
if state ~= 'queued' and state ~= 'running' then return {'skip', 0} end
if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then return {'skip', 0} end
local id = redis.call('HGET', KEYS[1], 'id')
local model = redis.call('HGET', KEYS[1], 'model')
if state == 'running' then
  local holder = redis.call('HGET', KEYS[1], 'worker_id')
  if holder and redis.call('EXISTS', ARGV[1] .. ':proc:' .. holder) == 1 then return {'skip', 0} end
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if attempts >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'state', 'failed', 'finished_at_ms', ARGV[4], 'error', ARGV[6])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('ZREM', ARGV[1] .. ':jobs:running', id)
  redis.call('ZREM', ARGV[1] .. ':jobs:queued', id)
  redis.call('HINCRBY', ARGV[1] .. ':stats:jobs', state .. '|' .. model, -1)
  redis.call('HINCRBY', ARGV[1] .. ':stats:jobs', 'failed|' .. model, 1)
  return {'exhausted', attempts}
end
redis.call('HSET', KEYS[1], 'state', 'running', 'worker_id', ARGV[2], 'started_at_ms', ARGV[4],
           'attempts', attempts + 1)
local record = redis.call('HGETALL', KEYS[1])
redis.call('ZREM', ARGV[1] .. ':jobs:queued', id)
redis.call('ZADD', ARGV[1] .. ':jobs:running', ARGV[4], id)
if state == 'queued' then
  redis.call('HINCRBY', ARGV[1] .. ':stats:jobs', 'queued|' .. model, -1)
  redis.call('HINCRBY', ARGV[1] .. ':stats:jobs', 'running|' .. model, 1)
end
return {'run', attempts + 1, record}
"""

# KEYS[1] job hash, KEYS[2] its event stream; ARGV: prefix, new state, now, ttl, result json or '', error json or '',
# allowed from-states csv, stream maxlen, stream ttl, then the terminal event's fields (if any), appended atomically
# with the state change: a job's record and its terminal event never disagree.
_FINISH = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or not string.find(',' .. ARGV[7] .. ',', ',' .. state .. ',', 1, true) then return 0 end
local id = redis.call('HGET', KEYS[1], 'id')
local model = redis.call('HGET', KEYS[1], 'model')
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'finished_at_ms', ARGV[3])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[6]) end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('ZREM', ARGV[1] .. ':jobs:running', id)
redis.call('ZREM', ARGV[1] .. ':jobs:queued', id)
redis.call('HINCRBY', ARGV[1] .. ':stats:jobs', state .. '|' .. model, -1)
redis.call('HINCRBY', ARGV[1] .. ':stats:jobs', ARGV[2] .. '|' .. model, 1)
if #ARGV > 9 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', unpack(ARGV, 10))
  redis.call('EXPIRE', KEYS[2], ARGV[9])
end
return 1
"""

# KEYS[1] job hash; ARGV: prefix. Returns 'requested' or 'finished' for a running/terminal job, 'queued' otherwise.
_REQUEST_CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'missing' end
if state == 'running' then
  redis.call('HSET', KEYS[1], 'cancel_requested', '1')
  return 'requested'
end
if state == 'queued' then return 'queued' end
return 'finished'
"""

# KEYS[1] job hash; ARGV: prefix, max attempts, now, ttl, error json. Requeue or fail a running job whose
# worker heartbeat is gone. Returns the new state, or '' when nothing changed.
_REQUEUE = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'running' then return '' end
local holder = redis.call('HGET', KEYS[1], 'worker_id')
if holder and redis.call('EXISTS', ARGV[1] .. ':proc:' .. holder) == 1 then return '' end
local id = redis.call('HGET', KEYS[1], 'id')
local model = redis.call('HGET', KEYS[1], 'model')
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
redis.call('ZREM', ARGV[1] .. ':jobs:running', id)
redis.call('HINCRBY', ARGV[1] .. ':stats:jobs', 'running|' .. model, -1)
if attempts >= tonumber(ARGV[2]) or redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then
  local final = 'failed'
  if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then final = 'cancelled' end
  redis.call('HSET', KEYS[1], 'state', final, 'finished_at_ms', ARGV[3], 'error', ARGV[5])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('HINCRBY', ARGV[1] .. ':stats:jobs', final .. '|' .. model, 1)
  return final
end
redis.call('HSET', KEYS[1], 'state', 'queued')
redis.call('HDEL', KEYS[1], 'worker_id')
redis.call('ZADD', ARGV[1] .. ':jobs:queued', ARGV[3], id)
redis.call('HINCRBY', ARGV[1] .. ':stats:jobs', 'queued|' .. model, 1)
return 'queued'
"""


def _error_json(code: str, message: str) -> str:
    import json

    return json.dumps({"code": code, "message": message, "details": {}})


class RedisJobStore:
    def __init__(self, client: Any, *, ttl_s: int, events_maxlen: int = 10_000, events_ttl_s: int = 3600) -> None:
        self.redis = client
        self.ttl_s = ttl_s
        self.events_maxlen = events_maxlen
        self.events_ttl_s = events_ttl_s
        self._create = client.register_script(_CREATE)
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)
        self._request_cancel = client.register_script(_REQUEST_CANCEL)
        self._requeue = client.register_script(_REQUEUE)

    def ping(self) -> None:
        self.redis.ping()

    def create(self, job: Job, *, event: StageEvent | None = None) -> tuple[Job, bool]:
        """Record a queued job and, in the same step, its first event (``job_enqueued``)."""
        fields = [item for pair in job.to_hash().items() for item in pair]
        event_fields = [item for pair in encode(event).items() for item in pair] if event is not None else []
        created, existing_id = self._create(
            keys=[job_key(job.id), stream_key(job.id)],
            args=[
                PREFIX,
                job.id,
                job.idempotency_key or "",
                self.ttl_s,
                job.enqueued_at_ms,
                job.model,
                len(fields),
                self.events_maxlen,
                "",
                *fields,
                *event_fields,
            ],
        )
        if created:
            return job, True
        existing = self.get(existing_id)
        if existing is None:  # the record expired under its idempotency key: start afresh
            self.redis.delete(f"{PREFIX}:idem:{job.idempotency_key}")
            return self.create(job, event=event)
        return existing, False

    def get(self, job_id: str) -> Job | None:
        raw = self.redis.hgetall(job_key(job_id))
        return Job.from_hash(raw) if raw and "state" in raw else None

    def list(self, *, state: str | None, model: str | None, limit: int, offset: int) -> tuple[list[Job], int]:
        """Newest first. Returns (page, total matching before paging)."""
        ids = self.redis.zrevrange(f"{PREFIX}:jobs", 0, -1)
        pipe = self.redis.pipeline()
        for job_id in ids:
            pipe.hgetall(job_key(job_id))
        jobs, expired = [], []
        for job_id, raw in zip(ids, pipe.execute(), strict=True):
            if not raw or "state" not in raw:
                expired.append(job_id)
                continue
            job = Job.from_hash(raw)
            if (state is None or job.state.value == state) and (model is None or job.model == model):
                jobs.append(job)
        if expired:
            self.redis.zrem(f"{PREFIX}:jobs", *expired)
        return jobs[offset : offset + limit], len(jobs)

    def claim(self, job_id: str, worker_id: str, max_attempts: int) -> tuple[Claim, Job | None]:
        reply = self._claim(
            keys=[job_key(job_id)],
            args=[PREFIX, worker_id, max_attempts, now_ms(), self.ttl_s, _error_json("worker_lost", WORKER_LOST)],
        )
        if reply[0] == Claim.RUN.value:  # the script returns the record it just wrote: no second round trip
            flat = reply[2]
            return Claim.RUN, Job.from_hash(dict(zip(flat[::2], flat[1::2], strict=True)))
        return Claim(reply[0]), self.get(job_id)

    def finish(
        self,
        job_id: str,
        state: JobState,
        *,
        result: dict | None = None,
        error: dict | None = None,
        event: StageEvent | None = None,
    ) -> bool:
        """End the job (``cancelled`` from queued or running, the others from running) and append ``event``."""
        import json

        allowed = "queued,running" if state == JobState.CANCELLED else "running"
        fields = [item for pair in encode(event).items() for item in pair] if event is not None else []
        done = self._finish(
            keys=[job_key(job_id), stream_key(job_id)],
            args=[
                PREFIX,
                state.value,
                now_ms(),
                self.ttl_s,
                json.dumps(result) if result is not None else "",
                json.dumps(error) if error is not None else "",
                allowed,
                self.events_maxlen,
                self.events_ttl_s,
                *fields,
            ],
        )
        return bool(done)

    def cancel(self, job_id: str) -> tuple[CancelOutcome, Job | None]:
        outcome = self._request_cancel(keys=[job_key(job_id)], args=[PREFIX])
        if outcome == "queued":
            if self.finish(job_id, JobState.CANCELLED, event=job_event("job_cancelled", job_id=job_id)):
                return CancelOutcome.CANCELLED, self.get(job_id)
            return self.cancel(job_id)  # it started meanwhile: flag it instead
        return CancelOutcome(outcome), self.get(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        return self.redis.hget(job_key(job_id), "cancel_requested") == "1"

    def running(self) -> list[tuple[str, str | None]]:
        ids = self.redis.zrange(f"{PREFIX}:jobs:running", 0, -1)
        pipe = self.redis.pipeline()
        for job_id in ids:
            pipe.hget(job_key(job_id), "worker_id")
        return list(zip(ids, pipe.execute(), strict=True))

    def requeue_if_orphaned(self, job_id: str, max_attempts: int) -> JobState | None:
        outcome = self._requeue(
            keys=[job_key(job_id)],
            args=[PREFIX, max_attempts, now_ms(), self.ttl_s, _error_json("worker_lost", WORKER_LOST)],
        )
        return JobState(outcome) if outcome else None

    def counts(self) -> dict[tuple[str, str], int]:
        raw = self.redis.hgetall(f"{PREFIX}:stats:jobs")
        counts = {}
        for field, value in raw.items():
            state, _, model = field.partition("|")
            counts[(state, model)] = int(value)
        return counts

    def oldest_queued_ms(self) -> int | None:
        oldest = self.redis.zrange(f"{PREFIX}:jobs:queued", 0, 0, withscores=True)
        return int(oldest[0][1]) if oldest else None


# -- Memory -----------------------------------------------------------------------------------------------------------


class MemoryJobStore:
    """The embedded-mode store: the same transitions under one lock. Liveness comes from ``is_alive``."""

    def __init__(self, is_alive: Callable[[str], bool] = lambda _worker: True, events: Any = None) -> None:
        self.events = events  # the MemoryEventBus that terminal events go to
        self._jobs: dict[str, Job] = {}
        self._idempotency: dict[str, str] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self.is_alive = is_alive

    def ping(self) -> None:
        return None

    def _move(self, job: Job, state: JobState, **changes: Any) -> Job:
        old = (job.state.value, job.model)
        self._counts[old] = self._counts.get(old, 0) - 1
        new = (state.value, job.model)
        self._counts[new] = self._counts.get(new, 0) + 1
        updated = replace(job, state=state, **changes)
        self._jobs[job.id] = updated
        return updated

    def create(self, job: Job, *, event: StageEvent | None = None) -> tuple[Job, bool]:
        with self._lock:
            if job.idempotency_key and job.idempotency_key in self._idempotency:
                return self._jobs[self._idempotency[job.idempotency_key]], False
            if job.id in self._jobs:
                return self._jobs[job.id], False
            self._jobs[job.id] = job
            key = (job.state.value, job.model)
            self._counts[key] = self._counts.get(key, 0) + 1
            if job.idempotency_key:
                self._idempotency[job.idempotency_key] = job.id
            if event is not None and self.events is not None:
                self.events.append(job.id, event)
            return job, True

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self, *, state: str | None, model: str | None, limit: int, offset: int) -> tuple[list[Job], int]:
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda job: job.enqueued_at_ms, reverse=True)
        jobs = [
            job for job in jobs if (state is None or job.state.value == state) and (model is None or job.model == model)
        ]
        return jobs[offset : offset + limit], len(jobs)

    def claim(self, job_id: str, worker_id: str, max_attempts: int) -> tuple[Claim, Job | None]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.terminal or job.cancel_requested:
                return Claim.SKIP, job
            if job.state == JobState.RUNNING and job.worker_id and self.is_alive(job.worker_id):
                return Claim.SKIP, job
            if job.attempts >= max_attempts:
                failed = self._move(
                    job,
                    JobState.FAILED,
                    finished_at_ms=now_ms(),
                    error={"code": "worker_lost", "message": WORKER_LOST, "details": {}},
                )
                return Claim.EXHAUSTED, failed
            running = self._move(
                job, JobState.RUNNING, worker_id=worker_id, started_at_ms=now_ms(), attempts=job.attempts + 1
            )
            return Claim.RUN, running

    def finish(
        self,
        job_id: str,
        state: JobState,
        *,
        result: dict | None = None,
        error: dict | None = None,
        event: StageEvent | None = None,
    ) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            allowed = {JobState.QUEUED, JobState.RUNNING} if state == JobState.CANCELLED else {JobState.RUNNING}
            if job is None or job.state not in allowed:
                return False
            self._move(job, state, finished_at_ms=now_ms(), result=result, error=error)
            if event is not None and self.events is not None:
                self.events.append(job_id, event)
            return True

    def cancel(self, job_id: str) -> tuple[CancelOutcome, Job | None]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return CancelOutcome.MISSING, None
            if job.state in TERMINAL_STATES:
                return CancelOutcome.FINISHED, job
            if job.state == JobState.QUEUED:
                cancelled = self._move(job, JobState.CANCELLED, finished_at_ms=now_ms())
                if self.events is not None:
                    self.events.append(job_id, job_event("job_cancelled", job_id=job_id))
                return CancelOutcome.CANCELLED, cancelled
            flagged = replace(job, cancel_requested=True)
            self._jobs[job_id] = flagged
            return CancelOutcome.REQUESTED, flagged

    def cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            return bool(job and job.cancel_requested)

    def running(self) -> list[tuple[str, str | None]]:
        with self._lock:
            return [(job.id, job.worker_id) for job in self._jobs.values() if job.state == JobState.RUNNING]

    def requeue_if_orphaned(self, job_id: str, max_attempts: int) -> JobState | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state != JobState.RUNNING or (job.worker_id and self.is_alive(job.worker_id)):
                return None
            if job.attempts >= max_attempts or job.cancel_requested:
                final = JobState.CANCELLED if job.cancel_requested else JobState.FAILED
                self._move(
                    job,
                    final,
                    finished_at_ms=now_ms(),
                    error={"code": "worker_lost", "message": WORKER_LOST, "details": {}},
                )
                return final
            self._move(job, JobState.QUEUED, worker_id=None)
            return JobState.QUEUED

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def oldest_queued_ms(self) -> int | None:
        with self._lock:
            queued = [job.enqueued_at_ms for job in self._jobs.values() if job.state == JobState.QUEUED]
        return min(queued) if queued else None
