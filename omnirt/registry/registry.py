"""The model registry: ``@register_model``, lookup by (id, task), aliases and tiers.

Model families register themselves when :mod:`omnirt.models` is imported; importing a family must not import torch,
so the API can validate requests without it. The registry sits below the models that register into it: it imports
the family package by name on first use (:data:`MODEL_PACKAGES`, then ``OMNIRT_PLUGINS``), never by an import
statement.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from omnirt.contracts.errors import ModelNotRegisteredError
from omnirt.registry.spec import TASK_PRIORITY, TIERS, ModelCapabilities, ModelSpec

_REGISTRY: dict[tuple[str, str], ModelSpec] = {}
_LOADED = False

#: The packages whose import registers the built-in model families.
MODEL_PACKAGES = ("omnirt.models",)

PipelineClass = TypeVar("PipelineClass", bound=type)


def register_model(
    *,
    id: str,
    task: str,
    hub_id: str | None = None,
    alias_of: str | None = None,
    default_backend: str = "auto",
    resource_hint: dict[str, Any] | None = None,
    execution_mode: str = "legacy_call",
    weightless: bool = False,
    weights_folder: str | None = None,
    **capabilities: Any,
) -> Callable[[PipelineClass], PipelineClass]:
    """Register the decorated pipeline class for (``id``, ``task``). Stackable.

    With ``alias_of``, the entry copies the target's spec for that task (registered earlier) under a new id.
    ``weights_folder`` names the models-dir folder of a task whose weights differ from the id's other tasks.
    """

    def decorate(pipeline_cls: PipelineClass) -> PipelineClass:
        if alias_of is not None:
            target = _REGISTRY.get((alias_of, task))
            if target is None:
                raise ValueError(f"alias '{id}' targets unregistered model '{alias_of}' for task '{task}'")
            spec = replace(target, id=id, capabilities=replace(target.capabilities, alias_of=alias_of, **capabilities))
        else:
            spec = ModelSpec(
                id=id,
                task=task,
                pipeline_cls=pipeline_cls,
                capabilities=ModelCapabilities(**capabilities),
                hub_id=hub_id,
                default_backend=default_backend,
                resource_hint=dict(resource_hint or {}),
                execution_mode=execution_mode,
                weightless=weightless,
                weights_folder=weights_folder,
            )
        if spec.tier not in TIERS:
            raise ValueError(f"model '{id}' has unknown tier '{spec.tier}'")
        _REGISTRY[(id, task)] = spec
        return pipeline_cls

    return decorate


def ensure_models_loaded() -> None:
    """Import every model family once (:data:`MODEL_PACKAGES`), so that each registers itself, then the modules in
    ``OMNIRT_PLUGINS`` (comma-separated import paths), which may register more."""
    global _LOADED
    if not _LOADED:
        import importlib

        from omnirt.settings import Settings

        for package in MODEL_PACKAGES:
            importlib.import_module(package)
        _LOADED = True
        for module in Settings.value("plugins"):
            importlib.import_module(module)


def all_specs() -> list[ModelSpec]:
    ensure_models_loaded()
    return sorted(_REGISTRY.values(), key=lambda spec: (spec.id, TASK_PRIORITY.index(spec.task)))


def model_ids(include_aliases: bool = True) -> list[str]:
    return sorted({spec.id for spec in all_specs() if include_aliases or not spec.is_alias})


def tasks_of(model_id: str) -> list[str]:
    return [spec.task for spec in all_specs() if spec.id == model_id]


def nearby_models(model_id: str, n: int = 3) -> list[str]:
    """Registered ids close to ``model_id``, for "did you mean" messages."""
    candidates = model_ids()
    close = difflib.get_close_matches(model_id, candidates, n=n, cutoff=0.5)
    squeezed = model_id.replace("-", "").replace("_", "").replace(".", "").lower()
    for candidate in candidates:
        if candidate.replace("-", "").replace("_", "").replace(".", "").lower() == squeezed and candidate not in close:
            close.insert(0, candidate)
    return close[:n]


def get_model(model_id: str, task: str | None = None) -> ModelSpec:
    """The spec for ``model_id`` and ``task``; without a task, the model's primary task."""
    ensure_models_loaded()
    if task is not None and (model_id, task) in _REGISTRY:
        return _REGISTRY[(model_id, task)]
    tasks = tasks_of(model_id)
    if not tasks:
        suggestions = nearby_models(model_id)
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        raise ModelNotRegisteredError(
            f"Unknown model '{model_id}'.{hint}", details={"model": model_id, "suggestions": suggestions}
        )
    if task is None:
        primary = min(tasks, key=TASK_PRIORITY.index)
        return _REGISTRY[(model_id, primary)]
    raise ModelNotRegisteredError(
        f"Model '{model_id}' supports tasks [{', '.join(tasks)}], got '{task}'.",
        details={"model": model_id, "task": task, "supported_tasks": tasks},
    )


def list_available_models(*, include_aliases: bool = True, tier: str | None = None) -> list[ModelSpec]:
    """Every registered (id, task) spec, optionally filtered by tier."""
    if tier is not None and tier != "all" and tier not in TIERS:
        raise ValueError(f"Unknown tier '{tier}'. Expected one of: all, {', '.join(TIERS)}.")
    return [
        spec
        for spec in all_specs()
        if (include_aliases or not spec.is_alias) and (tier in (None, "all") or spec.tier == tier)
    ]
