"""OpenAI-compatible routes: ``GET /v1/models``, ``POST /v1/images/generations`` and ``POST /v1/images/edits``.

The official ``openai`` client works against them unchanged. Images come back as artifact URLs or inline base64
(``response_format``). Beyond OpenAI's fields, ``negative_prompt``, ``seed``, ``num_inference_steps``,
``guidance_scale`` and ``backend`` are accepted.

Bodies and forms are parsed by the schemas below (types, enums, ranges; unknown fields are errors), and the job's
GenerateRequest is built through the same schema as ``POST /v1/generate``, so a bad value is a 400 before any job
is recorded. That request building and the ``{created, data}`` answer serve ``POST /v1/videos/generations`` too.
"""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from marshmallow import fields, validate

from omnirt.api.errors import ApiError, json_object
from omnirt.api.generate import accepted, failed_response
from omnirt.api.presenters import artifact_url
from omnirt.api.services import backplane
from omnirt.api.submission import submit, wait_for
from omnirt.contracts.schemas import (
    LEGACY_BACKEND_NAMES,
    MAX_NAME_LENGTH,
    GenerateRequestSchema,
    RequestBodySchema,
    SafeString,
)
from omnirt.contracts.types import BACKENDS, GenerateRequest
from omnirt.jobs.job import Job, JobState
from omnirt.registry.aliases import alias_map, resolve_alias
from omnirt.registry.registry import list_available_models, tasks_of
from omnirt.registry.spec import TIERS, ModelSpec

bp = Blueprint("openai", __name__)

EXTRA_CONFIG = ("seed", "num_inference_steps", "guidance_scale")
SIZE_PATTERN = re.compile(r"^(auto|[0-9]{1,5}x[0-9]{1,5})$", re.IGNORECASE)


@bp.get("/v1/models")
def models() -> Any:
    """OpenAI-style model list (aliases with include_aliases=true).
    ---
    get:
      parameters:
        - {in: query, name: tier, schema: {type: string, enum: [all, core, adjacent, experimental]}}
        - {in: query, name: include_aliases, schema: {type: boolean}}
      responses: {200: {description: "{object: list, data: [...]}"}}
    """
    tier = request.args.get("tier") or None
    if tier not in (None, "all", *TIERS):
        raise ApiError(400, "invalid_request", f"Unknown tier '{tier}'.")
    include_aliases = request.args.get("include_aliases", "false").lower() in ("1", "true", "yes")
    settings = current_app.config["OMNIRT_SETTINGS"]

    def listed(spec: ModelSpec) -> bool:
        if tier not in (None, "all") and spec.tier != tier:
            return False
        if settings.model_tiers and spec.tier not in settings.model_tiers:
            return False
        return not settings.models or spec.id in settings.models

    data = [
        _model_entry(spec.id, spec) for spec in list_available_models(include_aliases=include_aliases) if listed(spec)
    ]
    if include_aliases:  # OpenAI's names and the operator's map, each beside the model it stands for
        every = list_available_models()
        for name, target in alias_map(settings).items():
            specs = [spec for spec in every if spec.id == target]
            data += [{**_model_entry(name, spec), "alias_of": spec.id} for spec in specs if listed(spec)]
    return jsonify({"object": "list", "data": data})


def _model_entry(name: str, spec: ModelSpec) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": "omnirt",
        "task": spec.task,
        "status": spec.status,
        "tier": spec.tier,
        "maturity": spec.capabilities.maturity,
        "default_backend": spec.default_backend,
        "summary": spec.capabilities.summary,
    }


class ImageGenerationSchema(RequestBodySchema):
    """``POST /v1/images/generations`` (JSON): OpenAI's fields and OmniRT's extras, typed and bounded."""

    model = SafeString(required=True, max_length=MAX_NAME_LENGTH)
    prompt = SafeString(required=True)
    negative_prompt = SafeString(load_default=None)
    n = fields.Integer(strict=True, load_default=None, validate=validate.Range(1, 16))
    size = fields.String(load_default=None, validate=validate.Regexp(SIZE_PATTERN, error="Expected WIDTHxHEIGHT."))
    response_format = fields.String(load_default="url", validate=validate.OneOf(["url", "b64_json"]))
    output_format = fields.String(load_default="png", validate=validate.OneOf(["png"]))
    backend = fields.String(load_default="auto", validate=validate.OneOf([*BACKENDS, *LEGACY_BACKEND_NAMES]))
    seed = fields.Integer(strict=True, load_default=None, validate=validate.Range(0, 2**63 - 1))
    num_inference_steps = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=1))
    guidance_scale = fields.Float(load_default=None, validate=validate.Range(min=0))
    # OpenAI fields accepted and ignored:
    user = SafeString(load_default=None, max_length=MAX_NAME_LENGTH)
    quality = SafeString(load_default=None, max_length=MAX_NAME_LENGTH)
    style = SafeString(load_default=None, max_length=MAX_NAME_LENGTH)


