"""Which jobs may run together as one batch: the batch key.

Two jobs may share one pipeline call when they differ only in what each request owns: its prompt, its negative
prompt and its seed. Everything else is in the key: the model, the task, the backend and queue, the adapters, and
the resolved config without the seed (size, steps, guidance, frames, scheduler, weights path, ...). A request is
batchable only when

* its model says so (:attr:`ModelCapabilities.supports_batching`; the diffusion families do, speech and avatar
  models do not) and its pipeline class runs the task batched (``batched_tasks``: text2image and text2video);
* the inputs are a prompt (a non-empty string) and optionally a negative prompt (whether there is one is part of the
  key: a pipeline encodes "no negative prompt" its own way);
* it asks for one output (``num_images_per_prompt`` 1 or unset), so that one seed draws one output, alone or batched.

The front end stores the key in the job record and enters the job in its key's lobby (:mod:`omnirt.jobs.store`);
the worker that starts the job takes compatible queued jobs from there (:mod:`omnirt.workers.batching`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from omnirt.contracts.types import GenerateRequest
from omnirt.registry.spec import ModelSpec

#: request inputs each member of a batch brings on its own
MEMBER_INPUTS = ("prompt", "negative_prompt")
#: config keys each member of a batch keeps for itself
MEMBER_CONFIG = ("seed",)


def batch_key(
    spec: ModelSpec, request: GenerateRequest, resolved_config: dict[str, Any], *, backend: str, queue: str
) -> str | None:
    """The batch key of ``request`` (validated, with ``resolved_config``), or None when it always runs alone."""
    if not spec.capabilities.supports_batching or spec.task not in getattr(spec.pipeline_cls, "batched_tasks", ()):
        return None
    inputs = request.inputs
    if set(inputs) - set(MEMBER_INPUTS) or not isinstance(inputs.get("prompt"), str) or not inputs["prompt"]:
        return None
    if "negative_prompt" in inputs and not isinstance(inputs["negative_prompt"], str):
        return None
    if resolved_config.get("num_images_per_prompt") not in (None, 1):
        return None
    shape = {
        "model": spec.id,
        "task": spec.task,
        "backend": backend,
        "queue": queue,
        "config": {key: value for key, value in resolved_config.items() if key not in MEMBER_CONFIG},
        "adapters": [adapter.to_dict() for adapter in request.adapters or []],
        "negative_prompt": "negative_prompt" in inputs,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:32]
