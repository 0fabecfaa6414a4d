"""dtype policy: which torch dtype a model loads in, for a backend and a request.

The request's ``dtype`` wins where the backend supports it; otherwise the backend's default. On the CPU, fp16 has
no fast kernels for most ops and is replaced by fp32, and the run report says so.
"""

from __future__ import annotations

from typing import Any

from omnirt.runtime.backends import Backend

DTYPE_NAMES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


def choose_dtype(backend: Backend, requested: str | None, model_default: str | None = None) -> tuple[str, str | None]:
    """Return (dtype name, note); the note explains a substitution.

    Precedence: the request's dtype; on an accelerator, the model's own (``resource_hint.dtype``); the backend's.
    """
    if requested is None:
        if model_default and backend.name != "cpu" and model_default in backend.dtype_options:
            return model_default, None
        return backend.default_dtype, None
    if requested in backend.dtype_options:
        return requested, None
    fallback = "fp32" if "fp32" in backend.dtype_options else backend.default_dtype
    return fallback, f"dtype {requested} is not supported on {backend.name}; using {fallback}"


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, DTYPE_NAMES[name])
