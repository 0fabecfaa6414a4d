"""The prompt-embedding cache: a worker process reuses text-encoder outputs for a prompt it has encoded before.

Diffusers pipelines encode text in one method (``encode_prompt``) whose arguments are the prompt(s), the negative
prompt(s) and the encoding parameters (``num_images_per_prompt``, ``do_classifier_free_guidance``,
``max_sequence_length``, ``clip_skip``, ``lora_scale``, device, dtype ...), and whose result depends otherwise only on
the loaded encoders. :func:`prompt_memo` wraps that method for the length of one call: the key is the owner (one
loaded pipeline: its weights, dtype, placement and adapters), the pipeline class (each task's class has its own
``encode_prompt``) and every bound argument with defaults filled in, so the pipeline's own code does everything after
encoding exactly as without the cache and the output bytes are the same. Input pictures an encoder reads
(Qwen-Image-Edit's) are keyed by their pixels; a call that passes tensors (precomputed embeddings) is not cached.

A list of prompts (a batch) is cached as one entry keyed by the whole list: encoders pad to the longest prompt of a
batch, so per-prompt entries could not be stitched into the same tensors.

Entries live in host memory (copied back to the encoder's device on a hit), least recently used evicted first; the
size is the ``OMNIRT_PROMPT_CACHE_SIZE`` setting (entries; 0 turns the cache off).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

_UNCACHEABLE = object()


class PromptEmbeddingCache:
    """An LRU of encoder outputs, keyed by (owner, pipeline class, method, frozen arguments); thread safe."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            stored = self._entries.get(key)
            if stored is not None:
                self._entries.move_to_end(key)
            return stored

    def put(self, key: Hashable, stored: Any) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._entries[key] = stored
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def resize(self, max_entries: int) -> None:
        with self._lock:
            self.max_entries = max_entries
            while len(self._entries) > max(max_entries, 0):
                self._entries.popitem(last=False)

    def forget(self, owner: str) -> None:
        """Drop every entry of ``owner`` (its encoders changed: adapters unloaded, or it was unloaded)."""
        with self._lock:
            for key in [key for key in self._entries if key[0] == owner]:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


_CACHE: PromptEmbeddingCache | None = None
_CACHE_LOCK = threading.Lock()


def process_cache() -> PromptEmbeddingCache:
    """This process's cache, sized by the ``prompt_cache_size`` setting on first use."""
    global _CACHE
    with _CACHE_LOCK:
        if _CACHE is None:
            from omnirt.settings import Settings

            _CACHE = PromptEmbeddingCache(int(Settings.value("prompt_cache_size")))
        return _CACHE


@dataclass
class PromptCacheUse:
    """What the cache did during one run."""

    hits: int = 0
    misses: int = 0
    uncacheable: int = 0


@contextmanager
def prompt_memo(
    pipe: Any, method_name: str | None, *, owner: str, enabled: bool, cache: PromptEmbeddingCache | None = None
) -> Iterator[PromptCacheUse]:
    """Within the block, ``pipe.<method_name>`` answers repeated encodings from the cache."""
    use = PromptCacheUse()
    method = getattr(pipe, method_name, None) if method_name else None
    cache = cache or process_cache()
    if not enabled or method is None or cache.max_entries <= 0:
        yield use
        return
    signature = inspect.signature(method)

    @functools.wraps(method)
    def cached(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return method(*args, **kwargs)
        bound.apply_defaults()
        frozen = _freeze(tuple(bound.arguments.items()))
        if frozen is _UNCACHEABLE:
            use.uncacheable += 1
            return method(*args, **kwargs)
        key = (owner, type(pipe).__name__, method_name, frozen)
        stored = cache.get(key)
        if stored is not None:
            use.hits += 1
            return _restore(stored)
        result = method(*args, **kwargs)
        if not _storable(result):  # a result shape the cache does not know how to copy: not cached
            use.uncacheable += 1
            return result
        use.misses += 1
        cache.put(key, _store(result))
        return result

    setattr(pipe, method_name, cached)
    try:
        yield use
    finally:
        if method_name in vars(pipe):
            delattr(pipe, method_name)


def _freeze(value: Any) -> Any:
    """A hashable form of an argument, or ``_UNCACHEABLE`` (tensors, images, anything not plain data)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        items = tuple(_freeze(item) for item in value)
        return _UNCACHEABLE if any(item is _UNCACHEABLE for item in items) else (type(value).__name__, items)
    if isinstance(value, dict):
        frozen = _freeze(sorted(value.items(), key=lambda item: str(item[0])))
        return _UNCACHEABLE if frozen is _UNCACHEABLE else ("dict", frozen)
    import torch
    from PIL import Image

    if isinstance(value, torch.device):
        return ("device", str(value))
    if isinstance(value, torch.dtype):
        return ("dtype", str(value))
    if isinstance(value, Image.Image):  # encoders that read the input picture too (Qwen-Image-Edit)
        return ("image", value.mode, value.size, hashlib.sha256(value.tobytes()).hexdigest())
    return _UNCACHEABLE


@dataclass(frozen=True)
class _HostTensor:
    tensor: Any
    device: Any


def _storable(result: Any) -> bool:
    """Whether ``result`` is made only of tensors, None, plain numbers and tuples/lists of those."""
    import torch

    if result is None or isinstance(result, (torch.Tensor, int, float, bool, str)):
        return True
    return isinstance(result, (tuple, list)) and all(_storable(item) for item in result)


def _store(result: Any) -> Any:
    """A host-memory copy of an encoder result (tensors, or tuples/lists of them and None)."""
    import torch

    if isinstance(result, torch.Tensor):
        return _HostTensor(result.detach().to("cpu", copy=True), result.device)
    if isinstance(result, (tuple, list)):
        return type(result)(_store(item) for item in result)
    return result


def _restore(stored: Any) -> Any:
    """Fresh tensors on their original devices: the pipeline may change what it gets without touching the cache."""
    if isinstance(stored, _HostTensor):
        return stored.tensor.to(stored.device, copy=True)
    if isinstance(stored, (tuple, list)):
        return type(stored)(_restore(item) for item in stored)
    return stored
