"""The memory budget check that runs before a model loads.

The estimate is the size of the weights on disk, scaled to the dtype they load in, plus a working margin; for a
hub id that is not on disk, the spec's ``resource_hint.min_vram_gb``. The check fails early with a hint instead of
dying half-way through a load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.contracts.errors import InsufficientMemoryError
from omnirt.runtime.backends import Backend

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")
WORKING_MARGIN = 1.25
BYTES_PER_PARAM = {"fp32": 4, "fp16": 2, "bf16": 2}


def weights_bytes(folder: Path) -> tuple[int, int]:
    """(bytes of weight files, bytes per parameter they store): a fp16 variant stores 2, else 4."""
    total = 0
    half = 0
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in WEIGHT_SUFFIXES:
            size = path.stat().st_size
            total += size
            if ".fp16." in path.name:
                half += size
    return total, (2 if total and half * 2 > total else 4)


def estimate_gb(location: str, dtype: str, resource_hint: dict[str, Any]) -> float | None:
    folder = Path(location)
    if folder.is_dir():
        total, stored = weights_bytes(folder)
        return total / stored * BYTES_PER_PARAM.get(dtype, 4) * WORKING_MARGIN / 2**30
    hinted = resource_hint.get("min_vram_gb")
    return float(hinted) if hinted is not None else None


def ensure_memory_budget(
    model_id: str, location: str, *, dtype: str, backend: Backend, resource_hint: dict[str, Any], devices: int = 1
) -> float | None:
    """Raise :class:`InsufficientMemoryError` when the model clearly cannot fit. Returns the estimate in GB."""
    estimate = estimate_gb(location, dtype, resource_hint)
    if estimate is None:
        return None
    available = backend.available_memory_gb() * max(1, devices)
    if estimate > available:
        hint = (
            "Try dtype fp16/bf16, enable_model_cpu_offload or enable_sequential_cpu_offload, "
            "device_map=balanced over several devices, or free memory held by other models."
        )
        raise InsufficientMemoryError(model_id, estimate, available, hint)
    return estimate
