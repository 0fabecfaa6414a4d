"""API keys: when configured, every HTTP and WebSocket route needs one, except liveness and readiness.

A key comes as ``Authorization: Bearer <key>`` or ``x-api-key: <key>``. Browsers cannot set headers on a WebSocket,
so a WebSocket upgrade may carry it as ``?api_key=<key>`` instead; on plain HTTP the query key is refused (401), since
URLs end up in logs and browser history. A browser navigation cannot send a header either, so the playground's pages
(and only they: the API routes never read it) also take the key from the cookie ``omnirt_api_key``, which the page
sets for its own path. Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import unquote

from flask import Flask, current_app, request

from omnirt.api.errors import error_response

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/health"})  # liveness and readiness probes
QUERY_KEY = "api_key"
COOKIE_KEY = "omnirt_api_key"
COOKIE_BLUEPRINTS = frozenset({"playground"})  # the browser pages (omnirt/api/playground.py)


def is_websocket_upgrade() -> bool:
    """Whether this request asks to become a WebSocket (``Upgrade: websocket``)."""
    return request.headers.get("Upgrade", "").strip().lower() == "websocket"


def presented_key() -> str | None:
    """The key from the headers, from the cookie on the playground's pages only, or from ``?api_key=`` on a
    WebSocket upgrade only."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    if request.headers.get("x-api-key"):
        return request.headers["x-api-key"]
    if request.blueprint in COOKIE_BLUEPRINTS and request.cookies.get(COOKIE_KEY):
        return unquote(request.cookies[COOKIE_KEY])
    return request.args.get(QUERY_KEY) if is_websocket_upgrade() else None


def init_app(app: Flask) -> None:
    @app.before_request
    def _require_key() -> Any:
        keys = current_app.config["OMNIRT_SETTINGS"].api_keys
        if not keys or request.path in OPEN_PATHS:
            return None
        key = presented_key()
        if key and any(hmac.compare_digest(key.encode(), known.encode()) for known in keys):
            return None
        message = "A valid API key is required (Authorization: Bearer <key>)."
        if key is None and QUERY_KEY in request.args:
            message = (
                "?api_key= is accepted only on WebSocket upgrades; "
                "send the key in the Authorization header (Authorization: Bearer <key>)."
            )
        return error_response(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
