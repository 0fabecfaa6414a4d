"""Tiny random-weight Stable Diffusion XL base, refiner and turbo, for `omnirt make-tiny` and the tests.

This module owns the tiny copies of ``stabilityai/stable-diffusion-xl-base-1.0`` (``sdxl-base-1.0``),
``stabilityai/stable-diffusion-xl-refiner-1.0`` (``sdxl-refiner-1.0``) and ``stabilityai/sdxl-turbo``
(``sdxl-turbo``), each saved in its real layout.

* base and turbo: :class:`~diffusers.StableDiffusionXLPipeline` with two CLIP text encoders (the second with a
  projection); turbo differs only by its Euler-ancestral "trailing" scheduler. The base folder also serves
  image-to-image and inpainting through ``StableDiffusionXL{Img2Img,Inpaint}Pipeline.from_pipe``.
* refiner: :class:`~diffusers.StableDiffusionXLImg2ImgPipeline` with only ``text_encoder_2``/``tokenizer_2`` and
  ``requires_aesthetics_score=True``. Its UNet therefore sees 5 micro-conditioning ids (original size, crop,
  aesthetic score) instead of 6 (original size, crop, target size), and cross-attends to ``text_encoder_2`` alone.

The UNet's ``add_embedding`` input is ``n_time_ids * addition_time_embed_dim + text_encoder_2.projection_dim``.
The VAE has two blocks, so it downsamples 2x, and ``unet.sample_size * 2`` is the 64 pixel default.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_components import TINY_CLIP_TEXT_CONFIG, TINY_KL_VAE_CONFIG
from omnirt.models.tiny_tokenizers import clip_tokenizer

if TYPE_CHECKING:
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline

# ---------------------------------------------------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------------------------------------------------

# CLIP ViT-L (text_encoder) and OpenCLIP bigG with projection (text_encoder_2), at toy widths: the shared tiny CLIP
# text encoder, which has the 2 layers the pipelines need to read the penultimate hidden state.
TEXT_ENCODER_CONFIG: dict[str, Any] = TINY_CLIP_TEXT_CONFIG

TEXT_ENCODER_2_CONFIG: dict[str, Any] = {
    **TINY_CLIP_TEXT_CONFIG,
    "hidden_act": "gelu",
    "projection_dim": 32,
}

ADDITION_TIME_EMBED_DIM = 8

BASE_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "block_out_channels": (4, 8),
    "layers_per_block": 1,
    "norm_num_groups": 2,
    "attention_head_dim": (2, 4),
    "transformer_layers_per_block": (1, 2),
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": ADDITION_TIME_EMBED_DIM,
    # 6 time ids (original size, crop top-left, target size) + pooled text_encoder_2 embedding.
    "projection_class_embeddings_input_dim": 6 * ADDITION_TIME_EMBED_DIM + TEXT_ENCODER_2_CONFIG["projection_dim"],
    # Both encoders' hidden states, concatenated.
    "cross_attention_dim": TEXT_ENCODER_CONFIG["hidden_size"] + TEXT_ENCODER_2_CONFIG["hidden_size"],
}

REFINER_UNET_CONFIG: dict[str, Any] = {
    **BASE_UNET_CONFIG,
    # 5 time ids (original size, crop top-left, aesthetic score) + pooled text_encoder_2 embedding.
    "projection_class_embeddings_input_dim": 5 * ADDITION_TIME_EMBED_DIM + TEXT_ENCODER_2_CONFIG["projection_dim"],
    "cross_attention_dim": TEXT_ENCODER_2_CONFIG["hidden_size"],
}

# The shared two-block KL VAE, with SDXL's latent scaling and fp32 upcast.
VAE_CONFIG: dict[str, Any] = {**TINY_KL_VAE_CONFIG, "scaling_factor": 0.13025, "force_upcast": True}

EULER_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "interpolation_type": "linear",
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "use_karras_sigmas": False,
}

TURBO_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "trailing",
}

DEFAULT_CONFIG: dict[str, Any] = {"height": 64, "width": 64, "num_inference_steps": 2}

# The refiner is image-to-image: its pipeline default strength (0.3) leaves int(2 * 0.3) = 0 steps out of 2.
REFINER_DEFAULT_CONFIG: dict[str, Any] = {**DEFAULT_CONFIG, "strength": 1.0}


# ---------------------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------------------


def _text_encoder() -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(**TEXT_ENCODER_CONFIG)).eval()


def _text_encoder_2() -> Any:
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    return CLIPTextModelWithProjection(CLIPTextConfig(**TEXT_ENCODER_2_CONFIG)).eval()


def _text_to_image(scheduler: Any) -> StableDiffusionXLPipeline:
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel

    return StableDiffusionXLPipeline(
        vae=AutoencoderKL(**VAE_CONFIG),
        text_encoder=_text_encoder(),
        text_encoder_2=_text_encoder_2(),
        tokenizer=clip_tokenizer(),
        tokenizer_2=clip_tokenizer(),
        unet=UNet2DConditionModel(**BASE_UNET_CONFIG),
        scheduler=scheduler,
        image_encoder=None,
        feature_extractor=None,
        force_zeros_for_empty_prompt=True,
    )


def _base() -> StableDiffusionXLPipeline:
    from diffusers import EulerDiscreteScheduler

    return _text_to_image(EulerDiscreteScheduler(**EULER_SCHEDULER_CONFIG))


def _turbo() -> StableDiffusionXLPipeline:
    from diffusers import EulerAncestralDiscreteScheduler

    return _text_to_image(EulerAncestralDiscreteScheduler(**TURBO_SCHEDULER_CONFIG))


def _refiner() -> StableDiffusionXLImg2ImgPipeline:
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline, UNet2DConditionModel

    return StableDiffusionXLImg2ImgPipeline(
        vae=AutoencoderKL(**VAE_CONFIG),
        text_encoder=None,
        text_encoder_2=_text_encoder_2(),
        tokenizer=None,
        tokenizer_2=clip_tokenizer(),
        unet=UNet2DConditionModel(**REFINER_UNET_CONFIG),
        scheduler=EulerDiscreteScheduler(**EULER_SCHEDULER_CONFIG),
        image_encoder=None,
        feature_extractor=None,
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
    )


_BUILDERS = {
    "sdxl-base-1.0": (_base, DEFAULT_CONFIG),
    "sdxl-refiner-1.0": (_refiner, REFINER_DEFAULT_CONFIG),
    "sdxl-turbo": (_turbo, DEFAULT_CONFIG),
}


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` into ``target`` and return ``target``."""
    if model_id not in _BUILDERS:
        raise ValueError(f"no tiny Stable Diffusion XL builder for {model_id!r}; known: {sorted(_BUILDERS)}")
    builder, default_config = _BUILDERS[model_id]
    seed_everything(0)
    pipe = builder()
    return save_tiny_pipeline(pipe, Path(target), model_id=model_id, default_config=dict(default_config))
