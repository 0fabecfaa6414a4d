"""How a plain-torch network runs fastest on a backend: compute dtype, autocast, memory format, threads.

The avatar families (Wav2Lip, MuseTalk) run small convolutional networks many times a second, so the choice matters
more than for a diffusion call. On the CPU, bf16 autocast is used when the processor has native bf16 arithmetic
(AVX-512 BF16 or AMX; oneDNN reports it) and fp32 otherwise; convolutions run channels_last. On CUDA and Ascend the
weights are cast to fp16 or bf16. Every call runs under ``torch.inference_mode``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from omnirt.runtime.backends import Backend


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (oneDNN's check: AVX-512 BF16, AVX-512 core or AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@dataclass(frozen=True)
class Precision:
    """What a network runs as: its weights' dtype, an optional autocast dtype, and the memory format."""

    device_type: str
    weight_dtype: str  # "fp32" | "fp16" | "bf16"
    autocast_dtype: str | None  # None: no autocast
    channels_last: bool

    def describe(self) -> dict[str, Any]:
        return {
            "device": self.device_type,
            "weights": self.weight_dtype,
            "autocast": self.autocast_dtype or "off",
            "channels_last": self.channels_last,
        }

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Inference mode, plus autocast when the precision asks for it."""
        import torch

        with torch.inference_mode():
            if self.autocast_dtype is None:
                yield
                return
            with torch.autocast(self.device_type, dtype=_torch_dtype(self.autocast_dtype)):
                yield

    def place(self, module: Any, device: Any) -> Any:
        """Move ``module`` to ``device`` in this precision's weight dtype and memory format; eval mode."""
        import torch

        module = module.to(device=device, dtype=_torch_dtype(self.weight_dtype)).eval()
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def input(self, tensor: Any) -> Any:
        """An input tensor in the dtype and memory format the placed module expects."""
        import torch

        tensor = tensor.to(dtype=_torch_dtype(self.weight_dtype))
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor


def choose_precision(backend: Backend, dtype: str, *, requested: str | None = None) -> Precision:
    """The precision for ``backend`` given the engine's dtype choice.

    CPU: fp32 weights; bf16 autocast when the CPU has fast bf16, unless the user's config ``requested`` fp32.
    Accelerators: the engine's dtype (fp16 or bf16) for the weights, no autocast.
    """
    if backend.device_type == "cpu":
        use_bf16 = requested != "fp32" and cpu_has_fast_bf16()
        return Precision("cpu", "fp32", "bf16" if use_bf16 else None, channels_last=True)
    weight = dtype if dtype in ("fp16", "bf16") else "fp16"
    return Precision(backend.device_type, weight, None, channels_last=True)


def _torch_dtype(name: str) -> Any:
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]
