"""``bench-noop``: a model that runs no network, for measuring dispatch (``omnirt bench dispatch``) and for tests of
queueing, cancellation and worker loss.

It goes through the whole runtime (validation, routing, the warm cache, the five stages, events) but loads no
weights and writes no artifact: its denoise loop emits ``steps`` progress events, sleeping ``step_ms`` before each.
It is registered only when a process imports this module, e.g. with ``OMNIRT_PLUGINS=omnirt.bench.noop``.
"""

from __future__ import annotations

import time
from typing import Any

from omnirt.contracts.types import Artifact
from omnirt.models.base import BasePipeline, RunContext
from omnirt.registry.registry import register_model


@register_model(
    id="bench-noop",
    task="text2image",
    weightless=True,
    required_inputs=("prompt",),
    supported_config=("steps", "step_ms", "seed"),
    default_config={"steps": 1, "step_ms": 0},
    artifact_kind="",
    tier="experimental",
    maturity="experimental",
    summary="Dispatch benchmark and test model: no network, no output; emits `steps` progress events.",
    domain="benchmark",
    adapter_kinds=(),
)
class NoopPipeline(BasePipeline):
    def __init__(self, *, spec: Any, backend: Any, dtype: str, **_: Any) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)

    def prepare_conditions(self, ctx: RunContext) -> dict[str, Any]:
        return {"steps": int(ctx.config.get("steps", 1)), "step_ms": float(ctx.config.get("step_ms", 0))}

    def prepare_latents(self, ctx: RunContext, conditions: dict[str, Any]) -> None:
        return None

    def denoise_loop(self, ctx: RunContext, latents: Any, conditions: dict[str, Any]) -> None:
        for index in range(conditions["steps"]):
            if conditions["step_ms"]:
                time.sleep(conditions["step_ms"] / 1000)
            ctx.step(index, conditions["steps"])

    def decode(self, ctx: RunContext, raw: Any) -> None:
        return None

    def export(self, ctx: RunContext, decoded: Any) -> list[Artifact]:
        return []
