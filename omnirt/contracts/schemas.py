"""marshmallow schemas for the contracts: strict (unknown fields are errors) and lossless on a round trip.

``load`` returns the dataclasses of :mod:`omnirt.contracts.types`; ``dump`` gives plain JSON-ready dicts. The same
schemas feed the OpenAPI description.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, pre_load, validate

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


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class AdapterRefSchema(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(["lora"]))
    path = fields.String(required=True, validate=validate.Length(min=1))
    scale = fields.Float(load_default=1.0)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> AdapterRef:
        return AdapterRef(**data)


class GenerateRequestSchema(StrictSchema):
    task = fields.String(required=True, validate=validate.OneOf(TASKS))
    model = fields.String(required=True, validate=validate.Length(min=1))
    backend = fields.String(load_default="auto", validate=validate.OneOf(BACKENDS))
    inputs = fields.Dict(keys=fields.String(), load_default=dict)
    config = fields.Dict(keys=fields.String(), load_default=dict)
    adapters = fields.List(fields.Nested(AdapterRefSchema), load_default=None, allow_none=True)

    @pre_load
    def accept_legacy_backend(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict) and data.get("backend") in LEGACY_BACKEND_NAMES:
            data = {**data, "backend": LEGACY_BACKEND_NAMES[data["backend"]]}
        return data

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
    "SCHEMA_VERSION",
    "AdapterRefSchema",
    "ArtifactSchema",
    "GenerateRequestSchema",
    "GenerateResultSchema",
    "RunReportSchema",
    "StageEventSchema",
    "flatten_messages",
    "load_request",
]
