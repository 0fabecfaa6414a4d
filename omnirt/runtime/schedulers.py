"""Schedulers by name, applied to a loaded diffusers pipeline for one run.

``native`` keeps the scheduler the checkpoint ships with. The others rebuild the scheduler from the checkpoint's
own scheduler config, so training-time settings (betas, prediction type, timestep spacing) carry over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SchedulerBuilder = Callable[[dict[str, Any]], Any]


def _from(class_name: str, **overrides: Any) -> SchedulerBuilder:
    def build(config: dict[str, Any]) -> Any:
        import diffusers

        return getattr(diffusers, class_name).from_config(config, **overrides)

    return build


SCHEDULERS: dict[str, SchedulerBuilder] = {
    "euler-discrete": _from("EulerDiscreteScheduler"),
    "euler-ancestral": _from("EulerAncestralDiscreteScheduler"),
    "ddim": _from("DDIMScheduler"),
    "dpm-solver": _from("DPMSolverMultistepScheduler"),
    "dpm-solver-karras": _from("DPMSolverMultistepScheduler", use_karras_sigmas=True),
}

# The names a UNet (epsilon / v-prediction) checkpoint can take. Flow-matching models keep "native".
UNET_SCHEDULERS = ("native", *SCHEDULERS)


def register_scheduler(name: str, builder: SchedulerBuilder) -> None:
    SCHEDULERS[name] = builder


def build_scheduler(name: str, base_config: dict[str, Any]) -> Any:
    if name not in SCHEDULERS:
        raise ValueError(f"Unknown scheduler '{name}'. Known: native, {', '.join(SCHEDULERS)}.")
    return SCHEDULERS[name](dict(base_config))
