"""The job submission service: parse, resolve the model, apply policy, make inputs safe, validate,
record, dispatch; and waiting for a job to finish for synchronous callers.

Nothing a client names is trusted: inputs arrive as ``data:`` URLs (written into the job's own folder) or as paths
under ``OMNIRT_INPUT_ROOTS``; ``model_path`` and adapter paths must lie in the models dir (or be hub ids; the
same check a fleet worker makes again, :func:`omnirt.runtime.weights.resolve_model_path`); ``output_dir`` is the
server's business. URLs are never fetched. Errors name the input (``inputs.image``), never a server path.

It knows nothing of HTTP (no Flask): it raises the domain errors of :mod:`omnirt.contracts.errors`
(``invalid_request``, ``model_not_enabled``, ``too_many_queued``, ``conflict``, ...), which the API maps to statuses
in one place (:mod:`omnirt.api.errors`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from marshmallow import fields, post_load, validate

from omnirt.backplane import Backplane
from omnirt.contracts.errors import (
    JobConflictError,
    ModelNotEnabledError,
    ModelNotRegisteredError,
    RequestValidationError,
    TooManyQueuedError,
)
from omnirt.contracts.schemas import GenerateRequestSchema
from omnirt.contracts.types import AdapterRef, GenerateRequest
from omnirt.events.bus import TERMINAL_EVENTS, job_event
from omnirt.jobs.batching import batch_key
from omnirt.jobs.job import Job, JobState, new_job_id
from omnirt.registry.aliases import resolve_alias
from omnirt.registry.registry import get_model
from omnirt.registry.validation import PATH_INPUTS, ValidationResult, validate_request
from omnirt.runtime.weights import checked_path_text, default_models_dir, path_in_models_dir, resolve_model_path
from omnirt.settings import Settings
from omnirt.tasks.routing import choose_queue
from omnirt.tracing import current_traceparent

JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MEDIA_SUFFIX = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/mpeg": ".mp3",
    "audio/flac": ".flac",
}


class GenerateSubmissionSchema(GenerateRequestSchema):
    """``POST /v1/generate``: a GenerateRequest plus how to run it."""

    async_run = fields.Boolean(load_default=False)
    job_id = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(JOB_ID_PATTERN))
    timeout_s = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0, min_inclusive=False))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:  # type: ignore[override]
        options = {key: data.pop(key) for key in ("async_run", "job_id", "timeout_s")}
        return {"request": GenerateRequest(**data), **options}


def fingerprint(request: GenerateRequest) -> str:
    return hashlib.sha256(json.dumps(request.to_dict(), sort_keys=True, default=str).encode()).hexdigest()


def resolve_model(request: GenerateRequest, settings: Settings) -> GenerateRequest:
    """Apply the server's aliases (:mod:`omnirt.registry.aliases`) and the tier / model policy."""
    model = resolve_alias(request.model, settings)
    try:
        spec = get_model(model, request.task)
    except ModelNotRegisteredError:
        request.model = model
        return request  # validation reports it, with suggestions
    if settings.model_tiers and spec.tier not in settings.model_tiers:
        raise ModelNotEnabledError(
            f"Model '{spec.id}' is not enabled for this server's tier policy.",
            details={"tier": spec.tier, "allowed_tiers": list(settings.model_tiers)},
        )
    if settings.models and spec.id not in settings.models and spec.canonical_id not in settings.models:
        raise ModelNotEnabledError(
            f"Model '{spec.id}' is not enabled on this server.",
            details={"enabled_models": list(settings.models)},
        )
    request.model = model
    return request


def _inside(path: Path, roots: list[Path]) -> bool:
    """Whether the real path of ``path`` (symlinks followed) is one of ``roots`` or lies under one."""
    try:
        resolved = path.resolve()
    except (OSError, ValueError):
        return False
    return any(resolved == root or root in resolved.parents for root in roots)


@contextmanager
def _client_path_errors() -> Iterator[None]:
    """A refused client path (:mod:`omnirt.runtime.weights`) as the API's 400 ``invalid_request``."""
    try:
        yield
    except RequestValidationError as exc:
        raise RequestValidationError(exc.message, details=exc.details) from None


