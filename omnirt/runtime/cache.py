"""The warm pipeline cache: loaded models kept between runs, keyed only by what changes the weights.

The key is (model, weights location, dtype, placement + compile mode + the weight-changing acceleration
switches, adapters). Steps, size, seed, scheduler and other per-run settings never reload weights. Entries leave
the cache in three ways:

* least recently used first, when more than ``max_entries`` are loaded;
* least recently used first, when a new model's estimated size would take the total over ``memory_budget_gb``;
* after ``idle_unload_s`` without use, when :meth:`sweep` runs (a worker's heartbeat calls it).

Each entry has a lock: a loaded pipeline runs one request at a time. An entry in use is never evicted mid-run.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CacheKey = tuple[str, str, str, str, tuple[tuple[str, str, float], ...]]


@dataclass
class CacheEntry:
    key: CacheKey
    pipeline: Any
    loaded_at: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    uses: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def estimated_gb(self) -> float:
        return float(getattr(self.pipeline, "estimated_gb", 0.0) or 0.0)


class WarmPipelineCache:
    def __init__(self, max_entries: int = 4, *, idle_unload_s: float = 0.0, memory_budget_gb: float = 0.0) -> None:
        self.max_entries = max_entries
        self.idle_unload_s = idle_unload_s
        self.memory_budget_gb = memory_budget_gb
        self._entries: OrderedDict[CacheKey, CacheEntry] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[CacheKey, threading.Lock] = {}

    def get_or_load(self, key: CacheKey, load: Callable[[], Any]) -> tuple[CacheEntry, bool]:
        """The entry for ``key``, loading it if needed. Returns (entry, was it already warm)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                entry.last_used = time.monotonic()
                return entry, True
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one load per key, even when several runs ask at once
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    return entry, True
            pipeline = load()
            entry = CacheEntry(key=key, pipeline=pipeline)
            with self._lock:
                self._entries[key] = entry
                self._loading.pop(key, None)
                while len(self._entries) > self.max_entries and self._evict_one(keep=key):
                    pass
            return entry, False

    def resize(self, max_entries: int, *, idle_unload_s: float, memory_budget_gb: float) -> None:
        """Take new limits, keeping what is loaded (least recently used idle entries leave if now too many)."""
        with self._lock:
            self.max_entries = max_entries
            self.idle_unload_s = idle_unload_s
            self.memory_budget_gb = memory_budget_gb
            evicted = False
            while len(self._entries) > self.max_entries and self._evict_one():
                evicted = True
        if evicted:
            _release_memory()

    def make_room(self, needed_gb: float) -> None:
        """Evict least-recently-used idle entries until ``needed_gb`` more fits the memory budget."""
        if self.memory_budget_gb <= 0:
            return
        with self._lock:
            while self._total_gb() + needed_gb > self.memory_budget_gb and self._evict_one():
                pass
        _release_memory()

    def sweep(self) -> int:
        """Unload entries idle for longer than ``idle_unload_s``. Returns how many were unloaded."""
        if self.idle_unload_s <= 0:
            return 0
        deadline = time.monotonic() - self.idle_unload_s
        with self._lock:
            idle = [
                key for key, entry in self._entries.items() if entry.last_used < deadline and not entry.lock.locked()
            ]
            for key in idle:
                del self._entries[key]
        if idle:
            _release_memory()
        return len(idle)

    def evict(self, model_id: str | None = None) -> int:
        """Drop entries (all, or one model's). Returns how many were dropped."""
        with self._lock:
            doomed = [key for key in self._entries if model_id is None or key[0] == model_id]
            for key in doomed:
                del self._entries[key]
        if doomed:
            _release_memory()
        return len(doomed)

    def describe(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            return [
                {
                    "model": key[0],
                    "weights": key[1],
                    "dtype": key[2],
                    "placement": key[3],
                    "adapters": len(key[4]),
                    "uses": entry.uses,
                    "idle_s": round(now - entry.last_used, 1),
                    "estimated_gb": round(entry.estimated_gb, 3),
                }
                for key, entry in self._entries.items()
            ]

    def keys(self) -> list[CacheKey]:
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def _total_gb(self) -> float:
        return sum(entry.estimated_gb for entry in self._entries.values())

    def _evict_one(self, keep: CacheKey | None = None) -> bool:
        """Drop the least recently used entry that is not running (caller holds the lock)."""
        for key, entry in self._entries.items():
            if key != keep and not entry.lock.locked():
                del self._entries[key]
                return True
        return False


def _release_memory() -> None:
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
