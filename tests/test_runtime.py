"""Runtime behaviour behind `generate`: weights resolution, warm cache, schedulers, compile fallback, memory budget,
LoRA adapters, cancellation and placement, all on real tiny models on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnirt.contracts.errors import (
    InsufficientMemoryError,
    JobCancelledError,
    RequestValidationError,
    WeightFormatError,
    WeightsNotFoundError,
)
from omnirt.contracts.types import AdapterRef, GenerateRequest
from omnirt.workers.engine import Engine


def sd15_request(folder: Path | None, adapters: list[AdapterRef] | None = None, **config) -> GenerateRequest:
    if folder is not None:
        config["model_path"] = str(folder)
    return GenerateRequest(
        task="text2image",
        model="sd15",
        backend="cpu",
        inputs={"prompt": "a cat"},
        config={"seed": 11, **config},
        adapters=adapters,
    )


def test_missing_weights_error_names_all_three_places(engine: Engine) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        engine.run(sd15_request(None))
    message = str(info.value)
    assert "config.model_path (not set)" in message
    assert str(engine.models_dir / "sd15") in message
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in message and "HF_HUB_OFFLINE" in message


def test_models_dir_and_alias_resolution(tiny_model, tmp_path: Path) -> None:
    import shutil

    models_dir = tmp_path / "models"
    shutil.copytree(tiny_model("flux2.dev"), models_dir / "flux2.dev")
    engine = Engine(models_dir=models_dir, output_dir=tmp_path / "out")
    request = GenerateRequest(task="text2image", model="flux2-dev", backend="cpu", inputs={"prompt": "a cat"})
    result = engine.run(request)
    assert result.metadata.config_resolved["model_path"] == str((models_dir / "flux2.dev").resolve())
    # the folder's omnirt.json sized the run for the tiny weights
    assert result.metadata.config_resolved["width"] == 32
    assert any(event.event == "warning" and "alias" in event.data["message"] for event in result.metadata.events)


def test_folder_defaults_sit_under_presets_and_user_config(tiny_model, engine: Engine) -> None:
    folder = tiny_model("sd15")
    result = engine.run(sd15_request(folder, preset="fast", width=64, height=48))
    config = result.metadata.config_resolved
    assert config["num_inference_steps"] == 20  # the preset beats the folder's 2 steps
    assert (config["width"], config["height"]) == (64, 48)


def test_cache_key_ignores_per_run_settings_and_reloads_for_weights(tiny_model, engine: Engine) -> None:
    folder = tiny_model("sd15")
    engine.run(sd15_request(folder))
    engine.run(sd15_request(folder, num_inference_steps=1, seed=99, scheduler="ddim", width=32, height=32))
    assert len(engine.cache) == 1
    engine.run(sd15_request(folder, dtype="bf16"))
    assert len(engine.cache) == 2
    assert {key[2] for key in engine.cache.keys()} == {"fp32", "bf16"}


def test_schedulers_are_really_applied(tiny_model, engine: Engine) -> None:
    folder = tiny_model("sd15")
    outputs = {}
    for name in ("native", "euler-ancestral", "dpm-solver-karras"):
        result = engine.run(sd15_request(folder, scheduler=name))
        outputs[name] = result.outputs[0].sha256
        pipeline = engine.cache.get_or_load(engine.cache.keys()[0], lambda: None)[0].pipeline
        scheduler = pipeline.task_pipeline("text2image").scheduler
        if name == "dpm-solver-karras":
            assert type(scheduler).__name__ == "DPMSolverMultistepScheduler" and scheduler.config.use_karras_sigmas
        elif name == "euler-ancestral":
            assert type(scheduler).__name__ == "EulerAncestralDiscreteScheduler"
        else:
            assert scheduler is pipeline.native_scheduler
    assert len(set(outputs.values())) == 3


def test_compile_runs_through_dynamo_when_asked(tiny_model, engine: Engine) -> None:
    folder = tiny_model("sd15")
    eager = engine.run(sd15_request(folder))
    compiled = engine.run(sd15_request(folder, compile=True, compile_backend="eager"))
    attempts = compiled.metadata.backend_timeline[0]["attempts"]
    assert compiled.metadata.backend_timeline[0]["module"] == "unet"
    assert attempts[0] == {"level": "compile", "ok": True, "reason": "", "selected": True}
    assert eager.metadata.backend_timeline[0]["attempts"][0]["reason"] == "skipped: off by default on cpu"
    assert len(engine.cache) == 2  # compiling is a load-time choice, so it has its own warm entry


def test_compile_failure_falls_back_to_eager_and_is_recorded(tiny_model, engine: Engine) -> None:
    import torch._dynamo

    def broken_backend(graph, example_inputs):
        raise RuntimeError("backend exploded")

    torch._dynamo.register_backend(name="omnirt_test_broken", compiler_fn=broken_backend)
    folder = tiny_model("sd15")
    baseline = engine.run(sd15_request(folder))
    fallback = engine.run(sd15_request(folder, compile=True, compile_backend="omnirt_test_broken"))
    compile_attempt, eager_attempt = fallback.metadata.backend_timeline[0]["attempts"]
    assert compile_attempt["level"] == "compile" and not compile_attempt["ok"]
    assert "backend exploded" in compile_attempt["reason"]
    assert eager_attempt == {"level": "eager", "ok": True, "reason": "", "selected": True}
    assert fallback.outputs[0].sha256 == baseline.outputs[0].sha256  # eager fallback gives the eager result


def test_memory_budget_is_checked_before_loading(tiny_model, engine: Engine, monkeypatch) -> None:
    from omnirt.runtime.backends import CpuBackend

    monkeypatch.setattr(CpuBackend, "available_memory_gb", lambda self: 0.0001)
    with pytest.raises(InsufficientMemoryError) as info:
        engine.run(sd15_request(tiny_model("sd15")))
    assert info.value.code == "insufficient_memory" and "enable_model_cpu_offload" in str(info.value)
    assert len(engine.cache) == 0


def test_cancel_stops_at_the_next_step(tiny_model, engine: Engine) -> None:
    events = []
    with pytest.raises(JobCancelledError):
        engine.run(
            sd15_request(tiny_model("sd15"), num_inference_steps=5),
            on_event=events.append,
            should_cancel=lambda: any(event.event == "progress" for event in events),
        )
    assert [event.data["step"] for event in events if event.event == "progress"] == [1]
    assert events[-1].event == "run_failed"


def test_component_device_map_and_vae_switches_on_cpu(tiny_model, engine: Engine) -> None:
    folder = tiny_model("sd15")
    plain = engine.run(sd15_request(folder))
    mapped = engine.run(
        sd15_request(folder, device_map="vae:cpu,unet:cpu", enable_vae_slicing=True, enable_vae_tiling=True)
    )
    assert mapped.metadata.device_placement["vae"] == "cpu"
    assert mapped.metadata.device_placement["unet"] == "cpu"
    assert mapped.outputs[0].sha256 == plain.outputs[0].sha256


def test_cpu_offload_needs_an_accelerator(tiny_model, engine: Engine) -> None:
    with pytest.raises(RequestValidationError, match="use cuda or ascend"):
        engine.run(sd15_request(tiny_model("sd15"), enable_model_cpu_offload=True))


def test_task_pipelines_share_loaded_weights(tiny_model, engine: Engine, sample_image, sample_mask) -> None:
    folder = tiny_model("sd15")
    engine.run(sd15_request(folder))
    request = GenerateRequest(
        task="inpaint",
        model="sd15",
        backend="cpu",
        config={"model_path": str(folder)},
        inputs={"prompt": "a cat", "image": str(sample_image), "mask": str(sample_mask)},
    )
    result = engine.run(request)
    assert result.metadata.cache_hits == ["pipeline"] and len(engine.cache) == 1


# LoRA ------------------------------------------------------------------------------------------------------------


def write_unet_lora(folder: Path, target: Path, rank: int = 4) -> Path:
    """A rank-4 LoRA in the PEFT/diffusers key format on every attention projection of the tiny UNet."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
    generator = torch.Generator().manual_seed(0)
    tensors = {}
    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(("to_q", "to_k", "to_v", "to_out.0")):
            tensors[f"unet.{name}.lora_A.weight"] = torch.randn(rank, module.in_features, generator=generator)
            tensors[f"unet.{name}.lora_B.weight"] = torch.randn(module.out_features, rank, generator=generator)
    assert tensors, "the tiny UNet has attention projections"
    save_file(tensors, str(target))
    return target


