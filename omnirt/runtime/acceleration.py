"""Acceleration switches of the diffusers families, each backed by a real implementation, and what they did.

Three config keys, all optional:

* ``quantization``: ``int8`` or ``fp8`` weight-only quantization of the denoisers (``unet``/``transformer``/
  ``transformer_2``) with torchao's ``quantize_`` (``Int8WeightOnlyConfig`` / ``Float8WeightOnlyConfig``). It
  replaces the weights, so it is applied at load and is part of the warm-cache key (:func:`acceleration_key`).
  Runs on CUDA and on the CPU; needs the ``torchao`` package.
* ``layerwise_casting``: ``fp8_e4m3`` or ``fp8_e5m2``: diffusers' ``ModelMixin.enable_layerwise_casting`` stores the
  denoisers' weights in that float8 type and upcasts each layer to the run's dtype just for its forward. Also a
  load-time change, also in the key. Mutually exclusive with ``quantization``.
* ``cache: first_block_cache`` (with ``cache_threshold``, default 0.05): diffusers' First Block Cache on a
  transformer denoiser (``CacheMixin.enable_cache(FirstBlockCacheConfig(threshold))``). When the first block's
  residual changed less than the threshold since the last full pass, the remaining blocks are skipped and their
  cached residual is reused. It only adds hooks, so it is enabled for one run and removed after it
  (:func:`step_cache`); the warm pipeline is unchanged for the next request. It needs a transformer with diffusers'
  cache hooks, blocks the hooks know, and a denoising loop that sets the cache context: the pipelines in
  :data:`FIRST_BLOCK_CACHE_PIPELINES`, each run by the tests. Other families refuse it with a request error.

Everything applied lands in the run report's ``backend_timeline`` as one entry per component with the technique as
the attempt's ``level``; the step cache also says how many denoiser passes ran all blocks.

With torchao installed, diffusers imports it with its pipelines; :func:`quiet_torchao_import_notices` drops the
notices that import prints on a CPU-only torch (CUDA kernel libraries it cannot load, deprecations of its own).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from omnirt.contracts.errors import DependencyUnavailableError, RequestValidationError
from omnirt.runtime.backends import Backend
from omnirt.runtime.compile import COMPILED_COMPONENTS, BackendAttempt, ModuleTimeline

#: config value -> torchao weight-only config class
QUANTIZATIONS = {"int8": "Int8WeightOnlyConfig", "fp8": "Float8WeightOnlyConfig"}
#: config value -> torch storage dtype name
LAYERWISE_CASTS = {"fp8_e4m3": "float8_e4m3fn", "fp8_e5m2": "float8_e5m2"}
#: values of config ``cache``
STEP_CACHES = ("first_block_cache",)
#: the diffusers pipelines First Block Cache runs on (tests/test_acceleration.py runs each one's tiny model)
FIRST_BLOCK_CACHE_PIPELINES = frozenset(
    {
        "FluxPipeline",
        "HunyuanVideoPipeline",
        "MochiPipeline",
        "QwenImagePipeline",
        "WanPipeline",
        "WanImageToVideoPipeline",
    }
)
DEFAULT_CACHE_THRESHOLD = 0.05

#: the keys every diffusers family accepts; the step-cache keys only where the denoiser is a transformer
LOAD_CONFIG_KEYS = ("quantization", "layerwise_casting")
STEP_CACHE_CONFIG_KEYS = ("cache", "cache_threshold")


def acceleration_key(config: dict[str, Any]) -> str:
    """The part of the warm-cache key for the switches that change weights (applied at load)."""
    parts = [f"{key}={config[key]}" for key in LOAD_CONFIG_KEYS if config.get(key)]
    return ",".join(parts) or "plain"


def check_acceleration_config(config: dict[str, Any]) -> list[str]:
    """Combinations the value rules cannot see: the messages of what is wrong (validation calls it)."""
    problems = []
    if config.get("quantization") and config.get("layerwise_casting"):
        problems.append("config.quantization and config.layerwise_casting both change the stored weights; pick one.")
    if config.get("cache_threshold") is not None and not config.get("cache"):
        problems.append("config.cache_threshold applies to config.cache=first_block_cache; set that too.")
    return problems


def step_cache_refusal(model: str, pipeline_class: str | None) -> str | None:
    """Why ``config.cache`` cannot run on ``model`` (served by diffusers' ``pipeline_class``), or None."""
    if pipeline_class in FIRST_BLOCK_CACHE_PIPELINES:
        return None
    return (
        f"config.cache=first_block_cache does not run on {model} ({pipeline_class or 'not a diffusers pipeline'}); "
        f"it runs on {', '.join(sorted(FIRST_BLOCK_CACHE_PIPELINES))}."
    )


def apply_at_load(pipe: Any, backend: Backend, config: dict[str, Any], compute_dtype: Any) -> list[ModuleTimeline]:
    """Quantize or cast the placed pipeline's denoisers as the config asks; one timeline per changed component."""
    timelines: list[ModuleTimeline] = []
    quantization = config.get("quantization")
    casting = config.get("layerwise_casting")
    if not quantization and not casting:
        return timelines
    for name in COMPILED_COMPONENTS:
        module = getattr(pipe, name, None)
        if module is None:
            continue
        if quantization:
            timelines.append(_quantize(module, name, quantization, backend))
        else:
            timelines.append(_cast_layerwise(module, name, casting, compute_dtype))
    return timelines


def _quantize(module: Any, name: str, quantization: str, backend: Backend) -> ModuleTimeline:
    if backend.name not in ("cuda", "cpu"):
        raise RequestValidationError(
            f"config.quantization={quantization} uses torchao, which runs on cuda or cpu, not {backend.name}."
        )
    try:
        from torchao import quantization as torchao_quantization
    except ImportError as exc:
        raise DependencyUnavailableError(
            "config.quantization needs torchao: pip install torchao (a version built for this torch)."
        ) from exc
    config_cls = getattr(torchao_quantization, QUANTIZATIONS[quantization])
    torchao_quantization.quantize_(module, config_cls())
    reason = f"torchao {QUANTIZATIONS[quantization]}: {_count_linears(module)} linear layers"
    return ModuleTimeline(name, [BackendAttempt(f"quantization:{quantization}", ok=True, reason=reason, selected=True)])


def _cast_layerwise(module: Any, name: str, casting: str, compute_dtype: Any) -> ModuleTimeline:
    import torch

    storage = getattr(torch, LAYERWISE_CASTS[casting])
    module.enable_layerwise_casting(storage_dtype=storage, compute_dtype=compute_dtype)
    reason = f"stored as {LAYERWISE_CASTS[casting]}, computed in {str(compute_dtype).removeprefix('torch.')}"
    return ModuleTimeline(name, [BackendAttempt(f"layerwise_casting:{casting}", ok=True, reason=reason, selected=True)])


def _count_linears(module: Any) -> int:
    import torch

    return sum(1 for child in module.modules() if isinstance(child, torch.nn.Linear))


@contextmanager
def step_cache(pipe: Any, config: dict[str, Any]) -> Iterator[list[ModuleTimeline]]:
    """For one run: First Block Cache on the pipeline's transformer denoisers, removed afterwards.

    Yields the timelines it fills (one per cached denoiser); the entry's reason counts the denoiser passes and how
    many of them ran all blocks.
    """
    if config.get("cache") != "first_block_cache":
        yield []
        return
    from diffusers.hooks import FirstBlockCacheConfig

    refusal = step_cache_refusal(type(pipe).__name__, type(pipe).__name__)
    if refusal is not None:
        raise RequestValidationError(refusal)
    threshold = float(config.get("cache_threshold") or DEFAULT_CACHE_THRESHOLD)
    denoisers = [(name, getattr(pipe, name)) for name in COMPILED_COMPONENTS if getattr(pipe, name, None) is not None]
    timelines: list[ModuleTimeline] = []
    counters: list[_PassCounter] = []
    try:
        for name, module in denoisers:
            module.enable_cache(FirstBlockCacheConfig(threshold=threshold))
            counters.append(_PassCounter(module))
            timelines.append(
                ModuleTimeline(name, [BackendAttempt("first_block_cache", ok=True, reason="", selected=True)])
            )
        yield timelines
    finally:
        for counter, timeline in zip(counters, timelines, strict=True):
            counter.remove()
            timeline.attempts[
                0
            ].reason = f"threshold={threshold}: {counter.full} of {counter.passes} denoiser passes ran all blocks"
        for _, module in denoisers:
            if getattr(module, "is_cache_enabled", False):
                module.disable_cache()


class _PassCounter:
    """Counts a transformer's forward passes and those in which its last block really computed (First Block Cache
    skips the blocks after the first one by returning a cached residual without calling into them)."""

    def __init__(self, transformer: Any) -> None:
        self.passes = 0
        self.full = 0
        self._tail_ran = False
        tail = _last_block(transformer)
        self._handles = [
            transformer.register_forward_pre_hook(self._begin),
            transformer.register_forward_hook(self._end),
        ]
        if tail is not None:
            self._handles += [child.register_forward_pre_hook(self._tail) for child in tail.children()]

    def _begin(self, *_: Any) -> None:
        self._tail_ran = False

    def _tail(self, *_: Any) -> None:
        self._tail_ran = True

    def _end(self, *_: Any) -> None:
        self.passes += 1
        self.full += int(self._tail_ran)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _last_block(transformer: Any) -> Any:
    """The block First Block Cache treats as the tail: the last one of the model's block lists."""
    import torch
    from diffusers.hooks._common import _ALL_TRANSFORMER_BLOCK_IDENTIFIERS

    blocks = [
        block
        for name, child in transformer.named_children()
        if name in _ALL_TRANSFORMER_BLOCK_IDENTIFIERS and isinstance(child, torch.nn.ModuleList)
        for block in child
    ]
    return blocks[-1] if blocks else None


class _TorchaoImportNotices(logging.Filter):
    """Drops torchao's import-time notices that say nothing about this process's work."""

    DEPRECATIONS = ("is an Enum subclass and is now natively supported", "Unable to import `torchao` Tensor objects")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(notice in message for notice in self.DEPRECATIONS):
            return False
        torch = sys.modules.get("torch")
        cpu_only = torch is not None and getattr(torch.version, "cuda", None) is None
        cpu_notice = (message.startswith("Failed to load") and "torchao" in message) or "Detected no triton" in message
        return not (cpu_only and cpu_notice)


def quiet_torchao_import_notices() -> None:
    """Install the filter on the loggers torchao's import writes to (idempotent)."""
    loggers = (
        "torchao",
        "torchao.kernel.intmm",
        "torch.utils._pytree",
        "diffusers.quantizers.torchao.torchao_quantizer",
    )
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _TorchaoImportNotices) for existing in logger.filters):
            logger.addFilter(_TorchaoImportNotices())
