"""Queue routing from the registry: per-tier, per-device queues (``omnirt.<tier>.<device>``) and named model queues.

A model whose spec names a queue (e.g. ``flashtalk``) always goes there. Otherwise the request's backend picks the
device; ``auto`` picks the first of cuda, ascend, cpu that a live worker serves for the model's tier, else the
configured default device.
"""

from __future__ import annotations

from collections.abc import Iterable

from omnirt.registry.registry import get_model, list_available_models
from omnirt.registry.spec import TIERS, ModelSpec

DEVICES = ("cuda", "ascend", "cpu")


def tier_queue(tier: str, device: str) -> str:
    return f"omnirt.{tier}.{device}"


def all_tier_queues() -> list[str]:
    return [tier_queue(tier, device) for tier in TIERS for device in DEVICES]


def candidate_queues(spec: ModelSpec) -> list[str]:
    """Every queue that can serve ``spec``, in device preference order."""
    if spec.capabilities.queue:
        return [spec.capabilities.queue]
    return [tier_queue(spec.tier, device) for device in DEVICES]


def choose_queue(spec: ModelSpec, backend: str, *, live_queues: Iterable[str], default_device: str) -> tuple[str, str]:
    """(queue, backend the worker runs with) for a request."""
    if spec.capabilities.queue:
        return spec.capabilities.queue, backend
    if backend in DEVICES:
        return tier_queue(spec.tier, backend), backend
    live = set(live_queues)
    for device in DEVICES:
        if tier_queue(spec.tier, device) in live:
            return tier_queue(spec.tier, device), device
    return tier_queue(spec.tier, default_device), default_device


def worker_queues(device: str, *, tiers: Iterable[str] = (), models: Iterable[str] = ()) -> list[str]:
    """The queues an ``omnirt worker --device D [--tier T] [--models M]`` consumes."""
    queues: list[str] = []
    model_ids = list(models)
    for model_id in model_ids:
        spec = get_model(model_id)
        queues.append(spec.capabilities.queue or tier_queue(spec.tier, device))
    for tier in tiers:
        if tier not in TIERS:
            raise ValueError(f"Unknown tier '{tier}'. Expected one of: {', '.join(TIERS)}.")
        queues.append(tier_queue(tier, device))
    if not model_ids and not list(tiers):
        queues += [tier_queue(tier, device) for tier in TIERS]
        queues += sorted({spec.capabilities.queue for spec in list_available_models() if spec.capabilities.queue})
    return list(dict.fromkeys(queues))