def test_lora_loads_changes_output_scales_and_unloads(tiny_model, engine: Engine, tmp_path: Path) -> None:
    folder = tiny_model("sd15")
    lora = write_unet_lora(folder, tmp_path / "style.safetensors")
    base = engine.run(sd15_request(folder)).outputs[0].sha256
    styled = engine.run(sd15_request(folder, adapters=[AdapterRef(kind="lora", path=str(lora), scale=1.0)]))
    assert styled.outputs[0].sha256 != base
    muted = engine.run(sd15_request(folder, adapters=[AdapterRef(kind="lora", path=str(lora), scale=0.0)]))
    assert muted.outputs[0].sha256 == base
    assert len(engine.cache) == 3  # base, and one entry per adapter setting

    # Unloading restores the base weights in the same loaded pipeline.
    from omnirt.contracts.types import RunReport
    from omnirt.models.base import RunContext

    adapter_key = next(key for key in engine.cache.keys() if key[4] and key[4][0][2] == 1.0)
    pipeline = engine.cache.get_or_load(adapter_key, lambda: None)[0].pipeline
    pipeline.unload_adapters()
    request = sd15_request(folder)
    ctx = RunContext(request=request, config=dict(styled.metadata.config_resolved), output_dir=tmp_path / "unloaded")
    unloaded = pipeline.run(ctx, RunReport(task="text2image", model="sd15", backend="cpu"))
    assert unloaded.outputs[0].sha256 == base


