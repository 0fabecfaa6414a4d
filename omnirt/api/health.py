"""Liveness (``/healthz``), readiness (``/readyz``) and the fleet as its heartbeats describe it (``/v1/workers``).

Ready means: the job store and broker answer, and live workers serve the models this server enables. When the
server names its models (``--models``) or tiers (``--model-tier``), every one of them needs a live worker on a queue
that can serve it. When it names none, every registered model is routable and the server is ready once any live
worker serves an OmniRT queue; models no worker serves are listed under ``unserved``. Otherwise 503, with each reason.

In a fleet, readiness also reports whether Redis persists its data (``redis_persistence``: ``none``, ``aof``,
``rdb``, ``aof+rdb`` or ``unknown`` when ``CONFIG`` is not permitted), with a warning when it does not: a restart of
such a Redis loses every queued job. It does not affect readiness. A fleet front end logs the same warning once at
start-up (when this blueprint is registered).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.blueprints import BlueprintSetupState

from omnirt.api.services import backplane
from omnirt.registry.registry import list_available_models
from omnirt.tasks.routing import candidate_queues

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)
NOT_DURABLE = "Redis has no persistence (no AOF, no RDB save points): a Redis restart loses every queued job."
UNKNOWN_DURABILITY = "Could not read the Redis persistence settings (CONFIG GET not permitted or failed)."


def redis_persistence(client: Any) -> str:
    """How ``client``'s Redis persists data: ``none``, ``aof``, ``rdb``, ``aof+rdb``; ``unknown`` when it will not
    say (CONFIG renamed or denied by an ACL, as managed Redis services often do) or cannot be reached."""
    try:
        aof = str(client.config_get("appendonly").get("appendonly", "")).lower() == "yes"
        rdb = bool(str(client.config_get("save").get("save", "")).strip())
    except Exception:  # noqa: BLE001 - any refusal or failure means we cannot tell
        return "unknown"
    return "+".join(name for name, on in (("aof", aof), ("rdb", rdb)) if on) or "none"


def persistence_warning(persistence: str) -> str | None:
    return {"none": NOT_DURABLE, "unknown": UNKNOWN_DURABILITY}.get(persistence)


@bp.record_once
def _warn_if_not_durable(state: BlueprintSetupState) -> None:
    """At start-up of a fleet front end, say in the log when Redis would lose the queue on a restart."""
    if state.app.config["OMNIRT_SETTINGS"].embedded:
        return
    persistence = redis_persistence(state.app.extensions["omnirt"].redis)
    warning = persistence_warning(persistence)
    if warning:
        log.warning("%s (redis_persistence=%s)", warning, persistence)


def enabled_specs(settings: Any) -> list[Any]:
    specs = list_available_models(include_aliases=False)
    if settings.model_tiers:
        specs = [spec for spec in specs if spec.tier in settings.model_tiers]
    if settings.models:
        specs = [spec for spec in specs if spec.id in settings.models]
    return specs


@bp.get("/healthz")
def healthz() -> Any:
    """The process is alive.
    ---
    get:
      responses: {200: {description: Alive}}
    """
    return jsonify({"ok": True})


@bp.get("/readyz")
def readyz() -> Any:
    """Ready to serve: store and broker reachable, a live worker for every enabled model.
    ---
    get:
      responses:
        200: {description: Ready}
        503: {description: Not ready, with reasons}
    """
    settings = current_app.config["OMNIRT_SETTINGS"]
    plane = backplane()
    reasons: list[str] = []
    try:
        plane.store.ping()
        workers = plane.workers.workers()
    except Exception as exc:  # noqa: BLE001 - any store failure means not ready
        return jsonify({"ok": False, "reasons": [f"job store unreachable: {type(exc).__name__}: {exc}"]}), 503
    if not settings.embedded:
        try:
            with plane.dispatcher.celery.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as exc:  # noqa: BLE001
            reasons.append(f"broker unreachable: {type(exc).__name__}: {exc}")
    live = {queue for worker in workers for queue in worker.get("queues", [])}
    missing: dict[str, list[str]] = {}
    for spec in enabled_specs(settings):
        queues = candidate_queues(spec)
        if not live.intersection(queues):
            missing.setdefault(" | ".join(queues), []).append(f"{spec.id}:{spec.task}")
    unserved = [
        f"no live worker on {queues} (needed by {', '.join(models)})" for queues, models in sorted(missing.items())
    ]
    declared = bool(settings.models or settings.model_tiers)
    if declared:
        reasons += unserved
    elif not live:
        reasons.append("no live worker serves any OmniRT queue")
    body = {
        "ok": not reasons,
        "mode": "embedded" if settings.embedded else "fleet",
        "live_workers": len(workers),
        "reasons": reasons,
        "unserved": [] if declared else unserved,
        "warnings": [],
    }
    if not settings.embedded:
        persistence = plane.cached("redis_persistence", lambda: redis_persistence(plane.redis), ttl_s=10.0)
        body["redis_persistence"] = persistence
        warning = persistence_warning(persistence)
        if warning:
            body["warnings"].append(warning)
    return jsonify(body), (200 if not reasons else 503)


@bp.get("/v1/workers")
def workers() -> Any:
    """Live worker processes from their heartbeats.
    ---
    get:
      responses: {200: {description: Workers with device, queues, loaded models and memory}}
    """
    listing = sorted(backplane().workers.workers(), key=lambda item: item.get("worker_id", ""))
    return jsonify({"object": "list", "data": listing})