class ImageEditFormSchema(ImageGenerationSchema):
    """``POST /v1/images/edits`` (multipart form, the files apart): the same fields, numbers sent as text."""

    n = fields.Integer(load_default=None, validate=validate.Range(1, 16))
    seed = fields.Integer(load_default=None, validate=validate.Range(0, 2**63 - 1))
    num_inference_steps = fields.Integer(load_default=None, validate=validate.Range(min=1))


def openai_generate_request(
    task: str,
    options: dict[str, Any],
    inputs: dict[str, Any],
    extra_config: tuple[str, ...],
    config: dict[str, Any] | None = None,
) -> GenerateRequest:
    """The GenerateRequest for parsed OpenAI-style options, through the schema ``/v1/generate`` uses: ``config``
    plus the options named in ``extra_config`` that are set, ``size`` (``WIDTHxHEIGHT``) as width and height, and
    ``negative_prompt`` among the inputs."""
    config = {**(config or {}), **{name: options[name] for name in extra_config if options[name] is not None}}
    if options["size"] not in (None, "auto"):
        width, _, height = options["size"].lower().partition("x")
        config.update(width=int(width), height=int(height))
    if options["negative_prompt"] is not None:
        inputs = {**inputs, "negative_prompt": options["negative_prompt"]}
    return GenerateRequestSchema().load(
        {"task": task, "model": options["model"], "backend": options["backend"], "inputs": inputs, "config": config}
    )


def _generate_request(task: str, options: dict[str, Any], inputs: dict[str, Any]) -> GenerateRequest:
    """The GenerateRequest for parsed image options; ``n`` is the number of images per prompt."""
    images = {} if options["n"] is None else {"num_images_per_prompt": options["n"]}
    return openai_generate_request(task, options, inputs, EXTRA_CONFIG, images)


def openai_media_response(job: Job, kind: str, response_format: str) -> Any:
    """OpenAI's ``{created, data}`` over the job's ``kind`` artifacts (``url`` or ``b64_json`` by
    ``response_format``) for a job that succeeded; its error when it failed; the job record (202, as
    ``POST /v1/generate`` answers) when it is still running at the server's sync timeout."""
    if not job.terminal:
        return accepted(job, True)
    if job.state != JobState.SUCCEEDED:
        return failed_response(job)
    data = []
    for artifact in job.result["outputs"]:
        if artifact["kind"] != kind:
            continue
        if response_format == "b64_json":
            data.append({"b64_json": base64.b64encode(Path(artifact["path"]).read_bytes()).decode("ascii")})
        else:
            data.append({"url": artifact_url(job.id, artifact["path"])})
    return jsonify({"created": int(time.time()), "data": data})


def run_synchronously(request_: GenerateRequest) -> Job:
    """Queue the request and wait for it up to the sync timeout; the job as it then is."""
    job, _ = submit(backplane(), request_)
    return wait_for(backplane(), job.id, current_app.config["OMNIRT_SETTINGS"].sync_timeout_s) or job


@bp.post("/v1/images/generations")
def images_generations() -> Any:
    """OpenAI images.generate.
    ---
    post:
      requestBody: {content: {application/json: {schema: ImageGenerationSchema}}}
      responses:
        200: {description: "{created, data: [{url} | {b64_json}]}"}
        400: {description: Invalid request, content: {application/json: {schema: Error}}}
        202: {description: Not ready within the sync timeout, content: {application/json: {schema: Job}}}
        403: {description: Model not enabled, content: {application/json: {schema: Error}}}
    """
    options = ImageGenerationSchema().load(json_object())
    generate_request = _generate_request("text2image", options, {"prompt": options["prompt"]})
    return openai_media_response(run_synchronously(generate_request), "image", options["response_format"])


def _data_url(upload: Any) -> str:
    content = upload.read()
    mime = upload.mimetype if upload.mimetype and upload.mimetype.startswith("image/") else "image/png"
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


@bp.post("/v1/images/edits")
def images_edits() -> Any:
    """OpenAI images.edit (multipart): inpaint with a mask, else the model's edit or image2image task.
    ---
    post:
      description: The form fields below plus the `image` file (required) and an optional `mask` file.
      requestBody: {content: {multipart/form-data: {schema: ImageEditFormSchema}}}
      responses:
        200: {description: "{created, data: [{url} | {b64_json}]}"}
        400: {description: Invalid request, content: {application/json: {schema: Error}}}
        202: {description: Not ready within the sync timeout, content: {application/json: {schema: Job}}}
        403: {description: Model not enabled, content: {application/json: {schema: Error}}}
    """
    options = ImageEditFormSchema().load(request.form.to_dict())
    upload = request.files.get("image") or request.files.get("image[]")
    if upload is None:
        raise ApiError(400, "invalid_request", "An image file is required.")
    inputs: dict[str, Any] = {"prompt": options["prompt"], "image": _data_url(upload)}
    mask = request.files.get("mask")
    model = resolve_alias(options["model"], backplane().settings)
    if mask is not None:
        inputs["mask"] = _data_url(mask)
        task = "inpaint"
    else:
        task = "edit" if "edit" in tasks_of(model) else "image2image"
    generate_request = _generate_request(task, options, inputs)
    return openai_media_response(run_synchronously(generate_request), "image", options["response_format"])