def materialize_inputs(request: GenerateRequest, job_dir: Path, settings: Settings) -> GenerateRequest:
    """Write ``data:`` URL inputs into the job's folder, check every other input path against the allowed roots,
    and resolve ``config.model_path`` and adapter paths (:func:`omnirt.runtime.weights.resolve_model_path`). A path
    that is not a non-empty string, holds a NUL byte or is over-long is refused before anything touches the disk."""
    input_roots = [root.resolve() for root in settings.input_roots]
    inputs = dict(request.inputs)
    for key in PATH_INPUTS:
        values = inputs.get(key)
        if values is None:
            continue
        items = values if isinstance(values, list) else [values]
        resolved = []
        for index, item in enumerate(items):
            field = f"inputs.{key}"
            if not isinstance(item, str) or "\x00" in item:
                raise RequestValidationError(f"{field} must be a data: URL or an allowed path.")
            if item.startswith("data:"):
                resolved.append(str(_write_data_url(item, job_dir / "inputs", f"{key}-{index}")))
                continue
            with _client_path_errors():
                checked_path_text(item, field)
            if item.startswith(("http://", "https://", "ftp://", "file:")):
                raise RequestValidationError(f"{field}: URLs are not fetched; send a data: URL.")
            if not _inside(Path(item), input_roots):
                raise RequestValidationError(
                    f"{field}: server paths are only accepted under OMNIRT_INPUT_ROOTS; send the file as a data: URL.",
                )
            resolved.append(str(Path(item).resolve()))
        inputs[key] = resolved if isinstance(values, list) else resolved[0]
    config = dict(request.config)
    if "output_dir" in config:
        raise RequestValidationError("config.output_dir is chosen by the server.")
    models_root = default_models_dir()
    with _client_path_errors():
        if config.get("model_path") is not None:
            config["model_path"] = resolve_model_path(config["model_path"], models_root)
        adapters = [
            _checked_adapter(adapter, index, models_root) for index, adapter in enumerate(request.adapters or [])
        ]
    return GenerateRequest(
        task=request.task,
        model=request.model,
        backend=request.backend,
        inputs=inputs,
        config=config,
        adapters=adapters if request.adapters is not None else None,
    )


def _checked_adapter(adapter: AdapterRef, index: int, models_root: Path) -> AdapterRef:
    """An adapter reference as stored: an ``hf://`` or huggingface.co reference unchanged, else the real path of a
    file or folder inside the models dir (a relative path is relative to it)."""
    field = f"adapters[{index}].path"
    path = checked_path_text(adapter.path, field)
    if path.startswith(("hf://", "https://huggingface.co/")):
        return adapter
    try:
        real = path_in_models_dir(path, models_root, field=field)
    except RequestValidationError:
        raise RequestValidationError(
            f"{field} must be an hf:// reference or lie in the models dir.", details={"field": field}
        ) from None
    return AdapterRef(kind=adapter.kind, path=str(real), scale=adapter.scale)


def _path_names(request: GenerateRequest) -> dict[str, str]:
    """Each server path in a materialized request -> what the client called it (``inputs.image``,
    ``config.model_path``), so that error messages name the input instead of showing server paths."""
    names: dict[str, str] = {}
    for key in PATH_INPUTS:
        values = request.inputs.get(key)
        items = values if isinstance(values, list) else [values]
        for index, item in enumerate(items):
            if isinstance(item, str):
                names[item] = f"inputs.{key}[{index}]" if isinstance(values, list) else f"inputs.{key}"
    model_path = request.config.get("model_path")
    if isinstance(model_path, str) and Path(model_path).is_absolute():
        names[model_path] = "config.model_path"
    for index, adapter in enumerate(request.adapters or []):
        names[adapter.path] = f"adapters[{index}].path"
    return names


