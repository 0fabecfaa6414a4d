"""marshmallow schemas for the contracts: strict (unknown fields are errors) and lossless on a round trip.

``load`` returns the dataclasses of :mod:`omnirt.contracts.types`; ``dump`` gives plain JSON-ready dicts. The same
schemas feed the OpenAPI description.

This module also owns the rules for text a client sends, shared by every door: a string must be valid Unicode (no
lone surrogates) without NUL bytes and within a length limit (:class:`SafeString`, :class:`SafeJson`), and the text
inputs (``prompt``, ``negative_prompt``) must be strings. :class:`RequestBodySchema` is the base of the HTTP routes'
own body schemas.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, pre_load, validate, validates

from omnirt.contracts.errors import RequestValidationError
from omnirt.contracts.types import (
    BACKENDS,
    SCHEMA_VERSION,
    TASKS,
    AdapterRef,
    Artifact,
    ArtifactKind,
    ExecutionMode,
    GenerateRequest,
    GenerateResult,
    RunReport,
    StageEvent,
)

LEGACY_BACKEND_NAMES = {"cpu-stub": "cpu"}

MAX_NAME_LENGTH = 200  # model ids, voices, input and config keys
MAX_TEXT_LENGTH = 100_000  # prompts and other free text, in characters
MAX_PATH_LENGTH = 4096
TEXT_INPUTS = ("prompt", "negative_prompt")

_UNSAFE_CHARACTER = re.compile(r"[\x00\ud800-\udfff]")  # NUL, or a surrogate (never paired once decoded)


def unsafe_text_reason(text: str) -> str | None:
    """Why ``text`` may not be accepted (a NUL byte, a lone surrogate), or None when it is fine."""
    match = _UNSAFE_CHARACTER.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "Must not contain NUL bytes."
    return "Must be valid Unicode (a lone surrogate was found)."


def find_unsafe_text(value: Any) -> str | None:
    """:func:`unsafe_text_reason` for the first bad string anywhere in ``value`` (keys included); None if none.

    Iterative, so a deeply nested value cannot exhaust the stack; objects that are not JSON pass untouched.
    """
    pending, seen = [value], set()
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if reason := unsafe_text_reason(item):
                return reason
        elif isinstance(item, (dict, list, tuple)) and id(item) not in seen:
            seen.add(id(item))
            pending.extend([*item.keys(), *item.values()] if isinstance(item, dict) else item)
    return None


class SafeString(fields.String):
    """A string of valid Unicode without NUL bytes, at most ``max_length`` characters (stated in the OpenAPI)."""

    default_error_messages = {"unsafe": "{reason}"}

    def __init__(self, *, max_length: int = MAX_TEXT_LENGTH, **kwargs: Any) -> None:
        given = kwargs.pop("validate", None)
        extra = [] if given is None else [given] if callable(given) else list(given)
        super().__init__(validate=[validate.Length(max=max_length), *extra], **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if reason := unsafe_text_reason(text):
            raise self.make_error("unsafe", reason=reason)
        return text


class SafeJson(fields.Raw):
    """Any value, but every string inside it (keys included) must pass :func:`unsafe_text_reason`."""

    default_error_messages = {"unsafe": "{reason}"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if reason := find_unsafe_text(value):
            raise self.make_error("unsafe", reason=reason)
        return value


def NAME_KEYS() -> SafeString:
    return SafeString(max_length=MAX_NAME_LENGTH)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class RequestBodySchema(StrictSchema):
    """Base of the HTTP routes' body and form schemas: a null or blank value means the field was not given, so its
    default applies (a required field then reports it missing)."""

    @pre_load
    def drop_null_and_blank(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None and value != ""}
        return data


class AdapterRefSchema(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(["lora"]))
    path = SafeString(required=True, max_length=MAX_PATH_LENGTH, validate=validate.Length(min=1))
    scale = fields.Float(load_default=1.0)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> AdapterRef:
        return AdapterRef(**data)


class GenerateRequestSchema(StrictSchema):
    task = fields.String(required=True, validate=validate.OneOf(TASKS))
    model = SafeString(required=True, max_length=MAX_NAME_LENGTH, validate=validate.Length(min=1))
    backend = fields.String(load_default="auto", validate=validate.OneOf(BACKENDS))
    inputs = fields.Dict(
        keys=SafeString(max_length=MAX_NAME_LENGTH),
        values=SafeJson(allow_none=True),
        load_default=dict,
        metadata={
            "description": f"The task's inputs. {', '.join(TEXT_INPUTS)} are strings of at most {MAX_TEXT_LENGTH} "
            "characters; no string here may hold a NUL byte or a lone surrogate."
        },
    )
    config = fields.Dict(
        keys=SafeString(max_length=MAX_NAME_LENGTH),
        values=SafeJson(allow_none=True),
        load_default=dict,
        metadata={"description": "Model config; no string here may hold a NUL byte or a lone surrogate."},
    )
    adapters = fields.List(fields.Nested(AdapterRefSchema), load_default=None, allow_none=True)

    @pre_load
    def accept_legacy_backend(self, data: Any, **_: Any) -> Any:
        backend = data.get("backend") if isinstance(data, dict) else None
        if isinstance(backend, str) and backend in LEGACY_BACKEND_NAMES:
            data = {**data, "backend": LEGACY_BACKEND_NAMES[backend]}
        return data

    @validates("inputs")
    def text_inputs_are_strings(self, inputs: dict[str, Any], **_: Any) -> None:
        problems: dict[str, list[str]] = {}
        for key in TEXT_INPUTS:
            value = inputs.get(key)
            if value is not None and not isinstance(value, str):
                problems[key] = ["Not a valid string."]
            elif value is not None and len(value) > MAX_TEXT_LENGTH:
                problems[key] = [f"Longer than maximum length {MAX_TEXT_LENGTH}."]
        if problems:
            raise ValidationError(problems)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> GenerateRequest:
        return GenerateRequest(**data)


class ArtifactSchema(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf([kind.value for kind in ArtifactKind]))
    path = fields.String(required=True)
    mime = fields.String(required=True)
    width = fields.Integer(allow_none=True, load_default=None)
    height = fields.Integer(allow_none=True, load_default=None)
    num_frames = fields.Integer(allow_none=True, load_default=None)
    fps = fields.Float(allow_none=True, load_default=None)
    duration_s = fields.Float(allow_none=True, load_default=None)
    sample_rate = fields.Integer(allow_none=True, load_default=None)
    sha256 = fields.String(allow_none=True, load_default=None)
    bytes = fields.Integer(allow_none=True, load_default=None)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Artifact:
        return Artifact(**data)


class StageEventSchema(StrictSchema):
    event = fields.String(required=True)
    stage = fields.String(allow_none=True, load_default=None)
    timestamp_ms = fields.Integer(required=True)
    data = fields.Dict(keys=fields.String(), load_default=dict)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> StageEvent:
        return StageEvent(**data)


class RunReportSchema(StrictSchema):
    schema_version = fields.String(load_default="0.0.0")
    run_id = fields.String(required=True)
    job_id = fields.String(allow_none=True, load_default=None)
    trace_id = fields.String(allow_none=True, load_default=None)
    task = fields.String(required=True)
    model = fields.String(required=True)
    backend = fields.String(required=True)
    device = fields.String(allow_none=True, load_default=None)
    execution_mode = fields.String(
        load_default=ExecutionMode.LEGACY_CALL.value, validate=validate.OneOf([mode.value for mode in ExecutionMode])
    )
    timings = fields.Dict(keys=fields.String(), values=fields.Float(), load_default=dict)
    memory = fields.Dict(keys=fields.String(), values=fields.Float(), load_default=dict)
    backend_timeline = fields.List(fields.Dict(), load_default=list)
    config_resolved = fields.Dict(keys=fields.String(), load_default=dict)
    cache_hits = fields.List(fields.String(), load_default=list)
    device_placement = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    batch_size = fields.Integer(load_default=1)
    batch_group_id = fields.String(allow_none=True, load_default=None)
    queue_wait_ms = fields.Float(allow_none=True, load_default=None)
    worker_id = fields.String(allow_none=True, load_default=None)
    error = fields.String(allow_none=True, load_default=None)
    events = fields.List(fields.Nested(StageEventSchema), load_default=list)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> RunReport:
        return RunReport(**data)


class GenerateResultSchema(StrictSchema):
    outputs = fields.List(fields.Nested(ArtifactSchema), required=True)
    metadata = fields.Nested(RunReportSchema, required=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> GenerateResult:
        return GenerateResult(**data)


def flatten_messages(messages: Any, prefix: str = "") -> list[str]:
    """Turn marshmallow's nested error dict into ``field.path: message`` lines."""
    if isinstance(messages, dict):
        lines: list[str] = []
        for key, value in messages.items():
            lines.extend(flatten_messages(value, f"{prefix}.{key}" if prefix else str(key)))
        return lines
    if isinstance(messages, list) and all(isinstance(item, str) for item in messages):
        return [f"{prefix}: {item}" if prefix else item for item in messages]
    if isinstance(messages, list):
        return [line for item in messages for line in flatten_messages(item, prefix)]
    return [f"{prefix}: {messages}" if prefix else str(messages)]


def load_request(data: Any) -> GenerateRequest:
    """Parse a request dict, raising :class:`RequestValidationError` that names every bad field."""
    if not isinstance(data, dict):
        raise RequestValidationError(f"A request must be a JSON object, got {type(data).__name__}.")
    try:
        return GenerateRequestSchema().load(data)
    except ValidationError as exc:
        issues = flatten_messages(exc.messages)
        raise RequestValidationError(
            "Request is malformed:\n- " + "\n- ".join(issues),
            details={"issues": [{"level": "error", "message": issue} for issue in issues]},
        ) from None


__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_PATH_LENGTH",
    "MAX_TEXT_LENGTH",
    "SCHEMA_VERSION",
    "AdapterRefSchema",
    "ArtifactSchema",
    "GenerateRequestSchema",
    "GenerateResultSchema",
    "RequestBodySchema",
    "RunReportSchema",
    "SafeJson",
    "SafeString",
    "StageEventSchema",
    "StrictSchema",
    "find_unsafe_text",
    "flatten_messages",
    "load_request",
    "unsafe_text_reason",
]
