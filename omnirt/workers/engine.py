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
from pathlib import Path
from typing import Any

from omnirt.contracts.types import GenerateRequest, GenerateResult, RunReport
from omnirt.models.base import CancelCheck, EventSink, RunContext
from omnirt.registry.spec import ModelSpec
from omnirt.registry.validation import ValidationResult, resolve_config, validate_request
from omnirt.runtime.adapters import adapter_fingerprint
from omnirt.runtime.backends import Backend, resolve_backend
from omnirt.runtime.cache import CacheKey, WarmPipelineCache
from omnirt.runtime.compile import compile_key
from omnirt.runtime.dtypes import choose_dtype
from omnirt.runtime.memory import ensure_memory_budget
from omnirt.runtime.placement import placement_key
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
        ctx.emit("stage_start", "load")
        load_started = time.perf_counter()
        entry, warm = self.cache.get_or_load(
            key, lambda: self._load(spec, source, resolved_backend, dtype, config, request)
        )
        report.timings["load_ms"] = round((time.perf_counter() - load_started) * 1000, 3)
        ctx.emit("stage_end", "load", warm=warm, elapsed_ms=report.timings["load_ms"])
        if warm:
            report.cache_hits.append("pipeline")
        with entry.lock:
            entry.uses += 1
            return entry.pipeline.run(ctx, report)

    def configure(self, settings: Any) -> None:
        """Take the process settings that apply to runs: torch threads, the request limits, and the warm cache's
        size, idle unload and memory budget (models already loaded stay loaded)."""
        self.torch_threads = settings.torch_threads
        self.limits = dict(settings.limits)
        self.cache.resize(
            settings.cache_size, idle_unload_s=settings.idle_unload_s, memory_budget_gb=settings.memory_budget_gb
        )

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
            spec.canonical_id,
            source.location,
            dtype,
            f"{placement_key(backend, config)}|{compile_key(backend, config)}",
            adapter_fingerprint(request.adapters),
        )

    def weights_for(self, spec: ModelSpec, config: dict[str, Any]) -> WeightsSource:
        if spec.weightless:
            return WeightsSource(location="", origin="none")
        return resolve_weights(
            spec.canonical_id,
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
