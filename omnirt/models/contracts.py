"""Per-task request contracts shared by the diffusers families: inputs, config keys and defaults for registration.

A family calls :func:`diffusion_contract` to get the ``register_model`` keyword arguments for one of its tasks, so
every family states the same inputs for the same task.
"""

from __future__ import annotations

from typing import Any

from omnirt.models.diffusers_pipeline import RUNTIME_CONFIG_KEYS
from omnirt.runtime.acceleration import STEP_CACHE_CONFIG_KEYS
from omnirt.runtime.schedulers import UNET_SCHEDULERS

FLOW_SCHEDULERS = ("native",)
UNET = UNET_SCHEDULERS

_IMAGE_CONFIG = ("num_inference_steps", "guidance_scale", "width", "height", "num_images_per_prompt")
_VIDEO_CONFIG = ("num_inference_steps", "guidance_scale", "width", "height", "num_frames", "fps")

# task -> (required inputs, optional inputs, task-specific config keys, artifact kind, default chain role)
_TASKS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], str, str]] = {
    "text2image": (("prompt",), ("negative_prompt",), _IMAGE_CONFIG, "image", "avatar-asset"),
    "image2image": (("image", "prompt"), ("negative_prompt",), (*_IMAGE_CONFIG, "strength"), "image", "avatar-asset"),
    "inpaint": (
        ("image", "mask", "prompt"),
        ("negative_prompt",),
        (*_IMAGE_CONFIG, "strength"),
        "image",
        "avatar-asset",
    ),
    "edit": (("image", "prompt"), ("negative_prompt",), _IMAGE_CONFIG, "image", "avatar-asset"),
    # Keeps the depth structure of the image (estimated by the pipeline); ``strength`` as in image2image.
    "depth2image": (("image", "prompt"), ("negative_prompt",), (*_IMAGE_CONFIG, "strength"), "image", "avatar-asset"),
    "text2video": (("prompt",), ("negative_prompt",), _VIDEO_CONFIG, "video", "idle-video"),
    "image2video": (("image",), ("prompt", "negative_prompt"), _VIDEO_CONFIG, "video", "idle-video"),
}


def diffusion_contract(
    task: str,
    *,
    defaults: dict[str, Any],
    schedulers: tuple[str, ...] = FLOW_SCHEDULERS,
    extra_config: tuple[str, ...] = (),
    drop_config: tuple[str, ...] = (),
    negative_prompt: bool = True,
    prompt: bool = True,
    require_prompt: bool = False,
    lora: bool = True,
    step_cache: bool = False,
    **capabilities: Any,
) -> dict[str, Any]:
    """``register_model`` keyword arguments for a diffusers family serving ``task``.

    ``step_cache``: whether the denoiser takes diffusers' First Block Cache (``config.cache``); a family opts in
    where its pipeline is one :data:`~omnirt.runtime.acceleration.FIRST_BLOCK_CACHE_PIPELINES` lists (the tests run
    each). Tasks with a prompt accept
    ``prompt_cache`` (the prompt-embedding cache's per-request opt-out).
    """
    required, optional, task_config, artifact_kind, role = _TASKS[task]
    if not prompt:
        required = tuple(name for name in required if name != "prompt")
        optional = tuple(name for name in optional if name != "prompt")
    if require_prompt and "prompt" not in required:
        required = (*required, "prompt")
        optional = tuple(name for name in optional if name != "prompt")
    if not negative_prompt:
        optional = tuple(name for name in optional if name != "negative_prompt")
    optional_runtime = (
        *(("prompt_cache",) if "prompt" in (*required, *optional) else ()),
        *(STEP_CACHE_CONFIG_KEYS if step_cache else ()),
    )
    config = [
        key for key in (*RUNTIME_CONFIG_KEYS, *optional_runtime, *task_config, *extra_config) if key not in drop_config
    ]
    if schedulers == FLOW_SCHEDULERS:
        defaults = {"scheduler": "native", **defaults}
    return {
        "required_inputs": required,
        "optional_inputs": optional,
        "supported_config": tuple(dict.fromkeys(config)),
        "default_config": dict(defaults),
        "supported_schedulers": schedulers,
        "adapter_kinds": ("lora",) if lora else (),
        "artifact_kind": artifact_kind,
        "domain": "image-generation" if artifact_kind == "image" else "video-generation",
        "chain_role": role,
        "execution_mode": "legacy_call",
        **capabilities,
    }


def speech_contract(
    task: str,
    *,
    defaults: dict[str, Any],
    extra_config: tuple[str, ...] = (),
    optional_inputs: tuple[str, ...] = (),
    **capabilities: Any,
) -> dict[str, Any]:
    """``register_model`` keyword arguments for a speech family: text2audio (TTS) or audio2text (ASR)."""
    from omnirt.models.speech import ASR_CONFIG, TTS_CONFIG

    if task == "text2audio":
        required, config, artifact_kind = ("prompt",), TTS_CONFIG, "audio"
        capabilities.setdefault("streaming", True)
        capabilities.setdefault("service_adapter", "text2audio.service.v1")
    elif task == "audio2text":
        required, config, artifact_kind = ("audio",), ASR_CONFIG, "text"
    else:
        raise ValueError(f"speech_contract does not cover task {task!r}")
    return {
        "required_inputs": required,
        "optional_inputs": optional_inputs,
        "supported_config": tuple(dict.fromkeys((*config, *extra_config))),
        "default_config": dict(defaults),
        "artifact_kind": artifact_kind,
        "domain": "digital-human",
        "supports_batching": False,
        **capabilities,
    }
