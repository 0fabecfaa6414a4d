"""API keys: when configured, every HTTP and WebSocket route needs one, except liveness and readiness.

A key comes as ``Authorization: Bearer <key>``, ``x-api-key: <key>``, or (for WebSocket clients that cannot set
headers) ``?api_key=<key>``. Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Flask, current_app, request

from omnirt.api.errors import error_response

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/health"})  # liveness and readiness probes


def presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key") or request.args.get("api_key")


def init_app(app: Flask) -> None:
    @app.before_request
    def _require_key() -> Any:
        keys = current_app.config["OMNIRT_SETTINGS"].api_keys
        if not keys or request.path in OPEN_PATHS:
            return None
        key = presented_key()
        if key and any(hmac.compare_digest(key.encode(), known.encode()) for known in keys):
            return None
        return error_response(
            401,
            "unauthorized",
            "A valid API key is required (Authorization: Bearer <key>).",
            headers={"WWW-Authenticate": "Bearer"},
        )
