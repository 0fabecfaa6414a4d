"""CUDA and Ascend: the same tiny model through the same code, on the device. Skipped where there is no device."""

from __future__ import annotations

import pytest

from omnirt.contracts.types import GenerateRequest
from omnirt.runtime.backends import AscendBackend, CudaBackend, resolve_backend

needs_cuda = pytest.mark.skipif(not CudaBackend.available(), reason="no CUDA device on this host")
needs_ascend = pytest.mark.skipif(not AscendBackend.available(), reason="no Ascend NPU (torch_npu) on this host")


def test_auto_prefers_accelerators_and_falls_back_to_cpu() -> None:
    expected = "cuda" if CudaBackend.available() else "ascend" if AscendBackend.available() else "cpu"
    assert resolve_backend("auto").name == expected


@pytest.mark.parametrize(
    "backend", [pytest.param("cuda", marks=needs_cuda), pytest.param("ascend", marks=needs_ascend)]
)
def test_tiny_sd15_runs_on_the_accelerator(backend: str, tiny_model, engine) -> None:
    request = GenerateRequest(
        task="text2image",
        model="sd15",
        backend=backend,
        inputs={"prompt": "a cat"},
        config={"model_path": str(tiny_model("sd15")), "seed": 1},
    )
    result = engine.run(request)
    report = result.metadata
    assert report.backend == backend and report.device.startswith("cuda" if backend == "cuda" else "npu")
    assert report.config_resolved["dtype"] == "fp16"
    assert report.memory["peak_mb"] > 0
    assert set(report.device_placement.values()) == {report.device}


@needs_cuda
def test_cuda_compile_is_attempted_by_default(tiny_model, engine) -> None:
    request = GenerateRequest(
        task="text2image",
        model="sd15",
        backend="cuda",
        inputs={"prompt": "a cat"},
        config={"model_path": str(tiny_model("sd15")), "seed": 1},
    )
    attempts = engine.run(request).metadata.backend_timeline[0]["attempts"]
    assert attempts[0]["level"] == "compile" and attempts[0]["reason"] != "skipped: off by default on cuda"
    assert any(attempt["selected"] for attempt in attempts)
