"""OpenAI-compatible routes: ``GET /v1/models``, ``POST /v1/images/generations`` and ``POST /v1/images/edits``.

The official ``openai`` client works against them unchanged. Images come back as artifact URLs or inline base64
(``response_format``). Beyond OpenAI's fields, ``negative_prompt``, ``seed``, ``num_inference_steps``,
``guidance_scale`` and ``backend`` are accepted.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from omnirt.api.errors import ApiError, error_response, status_for
from omnirt.api.presenters import artifact_url
from omnirt.api.submission import submit, wait_for
from omnirt.contracts.types import GenerateRequest
from omnirt.jobs.job import Job, JobState
from omnirt.registry.registry import list_available_models, tasks_of
from omnirt.registry.spec import TIERS

bp = Blueprint("openai", __name__)

EXTRA_CONFIG = {"seed": int, "num_inference_steps": int, "guidance_scale": float}
IGNORED_FIELDS = ("user", "quality", "style")


def backplane() -> Any:
    return current_app.extensions["omnirt"]


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
    data = []
    for spec in list_available_models(include_aliases=include_aliases, tier=tier):
        if settings.model_tiers and spec.tier not in settings.model_tiers:
            continue
        if settings.models and spec.id not in settings.models:
            continue
        data.append(
            {
                "id": spec.id,
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
        )
    return jsonify({"object": "list", "data": data})


def _size(value: Any) -> dict[str, int]:
    if value in (None, "", "auto"):
        return {}
    width, _, height = str(value).lower().partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise ApiError(400, "invalid_request", f"Invalid size format '{value}'; expected WIDTHxHEIGHT.")
    return {"width": int(width), "height": int(height)}


def _options(fields: dict[str, Any]) -> tuple[dict[str, Any], str]:
    config = _size(fields.get("size"))
    if fields.get("n") not in (None, ""):
        config["num_images_per_prompt"] = int(fields["n"])
    for name, kind in EXTRA_CONFIG.items():
        if fields.get(name) not in (None, ""):
            config[name] = kind(fields[name])
    response_format = fields.get("response_format") or "url"
    if response_format not in ("url", "b64_json"):
        raise ApiError(400, "invalid_request", "response_format must be url or b64_json.")
    output_format = fields.get("output_format") or "png"
    if output_format != "png":
        raise ApiError(400, "invalid_request", "Only output_format=png is produced.")
    return config, response_format


def _images_response(job: Job | None, response_format: str) -> Any:
    if job is None or not job.terminal:
        return error_response(
            503,
            "timeout",
            "The image was not ready within the server's sync timeout.",
            {"job_id": job.id if job else None},
        )
    if job.state != JobState.SUCCEEDED:
        error = job.error or {"code": "cancelled", "message": "The job was cancelled.", "details": {}}
        return error_response(status_for(error["code"]), error["code"], error["message"], {"job_id": job.id})
    data = []
    for artifact in job.result["outputs"]:
        if artifact["kind"] != "image":
            continue
        if response_format == "b64_json":
            data.append({"b64_json": base64.b64encode(Path(artifact["path"]).read_bytes()).decode("ascii")})
        else:
            data.append({"url": artifact_url(job.id, artifact["path"])})
    return jsonify({"created": int(time.time()), "data": data})


def _run(request_: GenerateRequest) -> Job | None:
    job, _ = submit(backplane(), request_)
    return wait_for(backplane(), job.id, current_app.config["OMNIRT_SETTINGS"].sync_timeout_s)


@bp.post("/v1/images/generations")
def images_generations() -> Any:
    """OpenAI images.generate.
    ---
    post:
      requestBody: {content: {application/json: {schema: {type: object, required: [model, prompt]}}}}
      responses:
        200: {description: "{created, data: [{url} | {b64_json}]}"}
        400: {description: Invalid request, content: {application/json: {schema: Error}}}
    """
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "The body must be a JSON object.")
    known = {
        "model",
        "prompt",
        "n",
        "size",
        "response_format",
        "output_format",
        "negative_prompt",
        "backend",
        *EXTRA_CONFIG,
        *IGNORED_FIELDS,
    }
    unknown = sorted(set(body) - known)
    if unknown:
        raise ApiError(400, "invalid_request", f"Unsupported fields: {', '.join(unknown)}.")
    if not body.get("model") or not body.get("prompt"):
        raise ApiError(400, "invalid_request", "model and prompt are required.")
    config, response_format = _options(body)
    inputs = {"prompt": body["prompt"]}
    if body.get("negative_prompt"):
        inputs["negative_prompt"] = body["negative_prompt"]
    generate_request = GenerateRequest(
        task="text2image", model=str(body["model"]), backend=body.get("backend") or "auto", inputs=inputs, config=config
    )
    return _images_response(_run(generate_request), response_format)


def _data_url(upload: Any) -> str:
    content = upload.read()
    mime = upload.mimetype if upload.mimetype and upload.mimetype.startswith("image/") else "image/png"
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


@bp.post("/v1/images/edits")
def images_edits() -> Any:
    """OpenAI images.edit (multipart): inpaint with a mask, else the model's edit or image2image task.
    ---
    post:
      requestBody: {content: {multipart/form-data: {schema: {type: object, required: [model, prompt, image]}}}}
      responses:
        200: {description: "{created, data: [{url} | {b64_json}]}"}
        400: {description: Invalid request, content: {application/json: {schema: Error}}}
    """
    form = request.form
    upload = request.files.get("image") or request.files.get("image[]")
    if not form.get("model") or not form.get("prompt") or upload is None:
        raise ApiError(400, "invalid_request", "model, prompt and an image file are required.")
    config, response_format = _options(form)
    inputs: dict[str, Any] = {"prompt": form["prompt"], "image": _data_url(upload)}
    mask = request.files.get("mask")
    model = current_app.config["OMNIRT_SETTINGS"].model_aliases.get(form["model"], form["model"])
    tasks = tasks_of(model)
    if mask is not None:
        inputs["mask"] = _data_url(mask)
        task = "inpaint"
    else:
        task = "edit" if "edit" in tasks else "image2image"
    generate_request = GenerateRequest(
        task=task, model=form["model"], backend=form.get("backend") or "auto", inputs=inputs, config=config
    )
    return _images_response(_run(generate_request), response_format)
