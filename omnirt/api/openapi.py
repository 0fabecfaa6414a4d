"""``GET /openapi.json``: the OpenAPI description, generated with apispec from the marshmallow schemas and the
YAML blocks in each view's docstring.

Every URL rule of a documented view is a path of its own (``/health`` and ``/v1/text2audio/health`` both appear), and
every ``{name}`` in a path is declared as a required string path parameter unless the docstring declares it itself.
WebSocket routes (flask-sock) carry no YAML block and are not described: OpenAPI 3.0 cannot describe them.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, current_app, jsonify
from marshmallow import Schema, fields
from werkzeug.routing import Rule

from omnirt import __version__
from omnirt.api.submission import GenerateSubmissionSchema
from omnirt.contracts.schemas import (
    AdapterRefSchema,
    ArtifactSchema,
    GenerateResultSchema,
    RunReportSchema,
    StageEventSchema,
)

bp = Blueprint("openapi", __name__)


class ErrorBodySchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Dict()


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class JobSchema(Schema):
    id = fields.String()
    job_id = fields.String()
    state = fields.String(metadata={"enum": ["queued", "running", "succeeded", "failed", "cancelled"]})
    model = fields.String()
    task = fields.String()
    backend = fields.String()
    queue = fields.String()
    request = fields.Dict()
    trace_id = fields.String()
    traceparent = fields.String(allow_none=True)
    attempts = fields.Integer()
    worker_id = fields.String(allow_none=True)
    enqueued_at_ms = fields.Integer()
    started_at_ms = fields.Integer(allow_none=True)
    finished_at_ms = fields.Integer(allow_none=True)
    cancel_requested = fields.Boolean()
    result = fields.Nested(GenerateResultSchema, allow_none=True)
    error = fields.Nested(ErrorBodySchema, allow_none=True)
    events = fields.List(fields.Nested(StageEventSchema))
    links = fields.Dict(keys=fields.String(), values=fields.String())


class TraceSpanSchema(Schema):
    name = fields.String()
    trace_id = fields.String()
    span_id = fields.String()
    parent_span_id = fields.String(allow_none=True)
    start_ms = fields.Integer()
    end_ms = fields.Integer(allow_none=True)
    duration_ms = fields.Float(allow_none=True)
    status = fields.String(metadata={"enum": ["ok", "error", "unset"]})
    attributes = fields.Dict()


class TraceSchema(Schema):
    job_id = fields.String()
    trace_id = fields.String()
    spans = fields.List(fields.Nested(TraceSpanSchema))


class RuleFlaskPlugin(FlaskPlugin):
    """apispec's Flask plugin, for one given URL rule (a view may answer several) and with implicit path params."""

    def path_helper(  # type: ignore[override]
        self,
        path: str | None = None,
        operations: dict[str, Any] | None = None,
        parameters: list[dict[str, Any]] | None = None,
        *,
        rule: Rule,
        **kwargs: Any,
    ) -> str | None:
        assert operations is not None
        super().path_helper(path, operations, parameters, **kwargs)
        openapi_path = self.flaskpath2openapi(rule.rule)
        for operation in operations.values():
            declared = {param.get("name") for param in operation.get("parameters", []) if param.get("in") == "path"}
            implicit = [
                {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
                for name in rule.arguments
                if name not in declared
            ]
            if implicit:
                operation["parameters"] = [*implicit, *operation.get("parameters", [])]
        return openapi_path


def build_spec() -> dict[str, Any]:
    spec = APISpec(
        title="OmniRT",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[RuleFlaskPlugin(), MarshmallowPlugin()],
        info={"description": "Inference runtime for digital humans and multimodal generation."},
    )
    for name, schema in (  # leaves first: the plugin reuses a registered schema when it meets it nested
        ("StageEvent", StageEventSchema),
        ("Artifact", ArtifactSchema),
        ("RunReport", RunReportSchema),
        ("GenerateResult", GenerateResultSchema),
        ("AdapterRef", AdapterRefSchema),
        ("GenerateSubmission", GenerateSubmissionSchema),
        ("ErrorBody", ErrorBodySchema),
        ("Error", ErrorSchema),
        ("Job", JobSchema),
        ("TraceSpan", TraceSpanSchema),
        ("Trace", TraceSchema),
    ):
        spec.components.schema(name, schema=schema)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "x-api-key"})
    for rule in current_app.url_map.iter_rules():
        view = current_app.view_functions[rule.endpoint]
        if rule.endpoint == "static" or not (view.__doc__ and "---" in view.__doc__):
            continue
        spec.path(view=view, app=current_app, rule=rule)
    return spec.to_dict()


@bp.get("/openapi.json")
def openapi() -> Any:
    """The OpenAPI 3 description of every HTTP route.
    ---
    get:
      responses: {200: {description: OpenAPI document}}
    """
    return jsonify(build_spec())
