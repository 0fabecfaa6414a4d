"""Realtime session channels: the two-way media path of an avatar session, and the lease record that admits it.

A session has an inbound channel (API to worker: audio chunks and control) and an outbound one (worker to API:
``VIDX`` video, metrics, acknowledgements, errors). In a fleet each is a Redis Stream of raw bytes
(:func:`omnirt.keys.session_stream`, short ``MAXLEN``, expiring with the session); embedded they are queues.
The lease record (:func:`omnirt.keys.session`) says who holds the session: a worker may claim it only while it is
``pending``, so a session the API gave up on (no capacity in time) is never started late.

A session that is over is ended (:meth:`SessionChannels.end`, by the worker when its loop stops and by the API when it
lets the lease go; either may come first, and twice is harmless): embedded, its record and queues are dropped at once
(readers already handed out keep the messages they hold); in Redis, its keys expire ``CLOSED_TTL_S`` later, long
enough for the other side to read the last messages.

Session queues (fleet only): the front end offers a new session to the workers of a Celery queue by pushing its id on
that queue's session list (:func:`omnirt.keys.session_queue`); each worker process's
session consumer blocks on the lists of its queues, and puts back (:meth:`RedisSessionChannels.put_back`) an id it
cannot take. Sessions never wait behind jobs: the lists are not Celery queues.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from omnirt import keys

SESSION_TTL_S = 6 * 3600
CLOSED_TTL_S = 60


@dataclass
class Message:
    kind: str
    meta: dict[str, Any] = field(default_factory=dict)
    data: bytes = b""


class SessionChannels(Protocol):
    def create(self, session_id: str, record: dict[str, Any]) -> None: ...
    def claim(self, session_id: str, worker_id: str) -> dict[str, Any] | None: ...
    def record(self, session_id: str) -> dict[str, Any] | None: ...
    def set_state(self, session_id: str, state: str) -> None: ...
    def abandon(self, session_id: str) -> bool: ...
    def send(self, session_id: str, direction: str, message: Message) -> None: ...
    def reader(self, session_id: str, direction: str) -> Any: ...
    def end(self, session_id: str) -> None: ...


# -- Redis ------------------------------------------------------------------------------------------------------------

_ABANDON = """
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'abandoned')
return 1
"""

_CLAIM = """
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return nil end
redis.call('HSET', KEYS[1], 'state', 'active', 'worker_id', ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""


class RedisReader:
    """Reads one direction of one session, in order, blocking up to ``timeout``."""

    def __init__(self, client: Any, key: str) -> None:
        self.client, self.key, self.cursor = client, key, "0-0"
        self.pending: list[Message] = []

    def get(self, timeout: float) -> Message | None:
        if not self.pending:
            reply = self.client.xread({self.key: self.cursor}, block=max(1, int(timeout * 1000)), count=16)
            for _key, entries in reply or []:
                for entry_id, fields in entries:
                    self.cursor = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    self.pending.append(
                        Message(fields[b"kind"].decode(), json.loads(fields[b"meta"]), fields.get(b"data", b""))
                    )
        return self.pending.pop(0) if self.pending else None


class RedisSessionChannels:
    def __init__(self, url: str) -> None:
        import redis

        # Binary payloads: a client without response decoding, and generous timeouts for blocking reads.
        self.redis = redis.Redis.from_url(url, decode_responses=False, socket_connect_timeout=2)
        self._claim = self.redis.register_script(_CLAIM)
        self._abandon = self.redis.register_script(_ABANDON)

    def abandon(self, session_id: str) -> bool:
        """Give up a session no worker has claimed yet; False when a worker got it first."""
        return bool(self._abandon(keys=[keys.session(session_id)]))

    def create(self, session_id: str, record: dict[str, Any]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(
            keys.session(session_id),
            mapping={
                key: json.dumps(value) if not isinstance(value, str) else value
                for key, value in {**record, "state": "pending"}.items()
            },
        )
        pipe.expire(keys.session(session_id), SESSION_TTL_S)
        pipe.execute()

    def claim(self, session_id: str, worker_id: str) -> dict[str, Any] | None:
        flat = self._claim(keys=[keys.session(session_id)], args=[worker_id])
        if not flat:
            return None
        return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}

    def record(self, session_id: str) -> dict[str, Any] | None:
        raw = self.redis.hgetall(keys.session(session_id))
        return {key.decode(): value.decode() for key, value in raw.items()} if raw else None

    def set_state(self, session_id: str, state: str) -> None:
        self.redis.hset(keys.session(session_id), "state", state)

    def send(self, session_id: str, direction: str, message: Message) -> None:
        key = keys.session_stream(session_id, direction)
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(
            key,
            {"kind": message.kind, "meta": json.dumps(message.meta), "data": message.data},
            maxlen=64,
            approximate=True,
        )
        pipe.expire(key, SESSION_TTL_S)
        pipe.execute()

    def reader(self, session_id: str, direction: str) -> RedisReader:
        return RedisReader(self.redis, keys.session_stream(session_id, direction))

    def offer(self, session_id: str, queue_name: str) -> None:
        """Offer a pending session to the workers of ``queue_name`` (the oldest offer is taken first)."""
        key = keys.session_queue(queue_name)
        pipe = self.redis.pipeline(transaction=False)
        pipe.lpush(key, session_id)
        pipe.expire(key, SESSION_TTL_S)  # ids nobody takes (no worker on the queue) do not stay for ever
        pipe.execute()

    def take(self, queue_names: list[str], timeout_s: float) -> tuple[str, str] | None:
        """The oldest session offered on any of ``queue_names`` (earlier names first) as ``(queue, session_id)``,
        waiting up to ``timeout_s``; None when none came."""
        if not queue_names:
            return None
        reply = self.redis.brpop([keys.session_queue(name) for name in queue_names], timeout=max(0.01, timeout_s))
        if reply is None:
            return None
        key, session_id = (item.decode() for item in reply)
        return keys.queue_of_session_queue(key), session_id

    def put_back(self, session_id: str, queue_name: str) -> None:
        """Offer again a session this worker could not take, behind the others waiting, for another worker."""
        self.offer(session_id, queue_name)

    def offered(self, queue_name: str) -> list[str]:
        """The session ids waiting on ``queue_name``, oldest first (tests and diagnostics)."""
        return [item.decode() for item in reversed(self.redis.lrange(keys.session_queue(queue_name), 0, -1))]

    def end(self, session_id: str) -> None:
        """The session is over: mark it closed and let its record and streams expire shortly."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(keys.session(session_id), "state", "closed")
        for key in (
            keys.session(session_id),
            keys.session_stream(session_id, "in"),
            keys.session_stream(session_id, "out"),
        ):
            pipe.expire(key, CLOSED_TTL_S)
        pipe.execute()


# -- Memory -----------------------------------------------------------------------------------------------------------


class MemoryReader:
    def __init__(self, messages: queue.Queue) -> None:
        self.messages = messages

    def get(self, timeout: float) -> Message | None:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None


class MemorySessionChannels:
    """Embedded sessions: records and queues in this process, dropped when the session ends."""

    def __init__(self) -> None:
        self._records: dict[str, dict[str, Any]] = {}
        self._queues: dict[tuple[str, str], queue.Queue] = {}
        self._lock = threading.Lock()

    def create(self, session_id: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._records[session_id] = {
                **{key: json.dumps(value) if not isinstance(value, str) else value for key, value in record.items()},
                "state": "pending",
                "created": str(time.time()),
            }
            for direction in ("in", "out"):
                self._queues.setdefault((session_id, direction), queue.Queue())

    def claim(self, session_id: str, worker_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._records.get(session_id)
            if record is None or record["state"] != "pending":
                return None
            record.update(state="active", worker_id=worker_id)
            return dict(record)

    def record(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._records.get(session_id)
            return dict(record) if record else None

    def set_state(self, session_id: str, state: str) -> None:
        with self._lock:
            if session_id in self._records:
                self._records[session_id]["state"] = state

    def abandon(self, session_id: str) -> bool:
        with self._lock:
            record = self._records.get(session_id)
            if record is None or record["state"] != "pending":
                return False
            record["state"] = "abandoned"
            return True

    def send(self, session_id: str, direction: str, message: Message) -> None:
        """Queue ``message``; dropped when the session has ended (nobody reads it any more)."""
        with self._lock:
            messages = self._queues.get((session_id, direction))
        if messages is not None:
            messages.put(message)

    def reader(self, session_id: str, direction: str) -> MemoryReader:
        """A reader of one direction; for a session that does not exist (or ended), one that never yields."""
        with self._lock:
            messages = self._queues.get((session_id, direction))
        return MemoryReader(messages if messages is not None else queue.Queue())

    def end(self, session_id: str) -> None:
        with self._lock:
            self._records.pop(session_id, None)
            for direction in ("in", "out"):
                self._queues.pop((session_id, direction), None)

    def open_sessions(self) -> list[str]:
        """Ids of the sessions not yet ended (records or queues held)."""
        with self._lock:
            return sorted(set(self._records) | {session_id for session_id, _ in self._queues})
