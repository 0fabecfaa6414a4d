"""Which model serves an avatar name, and whether it can run: the stand-in policy and honest discovery.

OpenTalking asks for avatars by short names (``flashtalk``, ``wav2lip``, ``quicktalk``, ``musetalk``,
``fasterliveportrait``). A name is served by the registered model of that name (``flashtalk`` and ``musetalk`` are
registered under their full ids), or by whatever the operator's alias map names for it explicitly. Nothing stands in
silently: a name with no model is not connected, and a session for it is refused.

A model is *connected* when something can run it now: embedded, this process can load its weights; in a fleet, a
live worker that consumes its queue reports it ``ready`` in its heartbeat. Otherwise discovery gives the reason:
``no_worker``, ``weights_not_found``, ``not_installed`` (its libraries are missing, or no model is registered for
the name) or ``not_configured`` (a service-backed model without its upstream).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from omnirt.contracts.errors import ModelNotRegisteredError, OmniRTError, WeightsNotFoundError
from omnirt.registry.registry import get_model
from omnirt.registry.spec import ModelSpec

REFERENCE = "photoreal-avatar"  # the default avatar: weightless, real time on a CPU
OPENTALKING_NAMES = ("flashtalk", "wav2lip", "quicktalk", "musetalk", "fasterliveportrait")
REGISTERED_AS = {"flashtalk": "soulx-flashtalk-14b", "musetalk": "musetalk-1.5"}
FLASHTALK_PROMPT = "A person is talking. Only the foreground characters are moving, the background remains static."
READY = "ready"


@dataclass(frozen=True)
class Resolved:
    """The answer for one avatar name."""

    name: str
    model: str | None  # the registered model that serves it, None when nothing does
    via_alias: bool  # the operator's alias map chose the model

    @property
    def spec(self) -> ModelSpec:
        assert self.model is not None
        return get_model(self.model, "audio2video")


def resolve(name: str, aliases: dict[str, str] | None = None) -> Resolved:
    """The model behind ``name``: the alias map first (explicit), then the registry."""
    aliases = aliases or {}
    if name in aliases:
        target = aliases[name]
        try:
            return Resolved(name, get_model(target, "audio2video").id, True)
        except ModelNotRegisteredError:
            return Resolved(name, None, True)
    try:
        spec = get_model(REGISTERED_AS.get(name, name), "audio2video")
    except ModelNotRegisteredError:
        return Resolved(name, None, False)
    return Resolved(name, spec.id, False) if spec.capabilities.realtime else Resolved(name, None, False)


def local_readiness(spec: ModelSpec, *, models_dir: Any = None) -> str:
    """Whether this process can load ``spec``: ``ready``, ``not_installed``, ``weights_not_found`` or
    ``not_configured``. Checks libraries and weights without importing or loading anything."""
    if not spec.weightless and importlib.util.find_spec("torch") is None:
        return "not_installed"
    for module in spec.resource_hint.get("requires", ()):
        if importlib.util.find_spec(module) is None:
            return "not_installed"
    ready = getattr(spec.pipeline_cls, "upstream_configured", None)
    if callable(ready) and not ready():
        return "not_configured"
    if spec.weightless:
        return READY
    from omnirt.runtime.weights import resolve_weights

    try:
        resolve_weights(
            spec.canonical_id,
            hub_id=spec.hub_id,
            models_dir=models_dir,
            aliases=(spec.id,) if spec.is_alias else (),
            markers=tuple(spec.resource_hint.get("weights_markers", ())),
        )
    except WeightsNotFoundError:
        return "weights_not_found"
    except OmniRTError:
        return "not_installed"
    return READY


QueuesOf = Callable[[ModelSpec], list[str]]  # the queues that can serve a model (tasks.routing.candidate_queues)


def avatar_readiness(queues: Iterable[str], queues_of: QueuesOf, *, models_dir: Any = None) -> dict[str, str]:
    """For a worker's heartbeat: the readiness of every realtime avatar model its queues serve."""
    from omnirt.registry.registry import list_available_models

    served = set(queues)
    return {
        spec.id: local_readiness(spec, models_dir=models_dir)
        for spec in list_available_models()
        if spec.task == "audio2video" and spec.capabilities.realtime and served.intersection(queues_of(spec))
    }


def fleet_readiness(spec: ModelSpec, workers: list[dict[str, Any]], queues_of: QueuesOf) -> str:
    """A model's readiness across live workers: ``ready`` if any worker says so, else the most telling reason."""
    queues = set(queues_of(spec))
    reasons = [
        (worker.get("avatar_models") or {}).get(spec.id, "no_worker")
        for worker in workers
        if queues.intersection(worker.get("queues", []))
    ]
    if not reasons:
        return "no_worker"
    if READY in reasons:
        return READY
    for reason in ("weights_not_found", "not_configured", "not_installed"):
        if reason in reasons:
            return reason
    return reasons[0]


def discovery_names(aliases: dict[str, str] | None = None) -> list[str]:
    """The names discovery reports: OpenTalking's, every registered realtime avatar model, and aliased names."""
    from omnirt.registry.registry import list_available_models

    names = list(OPENTALKING_NAMES)
    names += [spec.id for spec in list_available_models() if spec.task == "audio2video" and spec.capabilities.realtime]
    names += [name for name, target in (aliases or {}).items() if resolve(name, aliases).model is not None]
    return list(dict.fromkeys(names))
