"""Each validation rule: errors versus warnings, every issue reported at once, suggestions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from omnirt.contracts.types import AdapterRef, GenerateRequest
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry import registry
from omnirt.registry.validation import parse_device_map, parse_devices, validate_request


def check(model: str = "sd15", task: str = "text2image", inputs: dict | None = None, **config):
    request = GenerateRequest(
        task=task, model=model, backend="cpu", inputs={"prompt": "a cat"} if inputs is None else inputs, config=config
    )
    return validate_request(request)


def errors(result) -> str:
    return "\n".join(result.errors)


def test_valid_request_resolves_defaults() -> None:
    result = check(seed=5)
    assert result.ok and result.resolved_backend == "cpu"
    assert result.resolved_config["width"] == 512 and result.resolved_config["seed"] == 5


def test_unknown_model_suggests_nearby() -> None:
    result = check(model="sd-15")
    assert not result.ok and "Did you mean: sd15" in errors(result)


def test_model_without_that_task() -> None:
    assert "supports tasks [text2image], got 'inpaint'" in errors(check(model="flux-dev", task="inpaint"))


def test_preset_applies_under_explicit_config_with_warning() -> None:
    result = check(preset="quality", guidance_scale=3.0)
    assert result.ok
    assert result.resolved_config["num_inference_steps"] == 40 and result.resolved_config["guidance_scale"] == 3.0
    assert "Applied preset 'quality'" in result.warnings[0]
    assert "config.preset must be one of" in errors(check(preset="turbo"))


def test_unsupported_inputs_and_config_list_what_is_supported() -> None:
    result = check(inputs={"prompt": "x", "audio_prompt": "y"}, num_inference_step=3)
    text = errors(result)
    assert (
        "Unsupported inputs for sd15 (text2image): audio_prompt" in text
        and "Supported: negative_prompt, prompt" in text
    )
    assert "num_inference_step" in text and "did you mean 'num_inference_steps'" in text


def test_every_problem_is_reported_at_once() -> None:
    result = check(inputs={}, width=100, strength=3)
    assert len(result.errors) == 3


@pytest.mark.parametrize("prompt", [None, ""])
def test_missing_or_empty_required_input(prompt) -> None:
    inputs = {} if prompt is None else {"prompt": prompt}
    assert "Missing required input 'prompt'" in errors(check(inputs=inputs))


def test_input_files_must_exist(tmp_path) -> None:
    result = check(task="image2image", inputs={"prompt": "x", "image": str(tmp_path / "nope.png")})
    assert "Input 'image' file does not exist" in errors(result)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"strength": 1.5}, "config.strength must be a number in [0, 1]"),
        ({"width": "wide"}, "config.width must be a positive multiple of 8"),
        ({"height": 100}, "config.height must be a positive multiple of 8"),
        ({"num_inference_steps": 0}, "config.num_inference_steps must be an integer >= 1"),
        ({"num_inference_steps": True}, "config.num_inference_steps must be an integer >= 1"),
        ({"guidance_scale": -1}, "config.guidance_scale must be a number >= 0"),
        ({"seed": -4}, "config.seed must be an integer"),
        ({"dtype": "int4"}, "config.dtype must be one of fp16, bf16, fp32"),
        ({"enable_vae_tiling": "yes"}, "config.enable_vae_tiling must be true or false"),
    ],
)
def test_value_rules(config: dict, message: str) -> None:
    task = "image2image" if "strength" in config else "text2image"
    inputs = {"prompt": "x", "image": __file__} if task == "image2image" else None
    assert message in errors(check(task=task, inputs=inputs, **config))


def test_offload_switches_are_exclusive() -> None:
    result = check(enable_model_cpu_offload=True, enable_sequential_cpu_offload=True)
    assert "mutually exclusive" in errors(result)


@pytest.mark.parametrize("value", ["balanced", "auto", "sequential", '{"unet": 0}', "unet:0,vae:cpu", {"vae": 1}])
def test_device_map_forms_parse(value) -> None:
    assert check(device_map=value).ok
    assert parse_device_map("unet:0,vae:cpu") == {"unet": 0, "vae": "cpu"}


@pytest.mark.parametrize("value", ["unet", "[1,2]", "", 7])
def test_bad_device_map(value) -> None:
    assert "config.device_map is invalid" in errors(check(device_map=value))


def test_devices_parse() -> None:
    assert parse_devices("0, 1") == ["0", "1"] and parse_devices([0, 1]) == ["0", "1"]
    assert "config.devices is invalid" in errors(check(devices={"a": 1}))


def test_scheduler_must_be_supported() -> None:
    assert check(scheduler="dpm-solver-karras").ok
    text = errors(check(model="flux-dev", scheduler="ddim"))
    assert "Scheduler 'ddim' is not supported by flux-dev" in text


def test_adapters_only_where_declared() -> None:
    lora = [AdapterRef(kind="lora", path="/x.safetensors")]
    request = GenerateRequest(task="image2video", model="svd", backend="cpu", inputs={"image": __file__}, adapters=lora)
    assert "does not accept adapters" in errors(validate_request(request))


def test_unavailable_backend_is_an_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has CUDA; the error needs a host without it")
    request = GenerateRequest(task="text2image", model="sd15", backend="cuda", inputs={"prompt": "x"})
    assert "Backend 'cuda' was requested but no cuda device is available" in errors(validate_request(request))


def test_alias_warns() -> None:
    result = check(model="flux2-dev")
    assert result.ok and "Model 'flux2-dev' is an alias of 'flux2.dev'." in result.warnings


@pytest.fixture()
def script_model() -> Iterator[str]:
    """A registered model whose config takes the script-runtime keys (launcher, repo paths, quantization)."""
    keys = (
        "launcher",
        "group_offload_type",
        "quantization",
        "cache",
        "cache_threshold",
        "repo_path",
        "ckpt_dir",
        "wav2vec_dir",
        "env_script",
        "python_executable",
    )
    registry.register_model(
        id="test-script-model", task="text2video", required_inputs=("prompt",), supported_config=keys
    )(DiffusersPipeline)
    yield "test-script-model"
    del registry._REGISTRY[("test-script-model", "text2video")]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"launcher": "mpirun"}, "config.launcher must be one of python, torchrun, accelerate"),
        ({"group_offload_type": "row"}, "config.group_offload_type must be one of block_level, leaf_level"),
        ({"quantization": "int3"}, "config.quantization must be one of int8, fp8"),
        ({"cache": "tea_cache"}, "config.cache must be one of first_block_cache"),
        ({"cache": "first_block_cache", "cache_threshold": 1.5}, "config.cache_threshold must be a number in (0, 1]"),
        ({"repo_path": "/no/such/repo"}, "config.repo_path does not exist"),
        ({"env_script": "/no/such/env.sh"}, "config.env_script does not exist"),
    ],
)
def test_script_runtime_rules(script_model: str, config: dict, message: str) -> None:
    assert message in errors(check(model=script_model, task="text2video", **config))


def test_wav2vec_dir_is_relative_to_repo(script_model: str, tmp_path) -> None:
    (tmp_path / "wav2vec").mkdir()
    assert check(model=script_model, task="text2video", repo_path=str(tmp_path), wav2vec_dir="wav2vec").ok
    missing = check(model=script_model, task="text2video", repo_path=str(tmp_path), wav2vec_dir="other")
    assert "config.wav2vec_dir does not exist" in errors(missing)


def test_strength_must_leave_a_step() -> None:
    result = check(task="image2image", inputs={"prompt": "x", "image": __file__}, strength=0.3, num_inference_steps=2)
    assert "leaves no denoising step" in errors(result)
    assert check(task="image2image", inputs={"prompt": "x", "image": __file__}, strength=0.5, num_inference_steps=2).ok


def test_adapter_files_are_checked(tmp_path) -> None:
    (tmp_path / "lora.bin").write_bytes(b"x")
    for path, message in (
        (tmp_path / "none.safetensors", "Adapter file does not exist"),
        (tmp_path / "lora.bin", "Only .safetensors adapters"),
    ):
        request = GenerateRequest(
            task="text2image",
            model="sd15",
            backend="cpu",
            inputs={"prompt": "x"},
            adapters=[AdapterRef(kind="lora", path=str(path))],
        )
        assert message in errors(validate_request(request))
