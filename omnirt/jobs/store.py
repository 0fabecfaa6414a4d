"""Where job records live: Redis in a fleet (namespaced keys, a TTL per record), memory in embedded mode.

Both stores have the same methods, and every state change is atomic (a Lua script in Redis, a lock in memory):

* ``create`` records a queued job, or returns the existing one for a reused idempotency key;
* ``claim`` lets a worker start a job: a queued job, or a running job whose worker's heartbeat has expired
  (a re-run); never a job another live worker holds, a terminal job, or one past its attempt budget;
* ``finish`` ends a running job; ``cancel`` ends a queued job or flags a running one;
* ``requeue_if_orphaned`` puts a job whose worker died back in the queue (or fails it) for the reaper;
* ``enter_lobby`` / ``lobby`` / ``leave_lobby`` keep the queued jobs of one batch key (:mod:`omnirt.jobs.batching`)
  where the worker that starts one of them finds the others. The lobby is a hint: a worker still takes each job with
  ``claim``, and drops from the lobby whatever it could not claim.

Redis keys (a job's hash, the job index sets, idempotency keys, the per-state counts; see :mod:`omnirt.keys`) are
touched only by atomic Lua scripts that get every key through ``KEYS``.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from omnirt import keys
from omnirt.contracts.types import StageEvent
from omnirt.events.bus import encode, job_event
from omnirt.jobs.job import TERMINAL_STATES, Job, JobState, now_ms


class Claim(enum.StrEnum):
    RUN = "run"  # this worker now holds the job
    SKIP = "skip"  # terminal, cancelled, or held by a live worker: drop the delivery
    EXHAUSTED = "exhausted"  # its worker died too often: the job is now failed


class CancelOutcome(enum.StrEnum):
    CANCELLED = "cancelled"  # was queued, is now cancelled
    REQUESTED = "requested"  # is running; it stops at its next step
    FINISHED = "finished"  # already terminal
    MISSING = "missing"


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
    def requeue_if_orphaned(self, job_id: str, max_attempts: int, *, holder: str | None = None) -> JobState | None: ...
    def counts(self) -> dict[tuple[str, str], int]: ...
    def oldest_queued_ms(self) -> int | None: ...
    def enter_lobby(self, batch_key: str, job_id: str, enqueued_at_ms: int) -> None: ...
    def lobby(self, batch_key: str, limit: int) -> list[str]: ...
    def leave_lobby(self, batch_key: str, job_ids: list[str]) -> None: ...
    def ping(self) -> None: ...


# -- Redis ------------------------------------------------------------------------------------------------------------
#
# Every key a script touches comes in KEYS (built by omnirt.keys); a job's holder is read from its record, so a script
# that must check the holder's heartbeat is called with the process key of the holder the caller expects, and answers
# {'holder', <actual holder>} when that guess was wrong (the caller calls again with the right key).

# KEYS: job hash, its event stream, all jobs, queued jobs, job counts, [the idempotency key]. ARGV: id, ttl, enqueued
# ms, model, number of hash items n, stream maxlen, n hash items, then the first event's fields (if any).
# Returns {1, id} when created, {0, existing id} for a reused id or idempotency key. One round trip.
_CREATE = """
if #KEYS >= 6 then
  local holder = redis.call('GET', KEYS[6])
  if holder then return {0, holder} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, ARGV[1]} end
