"""The engine a process runs models with: validate a request, find its weights, take the pipeline from the warm
cache (:mod:`omnirt.runtime.cache`), run it.

This is what a worker process runs for each task, what the embedded server's worker threads run, and what the Python
API and the CLI call. One engine per process keeps loaded models warm between runs; :func:`configure_process` sizes
it from the settings and :func:`preload` warms models, the same way in a Celery worker process and in an embedded
server.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnirt.contracts.types import GenerateRequest, GenerateResult, RunReport
from omnirt.jobs.batching import MEMBER_CONFIG
from omnirt.models.base import CancelCheck, EventSink, RunContext
from omnirt.models.batching import BatchMember, BatchRequest, run_batched
from omnirt.registry.spec import ModelSpec
from omnirt.registry.validation import ValidationResult, resolve_config, validate_request
from omnirt.runtime.acceleration import acceleration_key
from omnirt.runtime.adapters import adapter_fingerprint
from omnirt.runtime.backends import Backend, resolve_backend
from omnirt.runtime.cache import CacheKey, WarmPipelineCache
from omnirt.runtime.compile import compile_key
from omnirt.runtime.dtypes import choose_dtype
from omnirt.runtime.memory import ensure_memory_budget
from omnirt.runtime.placement import placement_key
from omnirt.runtime.prompt_cache import process_cache as process_prompt_cache
from omnirt.runtime.weights import WeightsSource, read_folder_defaults, resolve_weights

log = logging.getLogger(__name__)


def default_output_dir() -> Path:
    from omnirt.settings import Settings

    return Path(Settings.value("artifact_dir")).expanduser()


class Engine:
    def __init__(
        self,
        *,
        cache_size: int = 4,
        models_dir: Path | None = None,
        output_dir: Path | None = None,
        idle_unload_s: float = 0.0,
        memory_budget_gb: float = 0.0,
        torch_threads: int | None = None,
    ) -> None:
        #: torch intra-op threads for this process, set before the first model loads (None or 0: torch's default).
        self.torch_threads = torch_threads
        #: the operator's request limits (omnirt.registry.limits), checked again before each run.
        self.limits: dict[str, float] = {}
        self.cache = WarmPipelineCache(
            max_entries=cache_size, idle_unload_s=idle_unload_s, memory_budget_gb=memory_budget_gb
        )
        self.models_dir = models_dir
        self.output_dir = output_dir

    def validate(self, request: GenerateRequest, *, backend: str | None = None) -> ValidationResult:
        return validate_request(request, backend=backend)

    def run(
        self,
        request: GenerateRequest,
        *,
        backend: str | None = None,
        on_event: EventSink | None = None,
        should_cancel: CancelCheck | None = None,
        job_id: str | None = None,
        output_dir: Path | None = None,
        run_dir: Path | None = None,
        avatars: Any = None,
    ) -> GenerateResult:
        """Run ``request`` to completion. Raises :class:`RequestValidationError` or the run's own error.

        Artifacts go to ``run_dir`` if given, else ``<output_dir>/<run id>/`` (``config.output_dir`` wins over both).
        ``avatars`` is the avatar store, for avatar models that read prepared avatars.
        """
        prepared = self._prepare(
            request,
            backend=backend,
            on_event=on_event,
            should_cancel=should_cancel,
            job_id=job_id,
            output_dir=output_dir,
            run_dir=run_dir,
            avatars=avatars,
        )
        entry = self._warm_entry(prepared, [prepared.ctx])
        with entry.lock:
            entry.uses += 1
            return entry.pipeline.run(prepared.ctx, prepared.report)

    def run_batch(
        self,
        members: list[BatchRequest],
        *,
        backend: str | None = None,
        batch_group_id: str | None = None,
        output_dir: Path | None = None,
    ) -> list[GenerateResult | None]:
        """Run compatible requests (one batch key, :mod:`omnirt.jobs.batching`) as one pipeline call; one result per
        member, None for a member cancelled meanwhile. Raises the run's error for all of them."""
        batch_group_id = batch_group_id or uuid.uuid4().hex
        prepared = [
            self._prepare(
                member.request,
                backend=backend,
                on_event=member.on_event,
                should_cancel=member.should_cancel,
                job_id=member.job_id,
                output_dir=output_dir,
                run_dir=member.run_dir,
            )
            for member in members
        ]
        first = prepared[0]
        for other in prepared[1:]:
            if other.key != first.key or other.spec.id != first.spec.id or not _same_batch_config(first, other):
                raise ValueError("the requests of a batch differ in more than prompt, negative prompt and seed")
        entry = self._warm_entry(first, [item.ctx for item in prepared])
        for item in prepared:
            item.report.timings["load_ms"] = first.report.timings["load_ms"]
            item.report.cache_hits = list(first.report.cache_hits)
        if first.spec.task not in getattr(entry.pipeline, "batched_tasks", ()):
            raise ValueError(f"{first.spec.id} does not run {first.spec.task} batched")
        batch = [
            BatchMember(ctx=item.ctx, report=item.report, on_cancelled=member.on_cancelled)
            for item, member in zip(prepared, members, strict=True)
        ]
        with entry.lock:
            entry.uses += 1
            return run_batched(entry.pipeline, batch, batch_group_id=batch_group_id)

    def _prepare(
        self,
        request: GenerateRequest,
        *,
        backend: str | None,
        on_event: EventSink | None,
        should_cancel: CancelCheck | None,
        job_id: str | None,
        output_dir: Path | None,
        run_dir: Path | None,
        avatars: Any = None,
    ) -> _PreparedRun:
        """Validate ``request``, find its weights and config, and build its run context, report and cache key."""
        validation = validate_request(request, backend=backend, limits=self.limits)
        validation.raise_for_errors()
        spec = validation.model
        assert spec is not None  # a valid request has a model
        resolved_backend = resolve_backend(validation.resolved_backend)
        config = dict(validation.resolved_config)
        source = self.weights_for(spec, config)
        if source.origin == "models_dir":
            config, _ = resolve_config(spec, request.config, read_folder_defaults(source.location))
        dtype, dtype_note = choose_dtype(resolved_backend, config.get("dtype"), spec.resource_hint.get("dtype"))
        config["dtype"] = dtype

        report = RunReport(task=spec.task, model=spec.id, backend=resolved_backend.name, job_id=job_id)
        report.device = str(resolved_backend.device())
        run_dir = run_dir or (output_dir or self.output_dir or default_output_dir()).resolve() / report.run_id
        ctx = RunContext(
            request=request,
            config={**config, "model_path": source.location},
            output_dir=Path(config["output_dir"]).expanduser().resolve() if config.get("output_dir") else run_dir,
            on_event=on_event,
            should_cancel=should_cancel,
            avatars=avatars,
        )
        for warning in validation.warnings + ([dtype_note] if dtype_note else []):
            ctx.emit("warning", None, message=warning)
        key = self._key(spec, source, dtype, resolved_backend, config, request)
        return _PreparedRun(
            spec=spec,
            ctx=ctx,
            report=report,
            key=key,
            load=lambda: self._load(spec, source, resolved_backend, dtype, config, request),
        )

    def _warm_entry(self, prepared: _PreparedRun, contexts: list[RunContext]) -> Any:
        """The warm cache entry of ``prepared``, loading it if needed; the load stage is reported to ``contexts``."""
        for ctx in contexts:
            ctx.emit("stage_start", "load")
        load_started = time.perf_counter()
        entry, warm = self.cache.get_or_load(prepared.key, prepared.load)
        report = prepared.report
        report.timings["load_ms"] = round((time.perf_counter() - load_started) * 1000, 3)
        for ctx in contexts:
            ctx.emit("stage_end", "load", warm=warm, elapsed_ms=report.timings["load_ms"])
        if warm:
            report.cache_hits.append("pipeline")
        return entry

    def configure(self, settings: Any) -> None:
        """Take the process settings that apply to runs: torch threads, the request limits, the warm cache's
        size, idle unload and memory budget (models already loaded stay loaded), the prompt-embedding cache's size."""
        self.torch_threads = settings.torch_threads
        self.limits = dict(settings.limits)
        self.cache.resize(
            settings.cache_size, idle_unload_s=settings.idle_unload_s, memory_budget_gb=settings.memory_budget_gb
        )
        process_prompt_cache().resize(settings.prompt_cache_size)

    def preload(self, model_id: str, *, backend: str = "auto") -> None:
        """Load ``model_id`` (its primary task, default settings) into the warm cache without running it."""
        self.pipeline_for(model_id, backend=backend)

    def pipeline_for(self, model_id: str, *, backend: str = "auto", model_path: str | None = None) -> Any:
        """The warm pipeline object for ``model_id`` with default settings, loading it if needed (sessions use it)."""
        from omnirt.registry.registry import get_model

        spec = get_model(model_id)
        resolved_backend = resolve_backend(backend)
        source = self.weights_for(spec, {"model_path": model_path} if model_path else {})
        config, _ = resolve_config(spec, {}, read_folder_defaults(source.location) if source.is_local else {})
        dtype, _ = choose_dtype(resolved_backend, config.get("dtype"), spec.resource_hint.get("dtype"))
        request = GenerateRequest(task=spec.task, model=spec.id, backend=resolved_backend.name)
        key = self._key(spec, source, dtype, resolved_backend, config, request)
        entry, _ = self.cache.get_or_load(
            key, lambda: self._load(spec, source, resolved_backend, dtype, config, request)
        )
        return entry.pipeline

    def device_memory(self) -> dict[str, float]:
        """Device memory this process has allocated (``device_mb``), where the backend reports it; else nothing."""
        import sys

        torch = sys.modules.get("torch")  # a process that never loaded torch has no device memory
        try:  # torch may be half-imported by another thread right now: then there is nothing to report yet
            if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
                return {"device_mb": round(torch.cuda.memory_allocated() / 2**20, 1)}
        except AttributeError:
            pass
        return {}

    def loaded_models(self) -> list[dict[str, Any]]:
        """What this process keeps warm: model, dtype, placement, idle seconds, estimated size."""
        return self.cache.describe()

    def _key(
        self,
        spec: ModelSpec,
        source: WeightsSource,
        dtype: str,
        backend: Backend,
        config: dict[str, Any],
        request: GenerateRequest,
    ) -> CacheKey:
        return (
            spec.weights_name,
            source.location,
            dtype,
            f"{placement_key(backend, config)}|{compile_key(backend, config)}|{acceleration_key(config)}",
            adapter_fingerprint(request.adapters),
        )

    def weights_for(self, spec: ModelSpec, config: dict[str, Any]) -> WeightsSource:
        if spec.weightless:
            return WeightsSource(location="", origin="none")
        return resolve_weights(
            spec.weights_name,
            hub_id=spec.hub_id,
            model_path=config.get("model_path"),
            models_dir=self.models_dir,
            aliases=(spec.id,) if spec.is_alias else (),
            markers=tuple(spec.resource_hint.get("weights_markers", ())),
            file_ok=bool(spec.resource_hint.get("weights_markers")),
        )

    def _load(
        self,
        spec: ModelSpec,
        source: WeightsSource,
        backend: Backend,
        dtype: str,
        config: dict[str, Any],
        request: GenerateRequest,
    ) -> Any:
        if self.torch_threads:
            import torch

            if torch.get_num_threads() != self.torch_threads:
                torch.set_num_threads(self.torch_threads)
        estimate = None
        if not spec.weightless:
            estimate = ensure_memory_budget(
                spec.id, source.location, dtype=dtype, backend=backend, resource_hint=spec.resource_hint
            )
        self.cache.make_room(estimate or 0.0)
        pipeline = spec.pipeline_cls(
            spec=spec, source=source, backend=backend, dtype=dtype, config=config, adapters=request.adapters
        )
        pipeline.estimated_gb = estimate or 0.0
        return pipeline


