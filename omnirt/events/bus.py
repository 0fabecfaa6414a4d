"""Event buses: ``append`` an event to a job's log, ``read`` it back, ``subscribe`` from any position.

Entry ids are Redis stream ids (``<ms>-<seq>``), increasing within a job; an SSE client's ``Last-Event-ID`` is one
of them, and ``subscribe(job, after=id)`` delivers every later entry exactly once, in order.

:class:`RedisEventBus` keeps one stream per job (:func:`omnirt.keys.job_events`, ``XADD MAXLEN ~``) that expires a
while after the job's terminal event, and follows streams with a single reader thread per process
(:class:`StreamRelay`), whatever the number of clients. :class:`MemoryEventBus` is the embedded equivalent.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from omnirt import keys
from omnirt.contracts.types import StageEvent

log = logging.getLogger(__name__)

TERMINAL_EVENTS = frozenset({"job_finished", "job_failed", "job_cancelled"})


def job_event(event: str, **data: Any) -> StageEvent:
    """A job lifecycle event (stage ``job``): job_enqueued, job_started, job_finished, ..."""
    return StageEvent(event=event, stage="job", timestamp_ms=int(time.time() * 1000), data=data)


def parse_id(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def valid_id(entry_id: str) -> bool:
    try:
        parse_id(entry_id)
    except ValueError:
        return False
    return True


@dataclass
class Subscription:
    """Entries for one client, in order. ``get`` returns ``(id, event)`` or None on timeout."""

    job_id: str
    cursor: str
    entries: queue.Queue = field(default_factory=queue.Queue)
    closed: bool = False

    def get(self, timeout: float | None = None) -> tuple[str, StageEvent] | None:
        try:
            return self.entries.get(timeout=timeout)
        except queue.Empty:
            return None

    def offer(self, entry_id: str, event: StageEvent) -> None:
        if parse_id(entry_id) > parse_id(self.cursor):
            self.cursor = entry_id
            self.entries.put((entry_id, event))


class EventBus(Protocol):
    def append(self, job_id: str, event: StageEvent) -> str: ...
    def append_later(self, job_id: str, event: StageEvent) -> None: ...
    def flush(self, timeout: float = 30.0) -> None: ...
    def read(self, job_id: str, after: str = "0-0") -> list[tuple[str, StageEvent]]: ...
    def subscribe(self, job_id: str, after: str = "0-0") -> Subscription: ...
    def unsubscribe(self, subscription: Subscription) -> None: ...
    def close(self) -> None: ...


def encode(event: StageEvent) -> dict[str, str]:
    return {
        "event": event.event,
        "stage": event.stage or "",
        "ts": str(event.timestamp_ms),
        "data": json.dumps(event.data, separators=(",", ":")),
    }


def decode(fields: dict[str, str]) -> StageEvent:
    return StageEvent(
        event=fields["event"],
        stage=fields.get("stage") or None,
        timestamp_ms=int(fields.get("ts", 0)),
        data=json.loads(fields.get("data") or "{}"),
    )


# -- Redis ------------------------------------------------------------------------------------------------------------


class RedisEventBus:
    def __init__(self, client: Any, *, maxlen: int, ttl_s: int, job_ttl_s: int) -> None:
        self.redis = client
        self.maxlen = maxlen
        self.ttl_s = ttl_s
        self.job_ttl_s = job_ttl_s
        self._relay: StreamRelay | None = None
        self._relay_lock = threading.Lock()
        self._writer: _BatchWriter | None = None

    def _add(self, pipe: Any, job_id: str, event: StageEvent) -> None:
        key = keys.job_events(job_id)
        pipe.xadd(key, encode(event), maxlen=self.maxlen, approximate=True)
        pipe.expire(key, self.ttl_s if event.event in TERMINAL_EVENTS else self.job_ttl_s)

    def append(self, job_id: str, event: StageEvent) -> str:
        """Write now; returns the entry id."""
        pipe = self.redis.pipeline(transaction=False)
        self._add(pipe, job_id, event)
        entry_id, _ = pipe.execute()
        return entry_id

    def append_later(self, job_id: str, event: StageEvent) -> None:
        """Queue for a background writer that pipelines bursts (stage and progress events of a running job).

        Order is kept: everything appended later is written in submission order. Call :meth:`flush` before
        anything that must follow those events (a job's terminal event).
        """
        with self._relay_lock:
            if self._writer is None:
                self._writer = _BatchWriter(self)
        self._writer.put(job_id, event)

    def flush(self, timeout: float = 30.0) -> None:
        if self._writer is not None:
            self._writer.flush(timeout)

    def read(self, job_id: str, after: str = "0-0") -> list[tuple[str, StageEvent]]:
        entries = self.redis.xrange(keys.job_events(job_id), min=f"({after}" if after != "0-0" else "-")
        return [(entry_id, decode(fields)) for entry_id, fields in entries]

    def subscribe(self, job_id: str, after: str = "0-0") -> Subscription:
        with self._relay_lock:
            if self._relay is None or not self._relay.alive:
                self._relay = StreamRelay(self.redis)
        return self._relay.add(job_id, after)

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.closed = True
        if self._relay is not None:
            self._relay.remove(subscription)

    def close(self) -> None:
        if self._relay is not None:
            self._relay.stop()


class _BatchWriter:
    """One thread that writes queued events in pipelines: a burst of N events costs one round trip, not N."""

    def __init__(self, bus: RedisEventBus) -> None:
        self.bus = bus
        self._items: list[tuple[str, StageEvent]] = []
        self._condition = threading.Condition()
        self._pending = 0
        threading.Thread(target=self._run, name="omnirt-event-writer", daemon=True).start()

    def put(self, job_id: str, event: StageEvent) -> None:
        with self._condition:
            self._items.append((job_id, event))
            self._pending += 1
            self._condition.notify_all()

    def flush(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._pending and time.monotonic() < deadline:
                self._condition.wait(timeout=max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._items:
                    self._condition.wait()
                batch, self._items = self._items, []
            delay = 0.05
            while True:
                try:
                    pipe = self.bus.redis.pipeline(transaction=False)
                    for job_id, event in batch:
                        self.bus._add(pipe, job_id, event)
                    pipe.execute()
                    break
                except Exception as exc:  # noqa: BLE001 - Redis away: keep the batch and retry, never drop events
                    log.warning("event writer cannot reach Redis (%s); retrying", exc)
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
            with self._condition:
                self._pending -= len(batch)
                self._condition.notify_all()


class StreamRelay:
    """One thread per process that ``XREAD BLOCK``s every followed stream and hands entries to subscriptions.

    A private control stream wakes the blocked read when a client starts following a new job.
    """

    BLOCK_MS = 5000

    def __init__(self, client: Any) -> None:
        self.redis = client
        self.control = keys.relay_control(uuid.uuid4().hex)
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="omnirt-event-relay", daemon=True)
        self.stopped = threading.Event()
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self.stopped.is_set()

    def stop(self) -> None:
        self.stopped.set()
        self._wake()

    def add(self, job_id: str, after: str) -> Subscription:
        subscription = Subscription(job_id=job_id, cursor=after)
        with self._lock:
            self._subscriptions.setdefault(job_id, []).append(subscription)
        self._wake()
        return subscription

    def remove(self, subscription: Subscription) -> None:
        with self._lock:
            followers = self._subscriptions.get(subscription.job_id, [])
            if subscription in followers:
                followers.remove(subscription)
            if not followers:
                self._subscriptions.pop(subscription.job_id, None)

    def _wake(self) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.xadd(self.control, {"wake": "1"}, maxlen=10, approximate=False)
            pipe.expire(self.control, 300)
            pipe.execute()
        except Exception:
            log.debug("relay wake failed", exc_info=True)

    def _positions(self) -> tuple[dict[str, str], dict[str, list[Subscription]]]:
        """Where to read each followed stream from (its slowest follower's cursor), and who those followers are.

        Entries read from there go to those followers only: one that subscribed meanwhile may be further back (a
        fresh subscription starts at the beginning) and waits for the next read, which starts from its cursor;
        were it handed this read's later entries, its cursor would jump past the ones it has not seen."""
        with self._lock:
            followers = {job_id: list(subs) for job_id, subs in self._subscriptions.items() if subs}
        positions = {
            keys.job_events(job_id): min((sub.cursor for sub in subs), key=parse_id)
            for job_id, subs in followers.items()
        }
        return positions, followers

    def _run(self) -> None:
        # A concrete id, never "$": a wake-up written just before the XREAD call must still end the block.
        control_cursor = "0-0"
        backoff = 0.1
        while not self.stopped.is_set():
            positions, followers = self._positions()
            positions[self.control] = control_cursor
            try:
                replies = self.redis.xread(positions, block=self.BLOCK_MS, count=1000)
                backoff = 0.1
            except Exception as exc:  # noqa: BLE001 - Redis down: keep trying; clients get keep-alives meanwhile
                if backoff == 0.1:
                    log.warning("event relay cannot read from Redis (%s); retrying", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for key, entries in replies or []:
                if key == self.control:
                    control_cursor = entries[-1][0]
                    continue
                self._deliver(followers.get(keys.job_of_events(key), []), entries)

    @staticmethod
    def _deliver(followers: list[Subscription], entries: Iterable[tuple[str, dict[str, str]]]) -> None:
        for entry_id, fields in entries:
            event = decode(fields)
            for subscription in followers:
                subscription.offer(entry_id, event)


# -- Memory -----------------------------------------------------------------------------------------------------------


class MemoryEventBus:
    """Embedded mode: per-job lists with Redis-style ids; subscribers are fed as events are appended."""

    def __init__(self, *, ttl_s: int) -> None:
        self.ttl_s = ttl_s
        self._logs: dict[str, list[tuple[str, StageEvent]]] = {}
        self._expires: dict[str, float] = {}
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._lock = threading.Lock()
        self._last = (0, 0)

    def _next_id(self) -> str:
        milliseconds = int(time.time() * 1000)
        sequence = self._last[1] + 1 if milliseconds <= self._last[0] else 0
        self._last = (max(milliseconds, self._last[0]), sequence)
        return f"{self._last[0]}-{self._last[1]}"

    def _prune(self) -> None:
        now = time.monotonic()
        for job_id in [job for job, deadline in self._expires.items() if deadline < now]:
            self._logs.pop(job_id, None)
            self._expires.pop(job_id, None)

    def append(self, job_id: str, event: StageEvent) -> str:
        with self._lock:
            self._prune()
            entry_id = self._next_id()
            self._logs.setdefault(job_id, []).append((entry_id, event))
            if event.event in TERMINAL_EVENTS:
                self._expires[job_id] = time.monotonic() + self.ttl_s
            for subscription in self._subscriptions.get(job_id, []):
                subscription.offer(entry_id, event)
            return entry_id

    def read(self, job_id: str, after: str = "0-0") -> list[tuple[str, StageEvent]]:
        with self._lock:
            return [
                (entry_id, event)
                for entry_id, event in self._logs.get(job_id, [])
                if parse_id(entry_id) > parse_id(after)
            ]

    def subscribe(self, job_id: str, after: str = "0-0") -> Subscription:
        subscription = Subscription(job_id=job_id, cursor=after)
        with self._lock:
            for entry_id, event in self._logs.get(job_id, []):
                subscription.offer(entry_id, event)
            self._subscriptions.setdefault(job_id, []).append(subscription)
        return subscription

    def close(self) -> None:
        """Nothing runs in the background here."""

    def append_later(self, job_id: str, event: StageEvent) -> None:
        self.append(job_id, event)

    def flush(self, timeout: float = 30.0) -> None:
        """Appends are immediate here."""

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.closed = True
        with self._lock:
            followers = self._subscriptions.get(subscription.job_id, [])
            if subscription in followers:
                followers.remove(subscription)
            if not followers:
                self._subscriptions.pop(subscription.job_id, None)