def test_lora_from_folder_and_reference_errors(tiny_model, engine: Engine, tmp_path: Path) -> None:
    from omnirt.runtime.adapters import resolve_adapter_file

    folder = tiny_model("sd15")
    adapter_dir = tmp_path / "adapter"
    adapter_dir.mkdir()
    lora = write_unet_lora(folder, adapter_dir / "pytorch_lora_weights.safetensors")
    assert resolve_adapter_file(str(adapter_dir)) == str(lora)
    (tmp_path / "weights.bin").write_bytes(b"pickle")
    with pytest.raises(RequestValidationError, match=r"Only \.safetensors"):
        engine.run(sd15_request(folder, adapters=[AdapterRef(kind="lora", path=str(tmp_path / "weights.bin"))]))
    with pytest.raises(WeightsNotFoundError, match="Could not fetch LoRA"):
        resolve_adapter_file("hf://someone/some-lora/lora.safetensors?revision=main")
    with pytest.raises(WeightFormatError, match=r"Only \.safetensors"):
        resolve_adapter_file(str(tmp_path / "weights.bin"))
    with pytest.raises(WeightsNotFoundError, match="LoRA file not found"):
        resolve_adapter_file(str(tmp_path / "missing.safetensors"))


# Warm cache policies ---------------------------------------------------------------------------------------------


class _Loaded:
    def __init__(self, gigabytes: float) -> None:
        self.estimated_gb = gigabytes


def test_cache_unloads_idle_models_and_keeps_busy_ones() -> None:
    import time as clock

    from omnirt.runtime.cache import WarmPipelineCache

    cache = WarmPipelineCache(max_entries=4, idle_unload_s=0.05)
    idle, busy = ("a", "", "fp32", "cpu", ()), ("b", "", "fp32", "cpu", ())
    cache.get_or_load(idle, lambda: _Loaded(1))
    entry, _ = cache.get_or_load(busy, lambda: _Loaded(1))
    clock.sleep(0.1)
    with entry.lock:  # a run in progress
        assert cache.sweep() == 1
    assert cache.keys() == [busy]


def test_cache_evicts_least_recently_used_under_a_memory_budget() -> None:
    from omnirt.runtime.cache import WarmPipelineCache

    cache = WarmPipelineCache(max_entries=10, memory_budget_gb=5)
    first, second = ("m1", "", "fp32", "cpu", ()), ("m2", "", "fp32", "cpu", ())
    cache.get_or_load(first, lambda: _Loaded(2))
    cache.get_or_load(second, lambda: _Loaded(2))
    cache.get_or_load(first, lambda: _Loaded(2))  # touch: m2 is now least recently used
    cache.make_room(2)
    assert cache.keys() == [first]
    described = cache.describe()
    assert described[0]["model"] == "m1" and described[0]["estimated_gb"] == 2


def test_embedded_mode_configures_the_engine_from_settings_as_a_worker_does(tmp_path: Path) -> None:
    """The embedded server prepares its process like a Celery worker process: the warm cache's size, idle unload and
    memory budget, torch threads, limits and session capacity come from its settings, OMNIRT_PRELOAD models are
    loaded at start, and its heartbeat unloads idle models."""
    import time

    import omnirt.bench.noop  # noqa: F401 - registers bench-noop
    from omnirt.api import create_app
    from omnirt.settings import Settings
    from omnirt.workers.engine import get_default_engine
    from omnirt.workers.sessions import get_session_host

    engine, host = get_default_engine(), get_session_host()
    cache = engine.cache
    saved = (cache.max_entries, cache.idle_unload_s, cache.memory_budget_gb, engine.torch_threads, engine.limits)
    saved_capacity = host.capacity
    settings = Settings(
        artifact_dir=tmp_path / "outputs",
        cache_size=3,
        idle_unload_s=1.0,
        memory_budget_gb=7.5,
        torch_threads=1,
        limits={"max_steps": 20.0},
        session_capacity=2,
        preload=("bench-noop",),
        heartbeat_interval_s=0.1,
    )
    app = create_app(settings)
    try:
        assert get_default_engine() is engine  # reconfigured in place: what it holds stays warm
        assert (cache.max_entries, cache.idle_unload_s, cache.memory_budget_gb) == (3, 1.0, 7.5)
        assert engine.torch_threads == 1 and engine.limits == {"max_steps": 20.0} and host.capacity == 2
        assert "bench-noop" in [entry["model"] for entry in engine.loaded_models()]
        deadline = time.monotonic() + 15
        while "bench-noop" in [entry["model"] for entry in engine.loaded_models()] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "bench-noop" not in [entry["model"] for entry in engine.loaded_models()], "idle unload never ran"
    finally:
        app.extensions["omnirt"].close()
        cache.resize(saved[0], idle_unload_s=saved[1], memory_budget_gb=saved[2])
        engine.torch_threads, engine.limits = saved[3], saved[4]
        host.resize(saved_capacity)
