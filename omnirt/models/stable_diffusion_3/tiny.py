"""Tiny random-weight Stable Diffusion 3 / 3.5, for `omnirt make-tiny` and the tests.

This module owns the tiny copies of ``stabilityai/stable-diffusion-3-medium-diffusers`` (``sd3-medium``),
``stabilityai/stable-diffusion-3.5-large`` (``sd3.5-large``), ``stabilityai/stable-diffusion-3.5-large-turbo``
(``sd3.5-large-turbo``) and ``stabilityai/stable-diffusion-3.5-medium`` (``sd3.5-medium``). Each is a
:class:`~diffusers.StableDiffusion3Pipeline` saved in the real layout: an MMDiT ``transformer``, a KL ``vae``
without quant convs, two CLIP text encoders with projection and a T5 encoder, and a flow-matching scheduler.

The variants differ as the real checkpoints do: 3.5 adds RMS q/k normalisation, and 3.5-medium (MMDiT-X) also runs
dual attention in its first layer. The dimensions are tied the way the pipeline combines the encoders:

* ``pooled_projection_dim`` = CLIP-L ``projection_dim`` + CLIP-G ``projection_dim`` (pooled embeddings concatenated);
* ``joint_attention_dim`` = T5 ``d_model``; the concatenated CLIP hidden states (CLIP-L + CLIP-G hidden sizes) are
  zero-padded up to it, so it must not be smaller.

The VAE has two blocks (2x downsampling) and the transformer uses 2x2 patches, so sizes must be multiples of 4;
``transformer.sample_size * 2`` is the 64 pixel pipeline default, and the tiny default is 32.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_components import TINY_CLIP_TEXT_CONFIG, TINY_KL_VAE_CONFIG, TINY_T5_CONFIG
from omnirt.models.tiny_tokenizers import clip_tokenizer, t5_tokenizer

if TYPE_CHECKING:
    from diffusers import StableDiffusion3Pipeline

# ---------------------------------------------------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------------------------------------------------

# CLIP ViT-L and OpenCLIP bigG, both with projection; the pipeline reads the penultimate hidden state. Both are the
# shared tiny CLIP text encoder, at widths 16 and 32.
TEXT_ENCODER_CONFIG: dict[str, Any] = {**TINY_CLIP_TEXT_CONFIG, "hidden_size": 16, "projection_dim": 16}

TEXT_ENCODER_2_CONFIG: dict[str, Any] = {
    **TEXT_ENCODER_CONFIG,
    "hidden_size": 32,
    "projection_dim": 32,
    "hidden_act": "gelu",
}

# T5-XXL encoder: the shared tiny T5 with T5 v1.1's gated-gelu, wide enough to take both CLIP hidden states.
TEXT_ENCODER_3_CONFIG: dict[str, Any] = {**TINY_T5_CONFIG, "d_model": 64, "feed_forward_proj": "gated-gelu"}

# The shared two-block KL VAE, without quant convs and with SD3's latent shift and scaling.
VAE_CONFIG: dict[str, Any] = {
    **TINY_KL_VAE_CONFIG,
    "latent_channels": 16,  # as real; StableDiffusion3InpaintPipeline accepts only 16 (or 33) transformer inputs
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "shift_factor": 0.0609,
    "scaling_factor": 1.5305,
}

SD3_TRANSFORMER_CONFIG: dict[str, Any] = {
    "sample_size": 32,
    "patch_size": 2,
    "in_channels": VAE_CONFIG["latent_channels"],
    "out_channels": VAE_CONFIG["latent_channels"],
    "num_layers": 2,
    "attention_head_dim": 8,
    "num_attention_heads": 4,
    "caption_projection_dim": 32,  # = num_attention_heads * attention_head_dim
    "joint_attention_dim": TEXT_ENCODER_3_CONFIG["d_model"],
    "pooled_projection_dim": TEXT_ENCODER_CONFIG["projection_dim"] + TEXT_ENCODER_2_CONFIG["projection_dim"],
    "pos_embed_max_size": 32,  # the saved position table: latents up to 64x64 (images up to 128x128)
}

SD35_LARGE_TRANSFORMER_CONFIG: dict[str, Any] = {**SD3_TRANSFORMER_CONFIG, "qk_norm": "rms_norm"}

SD35_MEDIUM_TRANSFORMER_CONFIG: dict[str, Any] = {**SD35_LARGE_TRANSFORMER_CONFIG, "dual_attention_layers": (0,)}

SCHEDULER_CONFIG: dict[str, Any] = {"num_train_timesteps": 1000, "shift": 3.0}

DEFAULT_CONFIG: dict[str, Any] = {"height": 32, "width": 32, "num_inference_steps": 2}

_TRANSFORMER_CONFIGS: dict[str, dict[str, Any]] = {
    "sd3-medium": SD3_TRANSFORMER_CONFIG,
    "sd3.5-large": SD35_LARGE_TRANSFORMER_CONFIG,
    "sd3.5-large-turbo": SD35_LARGE_TRANSFORMER_CONFIG,
    "sd3.5-medium": SD35_MEDIUM_TRANSFORMER_CONFIG,
}


# ---------------------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------------------


def _pipeline(transformer_config: dict[str, Any]) -> StableDiffusion3Pipeline:
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    return StableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel(**transformer_config),
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
        vae=AutoencoderKL(**VAE_CONFIG),
        text_encoder=CLIPTextModelWithProjection(CLIPTextConfig(**TEXT_ENCODER_CONFIG)).eval(),
        tokenizer=clip_tokenizer(),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**TEXT_ENCODER_2_CONFIG)).eval(),
        tokenizer_2=clip_tokenizer(),
        text_encoder_3=T5EncoderModel(T5Config(**TEXT_ENCODER_3_CONFIG)).eval(),
        tokenizer_3=t5_tokenizer(),
    )


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` into ``target`` and return ``target``."""
    transformer_config = _TRANSFORMER_CONFIGS.get(model_id)
    if transformer_config is None:
        raise ValueError(f"no tiny Stable Diffusion 3 builder for {model_id!r}; known: {sorted(_TRANSFORMER_CONFIGS)}")
    seed_everything(0)
    pipe = _pipeline(transformer_config)
    return save_tiny_pipeline(pipe, Path(target), model_id=model_id, default_config=dict(DEFAULT_CONFIG))
