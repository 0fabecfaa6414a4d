"""Compute backends: ``cuda``, ``ascend`` (torch_npu) and ``cpu``; ``auto`` picks cuda > ascend > cpu.

A backend knows its torch device, how to synchronise it (so stage timings are real), its memory statistics and
whether ``torch.compile`` is available. The CPU is a real backend: it runs every model, slowly. torch is imported
lazily so that the API can resolve names without it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from omnirt.contracts.errors import BackendUnavailableError

__all__ = ["AscendBackend", "Backend", "BackendUnavailableError", "CpuBackend", "CudaBackend", "resolve_backend"]


@dataclass(frozen=True)
class Backend:
    name: str = "cpu"
    device_type: str = "cpu"
    default_dtype: str = "fp32"
    dtype_options: tuple[str, ...] = ("fp32", "bf16")

    @classmethod
    def available(cls) -> bool:
        return True

    def device(self, index: int = 0) -> Any:
        import torch

        return torch.device(self.device_type) if self.device_type == "cpu" else torch.device(self.device_type, index)

    def device_count(self) -> int:
        return 1

    @property
    def compile_available(self) -> bool:
        return True

    def synchronize(self) -> None:
        """Wait for queued device work, so a timer around it measures the work."""

    def reset_peak_memory(self) -> None:
        """Start a new peak-memory window."""

    def peak_memory_mb(self) -> float | None:
        return None

    def available_memory_gb(self) -> float:
        import psutil

        return psutil.virtual_memory().available / 2**30

    def capabilities(self) -> dict[str, Any]:
        return {
            "device": self.device_type,
            "dtype_options": list(self.dtype_options),
            "compile_available": self.compile_available,
            "device_count": self.device_count(),
        }


@dataclass(frozen=True)
class CpuBackend(Backend):
    """Runs every model on the host CPU, in fp32 by default (bf16 on request)."""

    def peak_memory_mb(self) -> float | None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class CudaBackend(Backend):
    name: str = "cuda"
    device_type: str = "cuda"
    default_dtype: str = "fp16"
    dtype_options: tuple[str, ...] = ("fp16", "bf16", "fp32")

    @classmethod
    def available(cls) -> bool:
        if importlib.util.find_spec("torch") is None:
            return False
        import torch

        return torch.cuda.is_available()

    def device_count(self) -> int:
        import torch

        return torch.cuda.device_count()

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize()

    def reset_peak_memory(self) -> None:
        import torch

        torch.cuda.reset_peak_memory_stats()

    def peak_memory_mb(self) -> float | None:
        import torch

        return torch.cuda.max_memory_allocated() / 2**20

    def available_memory_gb(self) -> float:
        import torch

        free, _total = torch.cuda.mem_get_info()
        return free / 2**30


@dataclass(frozen=True)
class AscendBackend(Backend):
    name: str = "ascend"
    device_type: str = "npu"
    default_dtype: str = "fp16"
    dtype_options: tuple[str, ...] = ("fp16", "bf16", "fp32")

    @classmethod
    def available(cls) -> bool:
        if importlib.util.find_spec("torch_npu") is None:
            return False
        import torch
        import torch_npu  # noqa: F401 - registers torch.npu

        return bool(torch.npu.is_available() and torch.npu.device_count() > 0)

    @property
    def compile_available(self) -> bool:
        # torch.compile on NPU needs the torchair backend, which OmniRT does not configure: run eager.
        return False

    def device_count(self) -> int:
        import torch

        return torch.npu.device_count()

    def synchronize(self) -> None:
        import torch

        torch.npu.synchronize()

    def reset_peak_memory(self) -> None:
        import torch

        torch.npu.reset_peak_memory_stats()

    def peak_memory_mb(self) -> float | None:
        import torch

        return torch.npu.max_memory_allocated() / 2**20

    def available_memory_gb(self) -> float:
        import torch

        free, _total = torch.npu.mem_get_info()
        return free / 2**30


_BY_NAME: dict[str, type[Backend]] = {"cuda": CudaBackend, "ascend": AscendBackend, "cpu": CpuBackend}


def resolve_backend(name: str | None = "auto") -> Backend:
    """The backend for ``name``; ``auto`` (or None) tries cuda, then ascend, then the CPU.

    ``OMNIRT_BACKEND`` overrides ``auto``.
    """
    name = (name or "auto").lower()
    if name == "cpu-stub":
        name = "cpu"
    if name == "auto":
        from omnirt.settings import Settings

        name = str(Settings.value("backend")).lower()
    if name == "auto":
        for candidate in (CudaBackend, AscendBackend):
            if candidate.available():
                return candidate()
        return CpuBackend()
    backend_cls = _BY_NAME.get(name)
    if backend_cls is None:
        raise BackendUnavailableError(f"Unsupported backend '{name}'. Expected one of: auto, cuda, ascend, cpu.")
    if not backend_cls.available():
        raise BackendUnavailableError(
            f"Backend '{name}' was requested but no {name} device is available on this host.",
            details={"backend": name},
        )
    return backend_cls()
