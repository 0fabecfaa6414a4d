"""``POST /v1/videos/generations``: OmniRT's OpenAI-style video route, text to video or image to video.

With an ``image`` the job is ``image2video``, without one ``text2video``. The image comes as a ``data:`` URL, as bare
base64 of a PNG, JPEG or WebP picture (wrapped into a ``data:`` URL here), or as a path under ``OMNIRT_INPUT_ROOTS``;
the submission service refuses anything else. Videos come back as artifact URLs or inline base64
(``response_format``), in OpenAI's ``{created, data}`` shape; a job still running at the sync timeout answers 202 with
its record, as the image routes do.
"""

from __future__ import annotations

import base64
import binascii
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, jsonify
from marshmallow import fields, validate

from omnirt.api.errors import json_object
from omnirt.api.generate import accepted, failed_response
from omnirt.api.openai import SIZE_PATTERN
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

bp = Blueprint("videos", __name__)

EXTRA_CONFIG = ("num_frames", "fps", "seed", "num_inference_steps", "guidance_scale")
MAX_IMAGE_TEXT = 2**31 - 1  # the request body cap (OMNIRT_MAX_REQUEST_BYTES) is the real bound


class VideoGenerationSchema(RequestBodySchema):
    """``POST /v1/videos/generations`` (JSON): typed and bounded; unknown fields are errors."""

    model = SafeString(required=True, max_length=MAX_NAME_LENGTH)
    prompt = SafeString(required=True)
    negative_prompt = SafeString(load_default=None)
    image = SafeString(
        load_default=None,
        max_length=MAX_IMAGE_TEXT,
        metadata={"description": "First frame: a data: URL, base64 of a PNG/JPEG/WebP, or a path under an input root."},
    )
    num_frames = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=1))
    fps = fields.Integer(strict=True, load_default=None, validate=validate.Range(1, 120))
    size = fields.String(load_default=None, validate=validate.Regexp(SIZE_PATTERN, error="Expected WIDTHxHEIGHT."))
    seed = fields.Integer(strict=True, load_default=None, validate=validate.Range(0, 2**63 - 1))
    num_inference_steps = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=1))
    guidance_scale = fields.Float(load_default=None, validate=validate.Range(min=0))
    response_format = fields.String(load_default="url", validate=validate.OneOf(["url", "b64_json"]))
    backend = fields.String(load_default="auto", validate=validate.OneOf([*BACKENDS, *LEGACY_BACKEND_NAMES]))
    user = SafeString(load_default=None, max_length=MAX_NAME_LENGTH)  # OpenAI's; accepted and ignored


def image_input(image: str) -> str:
    """``image`` as the submission service takes it: bare base64 of a picture becomes a ``data:`` URL; a ``data:``
    URL or anything else (a path, checked against the input roots there) is passed on as it is."""
    if image.startswith("data:"):
        return image
    prefix = image[:64]
    try:
        head = base64.b64decode(prefix[: len(prefix) // 4 * 4], validate=True)
    except (binascii.Error, ValueError):
        return image
    mime = picture_type(head)
    return f"data:{mime};base64,{image}" if mime else image


def picture_type(head: bytes) -> str | None:
    """The media type of a PNG, JPEG or WebP picture from its first bytes; None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def video_request(options: dict[str, Any]) -> GenerateRequest:
    """The GenerateRequest for parsed options, through the schema ``POST /v1/generate`` uses."""
    inputs: dict[str, Any] = {"prompt": options["prompt"]}
    if options["negative_prompt"] is not None:
        inputs["negative_prompt"] = options["negative_prompt"]
    if options["image"] is not None:
        inputs["image"] = image_input(options["image"])
    config: dict[str, Any] = {name: options[name] for name in EXTRA_CONFIG if options[name] is not None}
    if options["size"] not in (None, "auto"):
        width, _, height = options["size"].lower().partition("x")
        config.update(width=int(width), height=int(height))
    task = "image2video" if "image" in inputs else "text2video"
    return GenerateRequestSchema().load(
        {"task": task, "model": options["model"], "backend": options["backend"], "inputs": inputs, "config": config}
    )


def videos_response(job: Job, response_format: str) -> Any:
    """``{created, data}`` for a job that succeeded, its error when it failed, the job record (202) while it runs."""
    if not job.terminal:
        return accepted(job, True)
    if job.state != JobState.SUCCEEDED:
        return failed_response(job)
    data = []
    for artifact in job.result["outputs"]:
        if artifact["kind"] != "video":
            continue
        if response_format == "b64_json":
            data.append({"b64_json": base64.b64encode(Path(artifact["path"]).read_bytes()).decode("ascii")})
        else:
            data.append({"url": artifact_url(job.id, artifact["path"])})
    return jsonify({"created": int(time.time()), "data": data})


@bp.post("/v1/videos/generations")
def videos_generations() -> Any:
    """Text to video, or image to video when `image` is given.
    ---
    post:
      requestBody: {content: {application/json: {schema: VideoGenerationSchema}}}
      responses:
        200: {description: "{created, data: [{url} | {b64_json}]} (video/mp4)"}
        202: {description: Not ready within the sync timeout, content: {application/json: {schema: Job}}}
        400: {description: Invalid request, content: {application/json: {schema: Error}}}
        403: {description: Model not enabled, content: {application/json: {schema: Error}}}
    """
    options = VideoGenerationSchema().load(json_object())
    plane = backplane()
    job, _ = submit(plane, video_request(options))
    finished = wait_for(plane, job.id, plane.settings.sync_timeout_s) or job
    return videos_response(finished, options["response_format"])
