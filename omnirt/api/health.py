"""Liveness (``/healthz``), readiness (``/readyz``) and the fleet as its heartbeats describe it (``/v1/workers``).

Ready means: the job store and broker answer, and live workers serve the models this server enables. When the
server names its models (``--models``) or tiers (``--model-tier``), every one of them needs a live worker on a queue
that can serve it. When it names none, every registered model is routable and the server is ready once any live
worker serves an OmniRT queue; models no worker serves are listed under ``unserved``. Otherwise 503, with each reason.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from omnirt.registry.registry import list_available_models
from omnirt.tasks.routing import candidate_queues

bp = Blueprint("health", __name__)


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
    backplane = current_app.extensions["omnirt"]
    reasons: list[str] = []
    try:
        backplane.store.ping()
        workers = backplane.workers.workers()
    except Exception as exc:  # noqa: BLE001 - any store failure means not ready
        return jsonify({"ok": False, "reasons": [f"job store unreachable: {type(exc).__name__}: {exc}"]}), 503
    if not settings.embedded:
        try:
            with backplane.dispatcher.celery.connection_for_write() as connection:
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
    }
    return jsonify(body), (200 if not reasons else 503)


@bp.get("/v1/workers")
def workers() -> Any:
    """Live worker processes from their heartbeats.
    ---
    get:
      responses: {200: {description: Workers with device, queues, loaded models and memory}}
    """
    listing = sorted(current_app.extensions["omnirt"].workers.workers(), key=lambda item: item.get("worker_id", ""))
    return jsonify({"object": "list", "data": listing})
