"""How big one request may be, and how long one job may run: safe defaults, a model's own, the operator's overrides.

A request is checked against its limits before a job exists (the API) and again where it runs (the worker), so a
client cannot ask for a billion denoising steps or a 100 000 px square and tie a worker up until it runs out of
memory. The order of precedence, last wins:

1. :data:`omnirt.settings.DEFAULT_LIMITS`;
2. the model's ``resource_hint["limits"]`` (a video model that needs more frames, a small model allowed more pixels);
3. the operator's ``OMNIRT_LIMITS`` (a JSON object of the same keys, see :class:`omnirt.settings.Settings`).

``time_limit_s`` also sets the Celery soft and hard time limits of the job's task and the embedded worker's deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omnirt.contracts.errors import ModelNotRegisteredError
from omnirt.registry.registry import get_model
from omnirt.registry.spec import ModelSpec
from omnirt.settings import DEFAULT_LIMITS


def limits_for(spec: ModelSpec, overrides: Mapping[str, Any] | None = None) -> dict[str, float]:
    """The limits a request for ``spec`` runs under."""
    limits = dict(DEFAULT_LIMITS)
    limits.update(spec.resource_hint.get("limits", {}))
    limits.update({key: value for key, value in (overrides or {}).items() if key in DEFAULT_LIMITS})
    return limits


def limit_errors(config: Mapping[str, Any], limits: Mapping[str, float]) -> list[str]:
    """One message per resolved config value over its limit (values of the wrong type are reported elsewhere)."""
    errors = []

    def integer(key: str) -> int | None:
        value = config.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    for key, limit in (
        ("num_inference_steps", "max_steps"),
        ("num_frames", "max_frames"),
        ("num_images_per_prompt", "max_images"),
    ):
        value = integer(key)
        if value is not None and value > limits[limit]:
            errors.append(f"config.{key} is {value}; this server allows at most {int(limits[limit])} ({limit}).")
    width, height = integer("width"), integer("height")
    if width is not None and height is not None and width * height > limits["max_pixels"]:
        errors.append(
            f"config.width x config.height is {width}x{height} = {width * height} pixels; this server allows at "
            f"most {int(limits['max_pixels'])} (max_pixels)."
        )
    return errors


def job_time_limit_s(model: str, task: str, overrides: Mapping[str, Any] | None = None) -> float:
    """Seconds a job for (``model``, ``task``) may run: the worker's deadline and its Celery task's time limits."""
    try:
        return float(limits_for(get_model(model, task), overrides)["time_limit_s"])
    except ModelNotRegisteredError:
        return float({**DEFAULT_LIMITS, **(overrides or {})}["time_limit_s"])
