"""Run stage durations per model, kept as histogram buckets that every front end's ``/metrics`` reads the same.

Each finished job's stage timings (``load``, ``denoise_loop``, ``decode``, ...) are counted per (stage, model): the
sum, the count and the one bucket the value falls in (a scrape makes the buckets cumulative). In a fleet they live
in one Redis hash (:func:`omnirt.keys.stage_stats`, fields ``<stage>|<model>|<sum|count|in_<bound>>``), written by
one Lua script per job and read with one ``HGETALL`` per scrape, never a scan; embedded, in this process.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any, Protocol

from omnirt import keys

STAGE_BUCKETS_MS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000)

#: (stage, model) -> {"sum": ..., "count": ..., "in_<bound>": ...}
StageCounts = dict[tuple[str, str], dict[str, float]]


class StageStats(Protocol):
    def record(self, model: str, timings: dict[str, float]) -> None: ...
    def snapshot(self) -> StageCounts: ...


def _stage(key: str) -> str:
    return key.removesuffix("_ms")


# KEYS: the stage histogram hash. ARGV: model, then stage, milliseconds pairs.
_RECORD = """
local bounds = {BOUNDS}
for i = 2, #ARGV, 2 do
  local prefix = ARGV[i] .. '|' .. ARGV[1] .. '|'
  local value = tonumber(ARGV[i + 1])
  redis.call('HINCRBYFLOAT', KEYS[1], prefix .. 'sum', value)
  redis.call('HINCRBY', KEYS[1], prefix .. 'count', 1)
  for _, bound in ipairs(bounds) do
    if value <= bound then
      redis.call('HINCRBY', KEYS[1], prefix .. 'in_' .. bound, 1)
      break
    end
  end
end
return 1
""".replace("BOUNDS", ", ".join(str(bound) for bound in STAGE_BUCKETS_MS))


class RedisStageStats:
    def __init__(self, client: Any) -> None:
        self.redis = client
        self._record = client.register_script(_RECORD)

    def record(self, model: str, timings: dict[str, float]) -> None:
        """One round trip for all of a job's stages."""
        args = [model, *(item for key, value in timings.items() for item in (_stage(key), value))]
        self._record(keys=[keys.stage_stats()], args=args)

    def snapshot(self) -> StageCounts:
        counts: StageCounts = defaultdict(dict)
        for field, value in self.redis.hgetall(keys.stage_stats()).items():
            head, _, name = field.rpartition("|")
            stage, _, model = head.partition("|")
            counts[(stage, model)][name] = float(value)
        return dict(counts)


class MemoryStageStats:
    """Embedded mode: the histograms of this process."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._lock = threading.Lock()

    def record(self, model: str, timings: dict[str, float]) -> None:
        with self._lock:
            for key, milliseconds in timings.items():
                bucket = self._counts[(_stage(key), model)]
                bucket["sum"] += milliseconds
                bucket["count"] += 1
                for bound in STAGE_BUCKETS_MS:
                    if milliseconds <= bound:
                        bucket[f"in_{bound}"] += 1
                        break

    def snapshot(self) -> StageCounts:
        with self._lock:
            return {key: dict(values) for key, values in self._counts.items()}
