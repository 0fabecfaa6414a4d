"""Tiny random-weight Stable Diffusion 1.5 and 2.1, for `omnirt make-tiny` and the tests.

This module owns the tiny copies of ``runwayml/stable-diffusion-v1-5`` (``sd15``) and
``stabilityai/stable-diffusion-2-1`` (``sd21``). Each is a :class:`~diffusers.StableDiffusionPipeline` saved in the real
layout (``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/``, no safety checker), so the same folder
also serves image-to-image and inpainting through ``StableDiffusion{Img2Img,Inpaint}Pipeline.from_pipe``.

The components keep the real architecture (a cross-attention UNet, a KL VAE, a CLIP text encoder) at toy widths.
The VAE has two blocks, so it downsamples 2x instead of 8x, and ``unet.sample_size * 2`` is the 64 pixel default.
SD 2.1 differs from 1.5 the way the real repos do: linear projections in the transformer blocks, per-block head
counts, upcast attention, a ``gelu`` text encoder and a v-prediction scheduler.

Both use DDIM with the real beta schedule. The real SD 1.5 repo ships PNDM, whose PLMS warm-up runs
``num_inference_steps + 1`` denoising steps; DDIM keeps "one step callback per requested step" true for the tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_components import TINY_CLIP_TEXT_CONFIG, TINY_KL_VAE_CONFIG
from omnirt.models.tiny_tokenizers import clip_tokenizer

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

# ---------------------------------------------------------------------------------------------------------------------
# Components. SD 1.5 first; SD 2.1 overrides the keys that differ in the real checkpoints.
# ---------------------------------------------------------------------------------------------------------------------

SD15_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
    "block_out_channels": (4, 8),
    "layers_per_block": 1,
    "norm_num_groups": 2,
    "attention_head_dim": 2,
    "cross_attention_dim": 32,  # = text encoder hidden_size
}

SD21_UNET_CONFIG: dict[str, Any] = {
    **SD15_UNET_CONFIG,
    "attention_head_dim": (2, 4),
    "use_linear_projection": True,
    "upcast_attention": True,
}

# The shared two-block KL VAE, with SD's latent scaling.
VAE_CONFIG: dict[str, Any] = {**TINY_KL_VAE_CONFIG, "scaling_factor": 0.18215}

# The shared tiny CLIP text encoder (quick_gelu, like CLIP ViT-L); SD 2.1's OpenCLIP uses gelu.
SD15_TEXT_ENCODER_CONFIG: dict[str, Any] = TINY_CLIP_TEXT_CONFIG

SD21_TEXT_ENCODER_CONFIG: dict[str, Any] = {**TINY_CLIP_TEXT_CONFIG, "hidden_act": "gelu"}

SD15_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
}

SD21_SCHEDULER_CONFIG: dict[str, Any] = {**SD15_SCHEDULER_CONFIG, "prediction_type": "v_prediction"}

DEFAULT_CONFIG: dict[str, Any] = {"height": 64, "width": 64, "num_inference_steps": 2}


# ---------------------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------------------


def _pipeline(
    unet_config: dict[str, Any], text_encoder_config: dict[str, Any], scheduler_config: dict[str, Any]
) -> StableDiffusionPipeline:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    return StableDiffusionPipeline(
        vae=AutoencoderKL(**VAE_CONFIG),
        text_encoder=CLIPTextModel(CLIPTextConfig(**text_encoder_config)).eval(),
        tokenizer=clip_tokenizer(),
        unet=UNet2DConditionModel(**unet_config),
        scheduler=DDIMScheduler(**scheduler_config),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def _sd15() -> StableDiffusionPipeline:
    return _pipeline(SD15_UNET_CONFIG, SD15_TEXT_ENCODER_CONFIG, SD15_SCHEDULER_CONFIG)


def _sd21() -> StableDiffusionPipeline:
    return _pipeline(SD21_UNET_CONFIG, SD21_TEXT_ENCODER_CONFIG, SD21_SCHEDULER_CONFIG)


_BUILDERS = {"sd15": _sd15, "sd21": _sd21}


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` into ``target`` and return ``target``."""
    builder = _BUILDERS.get(model_id)
    if builder is None:
        raise ValueError(f"no tiny Stable Diffusion builder for {model_id!r}; known: {sorted(_BUILDERS)}")
    seed_everything(0)
    pipe = builder()
    return save_tiny_pipeline(pipe, Path(target), model_id=model_id, default_config=dict(DEFAULT_CONFIG))