def _naming_inputs(value: Any, names: dict[str, str]) -> Any:
    """``value`` (a message, or JSON-like details) with every server path in ``names`` replaced by its name."""
    if isinstance(value, str):
        for path in sorted(names, key=len, reverse=True):  # longest first: no path is cut by a shorter one
            value = value.replace(path, names[path])
        return value
    if isinstance(value, dict):
        return {key: _naming_inputs(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_naming_inputs(item, names) for item in value]
    return value


def _raise_naming_inputs(validation: ValidationResult, request: GenerateRequest) -> None:
    """Raise the validation errors of the materialized ``request``, naming inputs instead of their server paths."""
    try:
        validation.raise_for_errors()
    except RequestValidationError as exc:
        names = _path_names(request)
        raise RequestValidationError(
            _naming_inputs(exc.message, names), details=_naming_inputs(exc.details, names)
        ) from None


def _write_data_url(url: str, folder: Path, stem: str) -> Path:
    header, _, payload = url.partition(",")
    mime = header[5:].split(";")[0] or "application/octet-stream"
    if ";base64" not in header:
        raise RequestValidationError("data: URLs must be base64-encoded.")
    try:
        content = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestValidationError(f"Invalid base64 in data: URL ({exc}).") from None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}{MEDIA_SUFFIX.get(mime, '.bin')}"
    path.write_bytes(content)
    return path


def submit(
    backplane: Backplane,
    request: GenerateRequest,
    *,
    job_id: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[Job, bool]:
    """Queue ``request``; returns (job, created). A reused job id or idempotency key returns the first job."""
    settings = backplane.settings
    request = resolve_model(request, settings)
    print_ = fingerprint(request)
    if job_id or idempotency_key:
        existing = backplane.store.get(job_id) if job_id else None
        if existing is not None:
            return _same_or_conflict(existing, print_), False
    queued = backplane.queued_jobs()
    if queued >= settings.max_queued_jobs:
        raise TooManyQueuedError(f"{queued} jobs are queued; try again later.")
    job_id = job_id or new_job_id()
    job_dir = settings.artifact_dir.resolve() / job_id
    safe = materialize_inputs(request, job_dir, settings)
    validation = validate_request(safe, probe_backend=False, limits=settings.limits)
    if not validation.ok:
        shutil.rmtree(job_dir / "inputs", ignore_errors=True)
        _raise_naming_inputs(validation, safe)
    spec = validation.model
    assert spec is not None
    if settings.embedded:
        queue_name, backend = "embedded", safe.backend
    else:
        queue_name, backend = choose_queue(
            spec, safe.backend, live_queues=backplane.live_queues(), default_device=settings.default_device
        )
    job = Job(
        id=job_id,
        state=JobState.QUEUED,
        model=spec.id,
        task=spec.task,
        backend=backend,
        queue=queue_name,
        request=safe.to_dict(),
        idempotency_key=idempotency_key,
        fingerprint=print_,
    )
    if settings.max_batch_size > 1:  # dynamic batching on: a compatible job may run with others in one call
        job.batch_key = batch_key(spec, safe, validation.resolved_config, backend=backend, queue=queue_name)
    traceparent = current_traceparent()
    if traceparent:  # tracing on: the job's trace is the submit's, and its worker span continues it
        job.traceparent, job.trace_id = traceparent, traceparent.split("-")[1]
    stored, created = backplane.store.create(job, event=job_event("job_enqueued", job_id=job.id, queue=queue_name))
    if not created:
        shutil.rmtree(job_dir, ignore_errors=True)
        return _same_or_conflict(stored, print_), False
    if job.batch_key:
        backplane.store.enter_lobby(job.batch_key, job.id, job.enqueued_at_ms)
    backplane.dispatcher.dispatch(job)
    return stored, True


def _same_or_conflict(existing: Job, print_: str) -> Job:
    if existing.fingerprint and existing.fingerprint != print_:
        raise JobConflictError(
            f"Job '{existing.id}' already exists with a different request.", details={"job_id": existing.id}
        )
    return existing


def wait_for(backplane: Backplane, job_id: str, timeout_s: float) -> Job | None:
    """Block until ``job_id`` ends or ``timeout_s`` passes; returns the job as it then is."""
    deadline = time.monotonic() + timeout_s
    subscription = backplane.events.subscribe(job_id, "0-0")  # replays from the start: no early read needed
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            entry = subscription.get(timeout=min(remaining, 1.0))
            if entry is not None and entry[1].event in TERMINAL_EVENTS:
                break
            if entry is None:  # quiet for a second: the record decides (its events may have expired)
                job = backplane.store.get(job_id)
                if job is None or job.terminal:
                    return job
        return backplane.store.get(job_id)
    finally:
        backplane.events.unsubscribe(subscription)
