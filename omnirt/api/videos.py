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
from typing import Any

from flask import Blueprint
from marshmallow import fields, validate

from omnirt.api.errors import json_object
from omnirt.api.openai import SIZE_PATTERN, openai_generate_request, openai_media_response, run_synchronously
from omnirt.contracts.schemas import (
    LEGACY_BACKEND_NAMES,
    MAX_NAME_LENGTH,
    RequestBodySchema,
    SafeString,
)
from omnirt.contracts.types import BACKENDS, GenerateRequest

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
    if options["image"] is not None:
        inputs["image"] = image_input(options["image"])
    task = "image2video" if "image" in inputs else "text2video"
    return openai_generate_request(task, options, inputs, EXTRA_CONFIG)


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
    return openai_media_response(run_synchronously(video_request(options)), "video", options["response_format"])
