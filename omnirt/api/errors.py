"""Every HTTP error is JSON ``{"error": {"code", "message", "details"}}`` with the right status; never a traceback.

Request bodies are read through :class:`BoundedJSONProvider` (installed by :func:`init_app`), so JSON nested too
deep is a 400 rather than a ``RecursionError``; :func:`json_object` gives a route its body as an object or a 400.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from omnirt.contracts.errors import OmniRTError
from omnirt.contracts.schemas import flatten_messages

log = logging.getLogger(__name__)

# Job error codes -> HTTP status, for a sync request whose job failed.
STATUS_BY_CODE = {
    "invalid_request": 400,
    "invalid_input": 400,
    "weight_format": 400,
    "weights_invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "model_not_enabled": 403,
    "not_found": 404,
    "model_not_found": 404,
    "cancelled": 409,
    "conflict": 409,
    "payload_too_large": 413,
    "too_many_queued": 429,
    "backend_unavailable": 503,
    "weights_not_found": 503,
    "dependency_unavailable": 503,
    "insufficient_memory": 503,
    "store_unavailable": 503,
    "worker_lost": 503,
    "no_capacity": 503,
    "service_unavailable": 503,
    "runtime_unavailable": 503,
    "upstream_error": 502,
    "script_failed": 502,
    "timeout": 504,
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers or {}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Any:
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def status_for(code: str) -> int:
    return STATUS_BY_CODE.get(code, 500)


MAX_JSON_DEPTH = 64
JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` has arrays or objects nested more than ``limit`` levels (``{}`` is one level)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, except that a document nested more than :data:`MAX_JSON_DEPTH` levels (even one so
    deep that the parser itself gives up) raises ``ValueError``, which Flask and :func:`json_object` answer with a
    400. Schemas, the job store and the workers never meet such a document."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError(f"JSON is nested more than {MAX_JSON_DEPTH} levels deep.") from None
        if nested_deeper_than(value, MAX_JSON_DEPTH):
            raise ValueError(f"JSON is nested more than {MAX_JSON_DEPTH} levels deep.")
        return value


def json_object(*, optional: bool = False) -> dict[str, Any]:
    """The request body as a JSON object, whatever its Content-Type (``curl -d`` sends form-encoded); else a 400.

    With ``optional``, an empty body reads as ``{}``.
    """
    data = request.get_data(cache=True)
    if optional and not data.strip():
        return {}
    try:
        body = current_app.json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise ApiError(400, "invalid_request", f"Could not read the body as JSON: {exc}") from None
    if not isinstance(body, dict):
        kind = JSON_KINDS.get(type(body), "null")
        raise ApiError(400, "invalid_request", f"The body must be a JSON object, not {kind}.")
    return body


def init_app(app: Flask) -> None:
    bounded = BoundedJSONProvider(app)
    for option in ("ensure_ascii", "sort_keys", "compact", "mimetype"):  # keep what create_app already chose
        setattr(bounded, option, getattr(app.json, option))
    app.json = bounded

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Any:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.errorhandler(OmniRTError)
    def _omnirt_error(exc: OmniRTError) -> Any:
        retry = getattr(exc, "retry_after_s", None)
        return error_response(
            status_for(exc.code) if exc.code in STATUS_BY_CODE else exc.http_status,
            exc.code,
            exc.message,
            exc.details,
            {"Retry-After": str(retry)} if retry else None,
        )

    @app.errorhandler(ValidationError)
    def _schema_error(exc: ValidationError) -> Any:
        issues = flatten_messages(exc.messages)
        return error_response(
            400,
            "invalid_request",
            "Request is malformed: " + "; ".join(issues),
            {"issues": [{"level": "error", "message": issue} for issue in issues]},
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 400: "invalid_request"}
        return error_response(exc.code or 500, codes.get(exc.code or 500, "http_error"), exc.description or exc.name)

    def _store_down(exc: Exception) -> Any:
        log.warning("job store unreachable: %s", exc)
        return error_response(
            503,
            "store_unavailable",
            "The job store (Redis) is unreachable; try again shortly.",
            headers={"Retry-After": "2"},
        )

    try:
        import redis

        app.register_error_handler(redis.exceptions.ConnectionError, _store_down)
        app.register_error_handler(redis.exceptions.TimeoutError, _store_down)
        app.register_error_handler(redis.exceptions.BusyLoadingError, _store_down)
    except ImportError:  # embedded installs may lack redis
        pass
    try:
        import kombu.exceptions

        app.register_error_handler(kombu.exceptions.OperationalError, _store_down)
    except ImportError:
        pass

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unhandled error")
        return error_response(500, "internal_error", f"Internal error ({type(exc).__name__}); see the server log.")