@dataclass
class _PreparedRun:
    """One validated request, ready to run: its model, context, report, warm-cache key and how to load it."""

    spec: ModelSpec
    ctx: RunContext
    report: RunReport
    key: CacheKey
    load: Callable[[], Any]


def _same_batch_config(first: _PreparedRun, other: _PreparedRun) -> bool:
    """Whether two prepared runs differ in nothing but their own seed (the batch key decided that already; the
    weights folder's own defaults, read on the worker, apply to both alike)."""

    def shared(run: _PreparedRun) -> dict[str, Any]:
        return {key: value for key, value in run.ctx.config.items() if key not in MEMBER_CONFIG}

    return shared(first) == shared(other)


_DEFAULT_ENGINE: Engine | None = None
_DEFAULT_LOCK = threading.Lock()


def configure_default_engine(settings: Any) -> Engine:
    """Size the process-wide engine by ``settings`` (cache size, idle unload, memory budget, torch threads, limits)."""
    engine = get_default_engine()
    engine.configure(settings)
    return engine


def configure_process(settings: Any) -> Engine:
    """What every process that runs jobs does first, Celery worker or embedded server alike: size the process engine
    (cache size, idle unload, memory budget, torch threads, limits), the frame lanes and the session capacity from
    ``settings``. Its heartbeat then runs ``engine.cache.sweep`` (idle unload), and :func:`preload` warms models."""
    from omnirt.avatars.scheduler import set_frame_lanes
    from omnirt.workers.sessions import get_session_host

    engine = configure_default_engine(settings)
    set_frame_lanes(settings.lanes())
    get_session_host().resize(settings.session_capacity)
    return engine


def preload(engine: Engine, model_ids: tuple[str, ...], *, device: str = "auto") -> None:
    """Load ``model_ids`` (``OMNIRT_PRELOAD``) into ``engine`` on ``device``; a model that fails is logged and
    skipped."""
    for model_id in model_ids:
        try:
            engine.preload(model_id, backend=device)
            log.info("preloaded %s", model_id)
        except Exception:
            log.exception("could not preload %s", model_id)


def get_default_engine() -> Engine:
    """The process-wide engine that the Python API and the CLI share."""
    global _DEFAULT_ENGINE
    with _DEFAULT_LOCK:
        if _DEFAULT_ENGINE is None:
            _DEFAULT_ENGINE = Engine()
        return _DEFAULT_ENGINE
