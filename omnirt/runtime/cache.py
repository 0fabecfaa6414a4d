"""The warm pipeline cache: loaded models kept between runs, keyed only by what changes the weights.

The key is (model, weights location, dtype, placement, adapters). Steps, size, seed, scheduler and other per-run
settings never reload weights. Entries are evicted least-recently-used when the cache is full; each entry has a
lock, because a loaded pipeline runs one request at a time.
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


class WarmPipelineCache:
    def __init__(self, max_entries: int = 4) -> None:
        self.max_entries = max_entries
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
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            return entry, False

    def evict(self, model_id: str | None = None) -> int:
        """Drop entries (all, or one model's). Returns how many were dropped."""
        with self._lock:
            doomed = [key for key in self._entries if model_id is None or key[0] == model_id]
            for key in doomed:
                del self._entries[key]
        if doomed:
            _release_memory()
        return len(doomed)

    def keys(self) -> list[CacheKey]:
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _release_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
