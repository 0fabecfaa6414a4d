"""OmniRT: an inference runtime for realtime digital humans and multimodal generation.

The Python API is exported lazily, so ``import omnirt`` stays cheap and never imports torch::

    import omnirt
    result = omnirt.generate({"task": "text2image", "model": "sd15", "inputs": {"prompt": "a cat"}})
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "generate": "omnirt.python_api",
    "validate": "omnirt.python_api",
    "pipeline": "omnirt.python_api",
    "describe_model": "omnirt.python_api",
    "list_available_models": "omnirt.registry.registry",
    "available_presets": "omnirt.registry.presets",
    "GenerateRequest": "omnirt.contracts.types",
    "GenerateResult": "omnirt.contracts.types",
    "AdapterRef": "omnirt.contracts.types",
    "Artifact": "omnirt.contracts.types",
    "RunReport": "omnirt.contracts.types",
    "OmniRTError": "omnirt.contracts.errors",
    "RequestValidationError": "omnirt.contracts.errors",
}
_SUBMODULES = ("contracts", "registry", "models", "requests", "runtime")

__all__ = [*_EXPORTS, *_SUBMODULES, "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):  # `celery -A omnirt` looks for omnirt.app
        from omnirt.tasks.app import get_celery_app

        return get_celery_app()
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"omnirt.{name}")
    raise AttributeError(f"module 'omnirt' has no attribute {name!r}")