local n = tonumber(ARGV[5])
redis.call('HSET', KEYS[1], unpack(ARGV, 7, 6 + n))
redis.call('EXPIRE', KEYS[1], ARGV[2])
if #ARGV > 6 + n then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', unpack(ARGV, 7 + n))
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
if #KEYS >= 6 then redis.call('SET', KEYS[6], ARGV[1], 'EX', ARGV[2]) end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('HINCRBY', KEYS[5], 'queued|' .. ARGV[4], 1)
return {1, ARGV[1]}
"""

# KEYS: job hash, queued jobs, running jobs, job counts, [the expected holder's heartbeat]. ARGV: worker id, max
# attempts, now, ttl, error json, expected holder or ''. Returns {outcome, attempts[, record]} or {'holder', 0, holder}.
_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'skip', 0} end
if state ~= 'queued' and state ~= 'running' then return {'skip', 0} end
if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then return {'skip', 0} end
local id = redis.call('HGET', KEYS[1], 'id')
local model = redis.call('HGET', KEYS[1], 'model')
if state == 'running' then
  local holder = redis.call('HGET', KEYS[1], 'worker_id')
  if holder then
    if holder ~= ARGV[6] or #KEYS < 5 then return {'holder', 0, holder} end
    if redis.call('EXISTS', KEYS[5]) == 1 then return {'skip', 0} end
  end
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if attempts >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'state', 'failed', 'finished_at_ms', ARGV[3], 'error', ARGV[5])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HINCRBY', KEYS[4], state .. '|' .. model, -1)
  redis.call('HINCRBY', KEYS[4], 'failed|' .. model, 1)
  return {'exhausted', attempts}
end
redis.call('HSET', KEYS[1], 'state', 'running', 'worker_id', ARGV[1], 'started_at_ms', ARGV[3],
           'attempts', attempts + 1)
local record = redis.call('HGETALL', KEYS[1])
redis.call('ZREM', KEYS[2], id)
redis.call('ZADD', KEYS[3], ARGV[3], id)
if state == 'queued' then
  redis.call('HINCRBY', KEYS[4], 'queued|' .. model, -1)
  redis.call('HINCRBY', KEYS[4], 'running|' .. model, 1)
end
return {'run', attempts + 1, record}
"""

# KEYS: job hash, its event stream, running jobs, queued jobs, job counts. ARGV: new state, now, ttl, result json or
# '', error json or '', allowed from-states csv, stream maxlen, stream ttl, then the terminal event's fields (if any),
# appended atomically with the state change: a job's record and its terminal event never disagree.
_FINISH = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or not string.find(',' .. ARGV[6] .. ',', ',' .. state .. ',', 1, true) then return 0 end
local id = redis.call('HGET', KEYS[1], 'id')
local model = redis.call('HGET', KEYS[1], 'model')
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'finished_at_ms', ARGV[2])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[5]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
redis.call('HINCRBY', KEYS[5], state .. '|' .. model, -1)
redis.call('HINCRBY', KEYS[5], ARGV[1] .. '|' .. model, 1)
if #ARGV > 8 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', unpack(ARGV, 9))
  redis.call('EXPIRE', KEYS[2], ARGV[8])
end
return 1
"""

# KEYS: job hash. Returns 'requested' or 'finished' for a running/terminal job, 'queued' otherwise.
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

# KEYS: job hash, running jobs, queued jobs, job counts, [the expected holder's heartbeat]. ARGV: max attempts, now,
# ttl, error json, expected holder or ''. Requeue or fail a running job whose worker heartbeat is gone. Returns the
# new state, '' when nothing changed, or {'holder', holder} when the expected holder was wrong.
_REQUEUE = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'running' then return '' end
local holder = redis.call('HGET', KEYS[1], 'worker_id')
if holder then
  if holder ~= ARGV[5] or #KEYS < 5 then return {'holder', holder} end
  if redis.call('EXISTS', KEYS[5]) == 1 then return '' end
end
local id = redis.call('HGET', KEYS[1], 'id')
local model = redis.call('HGET', KEYS[1], 'model')
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
redis.call('ZREM', KEYS[2], id)
redis.call('HINCRBY', KEYS[4], 'running|' .. model, -1)
if attempts >= tonumber(ARGV[1]) or redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then
  local final = 'failed'
  if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then final = 'cancelled' end
  redis.call('HSET', KEYS[1], 'state', final, 'finished_at_ms', ARGV[2], 'error', ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  redis.call('HINCRBY', KEYS[4], final .. '|' .. model, 1)
  return final
end
redis.call('HSET', KEYS[1], 'state', 'queued')
redis.call('HDEL', KEYS[1], 'worker_id')
redis.call('ZADD', KEYS[3], ARGV[2], id)
redis.call('HINCRBY', KEYS[4], 'queued|' .. model, 1)
return 'queued'
"""

