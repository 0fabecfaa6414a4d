"""Step progress for diffusers pipelines whose ``__call__`` takes no ``callback_on_step_end``.

Some pipelines (HunyuanVideo 1.5, driven by a guider) have no per-step callback. Their denoising loop still calls
``scheduler.step`` exactly once per step, so wrapping that method for the length of one call reports each finished
step (and honours a pending cancel) just as the callback does for the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from omnirt.models.base import RunContext


@contextmanager
def scheduler_step_progress(pipe: Any, ctx: RunContext) -> Iterator[None]:
    """Report progress after every ``pipe.scheduler.step`` call made inside the block."""
    scheduler = pipe.scheduler
    original_step = scheduler.step
    finished = 0

    def step(*args: Any, **kwargs: Any) -> Any:
        nonlocal finished
        output = original_step(*args, **kwargs)
        total = getattr(pipe, "_num_timesteps", None) or ctx.config.get("num_inference_steps")
        ctx.step(finished, total)
        finished += 1
        return output

    scheduler.step = step
    try:
        yield
    finally:
        if "step" in vars(scheduler):
            del scheduler.step


class SchedulerStepProgress:
    """Mixin for a ``DiffusersPipeline`` family: progress from ``scheduler.step`` where the call has no callback."""

    def denoise_loop(self, ctx: RunContext, latents: Any, conditions: dict[str, Any]) -> Any:
        if {"callback_on_step_end", "callback"} & set(conditions["accepted"]):
            return super().denoise_loop(ctx, latents, conditions)  # type: ignore[misc]
        with scheduler_step_progress(conditions["pipe"], ctx):
            return super().denoise_loop(ctx, latents, conditions)  # type: ignore[misc]
