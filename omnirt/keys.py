"""Every Redis key OmniRT uses, built and parsed here and nowhere else.

All keys live under one prefix (``omnirt``), so a shared Redis can tell them apart and an operator can find them:

====================================  =========  ================================================================
key                                   type       what it holds
====================================  =========  ================================================================
``omnirt:job:<id>``                   hash       a job record (:mod:`omnirt.jobs.store`), with a TTL
``omnirt:job:<id>:events``            stream     a job's events (:mod:`omnirt.events.bus`), ``MAXLEN ~``, a TTL
``omnirt:jobs``                       zset       every job id by enqueue time (listing)
``omnirt:jobs:queued``                zset       queued job ids by enqueue time (oldest queued job)
``omnirt:jobs:running``               zset       running job ids by start time (the reaper's sweep)
``omnirt:idem:<key>``                 string     the job id an idempotency key names, with the job's TTL
``omnirt:stats:jobs``                 hash       ``<state>|<model>`` -> jobs in that state (``/metrics``)
``omnirt:stats:stages``               hash       ``<stage>|<model>|<sum|count|in_<bound>>`` stage histograms
``omnirt:proc:<worker id>``           string     a worker process's heartbeat (JSON), with a TTL
``omnirt:workers``                    zset       worker ids by heartbeat expiry (listing without a scan)
``omnirt:session:<id>``               hash       a realtime session's lease record
``omnirt:session:<id>:in`` / ``:out`` stream     a session's media, API to worker and back
``omnirt:sessions:queued:<queue>``    list       session ids offered to the workers of a Celery queue
``omnirt:avatars``                    hash       avatar id -> its metadata (JSON), the avatar store's index
``omnirt:relay:<token>``              stream     a front-end process's wake-up stream for its event relay
``omnirt:bench:hop:<ns>``             stream     ``omnirt bench dispatch``'s raw Redis hop, deleted after
``omnirt:batch:<batch key>``          zset       queued job ids that may run as one batch, by enqueue time (a TTL)
====================================  =========  ================================================================

Celery's queues are Redis lists named after the queues themselves (``omnirt.<tier>.<device>``, see
:mod:`omnirt.tasks.routing`); Celery owns those keys. Lua scripts get every key they touch through ``KEYS``, built
by these functions; no script builds a key.
"""

from __future__ import annotations

PREFIX = "omnirt"


def job(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def job_events(job_id: str) -> str:
    return f"{job(job_id)}:events"


def job_of_events(key: str) -> str:
    """The job id of a :func:`job_events` key."""
    head, events = f"{PREFIX}:job:", ":events"
    if not (key.startswith(head) and key.endswith(events)):
        raise ValueError(f"not a job event stream key: {key!r}")
    return key[len(head) : -len(events)]


def jobs() -> str:
    return f"{PREFIX}:jobs"


def jobs_queued() -> str:
    return f"{PREFIX}:jobs:queued"


def jobs_running() -> str:
    return f"{PREFIX}:jobs:running"


def idempotency(key: str) -> str:
    return f"{PREFIX}:idem:{key}"


def job_stats() -> str:
    return f"{PREFIX}:stats:jobs"


def stage_stats() -> str:
    return f"{PREFIX}:stats:stages"


def process(worker_id: str) -> str:
    return f"{PREFIX}:proc:{worker_id}"


def workers() -> str:
    return f"{PREFIX}:workers"


def session(session_id: str) -> str:
    return f"{PREFIX}:session:{session_id}"


def session_stream(session_id: str, direction: str) -> str:
    """One direction (``in``: API to worker, ``out``: worker to API) of a session's media."""
    if direction not in ("in", "out"):
        raise ValueError(f"session direction must be 'in' or 'out', got {direction!r}")
    return f"{session(session_id)}:{direction}"


def session_queue(queue_name: str) -> str:
    """The list of session ids offered to the workers of ``queue_name`` (outside ``omnirt:session:*``)."""
    return f"{PREFIX}:sessions:queued:{queue_name}"


def queue_of_session_queue(key: str) -> str:
    """The Celery queue name of a :func:`session_queue` key."""
    head = session_queue("")
    if not key.startswith(head):
        raise ValueError(f"not a session queue key: {key!r}")
    return key[len(head) :]


def avatars() -> str:
    return f"{PREFIX}:avatars"


def relay_control(token: str) -> str:
    return f"{PREFIX}:relay:{token}"


def bench_hop(stamp: int) -> str:
    return f"{PREFIX}:bench:hop:{stamp}"


def batch_lobby(batch_key: str) -> str:
    """The queued jobs of one batch key (:mod:`omnirt.jobs.batching`), which a worker may run with the one it starts."""
    return f"{PREFIX}:batch:{batch_key}"
