"""The event relay hands a read's entries only to the followers it read for: a client that subscribes while a read is
in flight (and is further back, e.g. a fresh one at the start of the stream) gets every entry from its own cursor on,
none skipped. (Five SSE clients of one job once saw different event lists under load because of this.)"""

from __future__ import annotations

import time
from typing import Any

from omnirt.events.bus import StreamRelay, encode, job_event


class IdleRedis:
    """Just enough of a Redis client for a relay whose streams are fed by the test: reads find nothing."""

    def xread(self, *_: Any, **__: Any) -> None:
        time.sleep(0.01)

    def pipeline(self, **_: Any) -> Any:
        return self

    def xadd(self, *_: Any, **__: Any) -> None: ...

    def expire(self, *_: Any, **__: Any) -> None: ...

    def execute(self) -> None: ...


def test_a_follower_that_joins_during_a_read_misses_nothing() -> None:
    relay = StreamRelay(IdleRedis())
    try:
        entries = [(f"1000-{n}", encode(job_event("progress", step=n))) for n in range(4)]
        ahead = relay.add("job1", "1000-1")  # has seen the first two entries
        positions, followers = relay._positions()  # a read starts for the followers known now
        assert list(positions.values()) == ["1000-1"]
        fresh = relay.add("job1", "0-0")  # a client joins while that read is in flight
        relay._deliver(followers["job1"], entries[2:])  # the read returns the entries after the slowest cursor
        assert [ahead.entries.get_nowait()[0] for _ in range(2)] == ["1000-2", "1000-3"]
        assert fresh.entries.empty() and fresh.cursor == "0-0"  # not moved past entries it never got
        positions, followers = relay._positions()  # the next read starts from the fresh client's cursor
        assert list(positions.values()) == ["0-0"]
        relay._deliver(followers["job1"], entries)
        assert [fresh.entries.get_nowait()[0] for _ in range(4)] == ["1000-0", "1000-1", "1000-2", "1000-3"]
        assert ahead.entries.empty()  # the one ahead gets nothing twice
    finally:
        relay.stop()
