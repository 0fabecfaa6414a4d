"""Turning an HTTP request into a queued job: parse, resolve the model, apply policy, make inputs safe, validate,
record, dispatch; and waiting for a job to finish for synchronous callers.

Nothing a client names is trusted: inputs arrive as ``data:`` URLs (written into the job's own folder) or as paths
under ``OMNIRT_INPUT_ROOTS``; ``model_path`` and adapter paths must lie in the models dir (or be hub ids);
``output_dir`` is the server's business. URLs are never fetched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from marshmallow import fields, post_load, validate

from omnirt.api.errors import ApiError
from omnirt.backplane import Backplane
from omnirt.contracts.errors import ModelNotRegisteredError
from omnirt.contracts.schemas import GenerateRequestSchema
from omnirt.contracts.types import GenerateRequest
from omnirt.events.bus import TERMINAL_EVENTS, job_event
from omnirt.jobs.job import Job, JobState, new_job_id
from omnirt.registry.registry import get_model
from omnirt.registry.validation import PATH_INPUTS, validate_request
from omnirt.runtime.weights import default_models_dir
from omnirt.settings import Settings
from omnirt.tasks.routing import choose_queue

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
    """Apply the server's alias map and the tier / model policy."""
    model = settings.model_aliases.get(request.model, request.model)
    try:
        spec = get_model(model, request.task)
    except ModelNotRegisteredError:
        request.model = model
        return request  # validation reports it, with suggestions
    if settings.model_tiers and spec.tier not in settings.model_tiers:
        raise ApiError(
            403,
            "model_not_enabled",
            f"Model '{spec.id}' is not enabled for this server's tier policy.",
            {"tier": spec.tier, "allowed_tiers": list(settings.model_tiers)},
        )
    if settings.models and spec.id not in settings.models and spec.canonical_id not in settings.models:
        raise ApiError(
            403,
            "model_not_enabled",
            f"Model '{spec.id}' is not enabled on this server.",
            {"enabled_models": list(settings.models)},
        )
    request.model = model
    return request


def _input_roots() -> list[Path]:
    return [Path(root).resolve() for root in os.environ.get("OMNIRT_INPUT_ROOTS", "").split(os.pathsep) if root]


def _inside(path: Path, roots: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == root or root in resolved.parents for root in roots)


def materialize_inputs(request: GenerateRequest, job_dir: Path, settings: Settings) -> GenerateRequest:
    """Write ``data:`` URL inputs into the job's folder and check every other path against the allowed roots."""
    inputs = dict(request.inputs)
    for key in PATH_INPUTS:
        values = inputs.get(key)
        if values is None:
            continue
        items = values if isinstance(values, list) else [values]
        resolved = []
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise ApiError(400, "invalid_request", f"inputs.{key} must be a data: URL or an allowed path.")
            if item.startswith("data:"):
                resolved.append(str(_write_data_url(item, job_dir / "inputs", f"{key}-{index}")))
            elif item.startswith(("http://", "https://", "ftp://", "file:")):
                raise ApiError(400, "invalid_request", f"inputs.{key}: URLs are not fetched; send a data: URL.")
            elif _inside(Path(item), _input_roots()):
                resolved.append(str(Path(item).resolve()))
            else:
                raise ApiError(
                    400,
                    "invalid_request",
                    f"inputs.{key}: server paths are only accepted under OMNIRT_INPUT_ROOTS; "
                    "send the file as a data: URL.",
                )
        inputs[key] = resolved if isinstance(values, list) else resolved[0]
    config = dict(request.config)
    if "output_dir" in config:
        raise ApiError(400, "invalid_request", "config.output_dir is chosen by the server.")
    models_root = default_models_dir().resolve()
    model_path = config.get("model_path")
    if model_path is not None:
        path = Path(str(model_path))
        hub_like = re.fullmatch(r"[\w.-]+/[\w.-]+", str(model_path)) and not path.exists()
        if not hub_like and not _inside(path if path.is_absolute() else models_root / path, [models_root]):
            raise ApiError(400, "invalid_request", "config.model_path must be a hub id or lie in the models dir.")
        if not hub_like and not path.is_absolute():
            config["model_path"] = str(models_root / path)
    for adapter in request.adapters or []:
        if adapter.path.startswith(("hf://", "https://huggingface.co/")):
            continue
        if not _inside(Path(adapter.path), [models_root]):
            raise ApiError(400, "invalid_request", "Adapter paths must be hf:// references or lie in the models dir.")
    return GenerateRequest(
        task=request.task,
        model=request.model,
        backend=request.backend,
        inputs=inputs,
        config=config,
        adapters=request.adapters,
    )


def _write_data_url(url: str, folder: Path, stem: str) -> Path:
    header, _, payload = url.partition(",")
    mime = header[5:].split(";")[0] or "application/octet-stream"
    if ";base64" not in header:
        raise ApiError(400, "invalid_request", "data: URLs must be base64-encoded.")
    try:
        content = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "invalid_request", f"Invalid base64 in data: URL ({exc}).") from None
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
        raise ApiError(
            429, "too_many_queued", f"{queued} jobs are queued; try again later.", headers={"Retry-After": "5"}
        )
    job_id = job_id or new_job_id()
    job_dir = settings.artifact_dir.resolve() / job_id
    safe = materialize_inputs(request, job_dir, settings)
    validation = validate_request(safe, probe_backend=False)
    if not validation.ok:
        shutil.rmtree(job_dir / "inputs", ignore_errors=True)
        validation.raise_for_errors()
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
    stored, created = backplane.store.create(job, event=job_event("job_enqueued", job_id=job.id, queue=queue_name))
    if not created:
        shutil.rmtree(job_dir, ignore_errors=True)
        return _same_or_conflict(stored, print_), False
    backplane.dispatcher.dispatch(job)
    return stored, True


def _same_or_conflict(existing: Job, print_: str) -> Job:
    if existing.fingerprint and existing.fingerprint != print_:
        raise ApiError(
            409, "conflict", f"Job '{existing.id}' already exists with a different request.", {"job_id": existing.id}
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