#: How often a script is called again when a job's holder changed between the guess and the call.
_HOLDER_TRIES = 4


def _error_json(code: str, message: str) -> str:
    import json

    return json.dumps({"code": code, "message": message, "details": {}})


def _with_holder(base: list[str], holder: str) -> list[str]:
    """``base`` keys, plus the heartbeat key of ``holder`` when one is expected."""
    return [*base, keys.process(holder)] if holder else base


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
        script_keys = [keys.job(job.id), keys.job_events(job.id), keys.jobs(), keys.jobs_queued(), keys.job_stats()]
        if job.idempotency_key:
            script_keys.append(keys.idempotency(job.idempotency_key))
        created, existing_id = self._create(
            keys=script_keys,
            args=[
                job.id,
                self.ttl_s,
                job.enqueued_at_ms,
                job.model,
                len(fields),
                self.events_maxlen,
                *fields,
                *event_fields,
            ],
        )
        if created:
            return job, True
        existing = self.get(existing_id)
        if existing is None:  # the record expired under its idempotency key: start afresh
            self.redis.delete(keys.idempotency(job.idempotency_key or ""))
            return self.create(job, event=event)
        return existing, False

    def get(self, job_id: str) -> Job | None:
        raw = self.redis.hgetall(keys.job(job_id))
        return Job.from_hash(raw) if raw and "state" in raw else None

    def list(self, *, state: str | None, model: str | None, limit: int, offset: int) -> tuple[list[Job], int]:
        """Newest first. Returns (page, total matching before paging)."""
        ids = self.redis.zrevrange(keys.jobs(), 0, -1)
        pipe = self.redis.pipeline()
        for job_id in ids:
            pipe.hgetall(keys.job(job_id))
        jobs, expired = [], []
        for job_id, raw in zip(ids, pipe.execute(), strict=True):
            if not raw or "state" not in raw:
                expired.append(job_id)
                continue
            job = Job.from_hash(raw)
            if (state is None or job.state.value == state) and (model is None or job.model == model):
                jobs.append(job)
        if expired:
            self.redis.zrem(keys.jobs(), *expired)
        return jobs[offset : offset + limit], len(jobs)

    def claim(self, job_id: str, worker_id: str, max_attempts: int) -> tuple[Claim, Job | None]:
        base = [keys.job(job_id), keys.jobs_queued(), keys.jobs_running(), keys.job_stats()]
        holder = ""
        for _ in range(_HOLDER_TRIES):
            reply = self._claim(
                keys=_with_holder(base, holder),
                args=[worker_id, max_attempts, now_ms(), self.ttl_s, _error_json("worker_lost", WORKER_LOST), holder],
            )
            if reply[0] != "holder":
                break
            holder = reply[2]
        else:
            return Claim.SKIP, self.get(job_id)  # its holder keeps changing: someone else is on it
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
            keys=[keys.job(job_id), keys.job_events(job_id), keys.jobs_running(), keys.jobs_queued(), keys.job_stats()],
            args=[
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
        outcome = self._request_cancel(keys=[keys.job(job_id)])
        if outcome == "queued":
            if self.finish(job_id, JobState.CANCELLED, event=job_event("job_cancelled", job_id=job_id)):
                return CancelOutcome.CANCELLED, self.get(job_id)
            return self.cancel(job_id)  # it started meanwhile: flag it instead
        return CancelOutcome(outcome), self.get(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        return self.redis.hget(keys.job(job_id), "cancel_requested") == "1"

    def running(self) -> list[tuple[str, str | None]]:
        ids = self.redis.zrange(keys.jobs_running(), 0, -1)
        pipe = self.redis.pipeline()
        for job_id in ids:
            pipe.hget(keys.job(job_id), "worker_id")
        return list(zip(ids, pipe.execute(), strict=True))

    def requeue_if_orphaned(self, job_id: str, max_attempts: int, *, holder: str | None = None) -> JobState | None:
        """``holder``: the worker the caller saw running the job (saves a round trip when right)."""
        base = [keys.job(job_id), keys.jobs_running(), keys.jobs_queued(), keys.job_stats()]
        expected = holder or ""
        for _ in range(_HOLDER_TRIES):
            outcome = self._requeue(
                keys=_with_holder(base, expected),
                args=[max_attempts, now_ms(), self.ttl_s, _error_json("worker_lost", WORKER_LOST), expected],
            )
            if not isinstance(outcome, list):
                return JobState(outcome) if outcome else None
            expected = outcome[1]
        return None

    def counts(self) -> dict[tuple[str, str], int]:
        raw = self.redis.hgetall(keys.job_stats())
        counts = {}
        for field, value in raw.items():
            state, _, model = field.partition("|")
            counts[(state, model)] = int(value)
        return counts

    def oldest_queued_ms(self) -> int | None:
        oldest = self.redis.zrange(keys.jobs_queued(), 0, 0, withscores=True)
        return int(oldest[0][1]) if oldest else None

    def enter_lobby(self, batch_key: str, job_id: str, enqueued_at_ms: int) -> None:
        """Offer queued ``job_id`` to the batches of ``batch_key`` (the lobby lives as long as a job record)."""
        pipe = self.redis.pipeline()
        pipe.zadd(keys.batch_lobby(batch_key), {job_id: enqueued_at_ms})
        pipe.expire(keys.batch_lobby(batch_key), self.ttl_s)
        pipe.execute()

    def lobby(self, batch_key: str, limit: int) -> list[str]:
        """Up to ``limit`` job ids of the ``batch_key`` lobby, oldest first."""
        return list(self.redis.zrange(keys.batch_lobby(batch_key), 0, max(0, limit - 1))) if limit > 0 else []

    def leave_lobby(self, batch_key: str, job_ids: list[str]) -> None:
        if job_ids:
            self.redis.zrem(keys.batch_lobby(batch_key), *job_ids)


# -- Memory -----------------------------------------------------------------------------------------------------------


class MemoryJobStore:
    """The embedded-mode store: the same transitions under one lock. Liveness comes from ``is_alive``."""

    def __init__(self, is_alive: Callable[[str], bool] = lambda _worker: True, events: Any = None) -> None:
        self.events = events  # the MemoryEventBus that terminal events go to
        self._jobs: dict[str, Job] = {}
        self._idempotency: dict[str, str] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._lobbies: dict[str, dict[str, int]] = {}
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
        if job.batch_key and state != JobState.QUEUED:  # only queued jobs wait in a lobby
            self._drop_from_lobby(job.batch_key, [job.id])
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

    def requeue_if_orphaned(self, job_id: str, max_attempts: int, *, holder: str | None = None) -> JobState | None:
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

    def enter_lobby(self, batch_key: str, job_id: str, enqueued_at_ms: int) -> None:
        with self._lock:
            self._lobbies.setdefault(batch_key, {})[job_id] = enqueued_at_ms

    def lobby(self, batch_key: str, limit: int) -> list[str]:
        with self._lock:
            members = self._lobbies.get(batch_key, {})
            return sorted(members, key=lambda job_id: (members[job_id], job_id))[: max(0, limit)]

    def leave_lobby(self, batch_key: str, job_ids: list[str]) -> None:
        with self._lock:
            self._drop_from_lobby(batch_key, job_ids)

    def _drop_from_lobby(self, batch_key: str, job_ids: list[str]) -> None:
        """Remove ``job_ids`` from the ``batch_key`` lobby, and the lobby once empty (the caller holds the lock)."""
        members = self._lobbies.get(batch_key)
        if members is None:
            return
        for job_id in job_ids:
            members.pop(job_id, None)
        if not members:
            del self._lobbies[batch_key]
