"""Tiny random-weight AnimateDiff SDXL folder (`animate-diff-sdxl`) for `omnirt make-tiny`.

The folder is the tiny SDXL base 1.0 (:mod:`omnirt.models.stable_diffusion_xl.tiny`, the layout of
``stabilityai/stable-diffusion-xl-base-1.0``) with a tiny ``MotionAdapter`` saved in ``motion_adapter/``, in the
layout of ``guoyww/animatediff-motion-adapter-sdxl-beta`` (``config.json`` and safetensors weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.animatediff.pipeline import MOTION_ADAPTER_FOLDER
from omnirt.models.stable_diffusion_xl import tiny as sdxl_tiny
from omnirt.models.tiny_common import seed_everything
from omnirt.runtime.weights import write_folder_defaults

MODEL_IDS = ("animate-diff-sdxl",)

# Motion modules for each block of the tiny SDXL UNet: same channels and layers per block; no motion mid block, as on
# the SDXL beta adapter.
MOTION_ADAPTER: dict[str, Any] = {
    "block_out_channels": sdxl_tiny.BASE_UNET_CONFIG["block_out_channels"],
    "motion_layers_per_block": sdxl_tiny.BASE_UNET_CONFIG["layers_per_block"],
    "motion_norm_num_groups": 2,
    "motion_num_attention_heads": 2,
    "use_motion_mid_block": False,
}

DEFAULT_CONFIG: dict[str, Any] = {**sdxl_tiny.DEFAULT_CONFIG, "num_frames": 4, "fps": 8}


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny SDXL base folder with a tiny motion adapter for ``model_id`` into ``target``."""
    from diffusers import MotionAdapter

    if model_id not in MODEL_IDS:
        raise ValueError(f"no tiny AnimateDiff builder for {model_id!r}; known: {list(MODEL_IDS)}")
    target = Path(target)
    sdxl_tiny.build_tiny("sdxl-base-1.0", target)
    seed_everything(1)
    MotionAdapter(**MOTION_ADAPTER).save_pretrained(target / MOTION_ADAPTER_FOLDER, safe_serialization=True)
    write_folder_defaults(target, model_id=model_id, default_config=dict(DEFAULT_CONFIG), tiny=True)
    return target
