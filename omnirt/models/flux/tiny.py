"""Tiny random-weight FLUX.1 dev / schnell / Fill / Kontext / Depth / Canny, for `omnirt make-tiny` and the tests.

This module owns the tiny copies of ``black-forest-labs/FLUX.1-dev`` (``flux-dev``), ``FLUX.1-schnell``
(``flux-schnell``), ``FLUX.1-Fill-dev`` (``flux-fill``), ``FLUX.1-Kontext-dev`` (``flux-kontext``),
``FLUX.1-Depth-dev`` (``flux-depth``) and ``FLUX.1-Canny-dev`` (``flux-canny``), each saved in
its real layout: a ``transformer`` (MMDiT + single-stream blocks), a KL ``vae`` without quant convs, a CLIP text
encoder (pooled embedding), a T5 encoder (sequence embedding) and a flow-matching scheduler.

* dev, Fill and Kontext are guidance-distilled (``guidance_embeds=True``); schnell is not, and its scheduler uses a
  fixed shift instead of resolution-dependent shifting, as in the real repos.
* The pipelines pack 2x2 latent patches into tokens, so the transformer sees ``4 * latent_channels`` channels.
  Fill concatenates, per token, the noisy latents, the masked-image latents and the mask at pixel resolution
  folded into the token (``4 * vae_scale_factor ** 2`` values), so its ``in_channels`` is
  ``4 * latent_channels * 2 + 4 * vae_scale_factor ** 2`` while ``out_channels`` stays ``4 * latent_channels``.
* Depth and Canny (:class:`~diffusers.FluxControlPipeline`) concatenate the packed latents of the control image to
  the packed noisy latents, so their ``in_channels`` is twice dev's, with ``out_channels`` ``4 * latent_channels``.
* ``pooled_projection_dim`` = CLIP ``hidden_size``; ``joint_attention_dim`` = T5 ``d_model``; the RoPE axes
  (``axes_dims_rope``) add up to ``attention_head_dim``.

The VAE has two blocks (2x downsampling); with the 2x2 packing, sizes must be multiples of 4. The tiny default is
32x32 (64 image tokens). Kontext rescales the output to ``max_area`` and, with ``_auto_resize``, the input image to a
~1 megapixel Kontext resolution; the tiny defaults keep both at the requested size.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_components import (
    TINY_CLIP_TEXT_CONFIG,
    TINY_FLUX_SCHEDULER_CONFIG,
    TINY_KL_VAE_CONFIG,
    TINY_T5_CONFIG,
)
from omnirt.models.tiny_tokenizers import clip_tokenizer, t5_tokenizer

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

# ---------------------------------------------------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------------------------------------------------

# CLIP ViT-L, the shared tiny CLIP text encoder: only its pooled output is used.
TEXT_ENCODER_CONFIG: dict[str, Any] = TINY_CLIP_TEXT_CONFIG

# T5-XXL encoder: the shared tiny T5 with T5 v1.1's gated-gelu.
TEXT_ENCODER_2_CONFIG: dict[str, Any] = {**TINY_T5_CONFIG, "feed_forward_proj": "gated-gelu"}

# The shared two-block KL VAE, without quant convs and with FLUX's latent shift and scaling.
VAE_CONFIG: dict[str, Any] = {
    **TINY_KL_VAE_CONFIG,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "shift_factor": 0.1159,
    "scaling_factor": 0.3611,
}

_LATENT_CHANNELS: int = VAE_CONFIG["latent_channels"]
_VAE_SCALE_FACTOR: int = 2 ** (len(VAE_CONFIG["block_out_channels"]) - 1)

DEV_TRANSFORMER_CONFIG: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 4 * _LATENT_CHANNELS,  # 2x2 packed latents
    "out_channels": None,  # = in_channels
    "num_layers": 1,
    "num_single_layers": 1,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": TEXT_ENCODER_2_CONFIG["d_model"],
    "pooled_projection_dim": TEXT_ENCODER_CONFIG["hidden_size"],
    "guidance_embeds": True,
    "axes_dims_rope": (4, 4, 8),
}

SCHNELL_TRANSFORMER_CONFIG: dict[str, Any] = {**DEV_TRANSFORMER_CONFIG, "guidance_embeds": False}

FILL_TRANSFORMER_CONFIG: dict[str, Any] = {
    **DEV_TRANSFORMER_CONFIG,
    # packed noisy latents + packed masked-image latents + packed pixel-resolution mask
    "in_channels": 4 * _LATENT_CHANNELS + 4 * _LATENT_CHANNELS + 4 * _VAE_SCALE_FACTOR**2,
    "out_channels": 4 * _LATENT_CHANNELS,
}

CONTROL_TRANSFORMER_CONFIG: dict[str, Any] = {
    **DEV_TRANSFORMER_CONFIG,
    "in_channels": 2 * 4 * _LATENT_CHANNELS,  # packed noisy latents + packed control-image latents
    "out_channels": 4 * _LATENT_CHANNELS,
}

# dev / Fill / Kontext / Depth / Canny: the shift grows with the image token count (the shared FLUX scheduler);
# schnell: a fixed shift of 1.
DEV_SCHEDULER_CONFIG: dict[str, Any] = TINY_FLUX_SCHEDULER_CONFIG

SCHNELL_SCHEDULER_CONFIG: dict[str, Any] = {"num_train_timesteps": 1000, "shift": 1.0, "use_dynamic_shifting": False}

DEFAULT_CONFIG: dict[str, Any] = {"height": 32, "width": 32, "num_inference_steps": 2}

# Kontext derives the output size from max_area (default 1024**2) and the aspect ratio, and with _auto_resize snaps
# the input image to a ~1 megapixel training resolution; both would make tiny calls slow.
KONTEXT_DEFAULT_CONFIG: dict[str, Any] = {**DEFAULT_CONFIG, "max_area": 32 * 32, "_auto_resize": False}


# ---------------------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------------------


def _components(transformer_config: dict[str, Any], scheduler_config: dict[str, Any]) -> dict[str, Any]:
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    return {
        "transformer": FluxTransformer2DModel(**transformer_config),
        "scheduler": FlowMatchEulerDiscreteScheduler(**scheduler_config),
        "vae": AutoencoderKL(**VAE_CONFIG),
        "text_encoder": CLIPTextModel(CLIPTextConfig(**TEXT_ENCODER_CONFIG)).eval(),
        "tokenizer": clip_tokenizer(),
        "text_encoder_2": T5EncoderModel(T5Config(**TEXT_ENCODER_2_CONFIG)).eval(),
        "tokenizer_2": t5_tokenizer(),
    }


def _dev() -> DiffusionPipeline:
    from diffusers import FluxPipeline

    return FluxPipeline(**_components(DEV_TRANSFORMER_CONFIG, DEV_SCHEDULER_CONFIG))


def _schnell() -> DiffusionPipeline:
    from diffusers import FluxPipeline

    return FluxPipeline(**_components(SCHNELL_TRANSFORMER_CONFIG, SCHNELL_SCHEDULER_CONFIG))


def _fill() -> DiffusionPipeline:
    from diffusers import FluxFillPipeline

    return FluxFillPipeline(**_components(FILL_TRANSFORMER_CONFIG, DEV_SCHEDULER_CONFIG))


def _kontext() -> DiffusionPipeline:
    from diffusers import FluxKontextPipeline

    return FluxKontextPipeline(**_components(DEV_TRANSFORMER_CONFIG, DEV_SCHEDULER_CONFIG))


def _control() -> DiffusionPipeline:
    from diffusers import FluxControlPipeline

    return FluxControlPipeline(**_components(CONTROL_TRANSFORMER_CONFIG, DEV_SCHEDULER_CONFIG))


_BUILDERS = {
    "flux-dev": (_dev, DEFAULT_CONFIG),
    "flux-schnell": (_schnell, DEFAULT_CONFIG),
    "flux-fill": (_fill, DEFAULT_CONFIG),
    "flux-kontext": (_kontext, KONTEXT_DEFAULT_CONFIG),
    "flux-depth": (_control, DEFAULT_CONFIG),
    "flux-canny": (_control, DEFAULT_CONFIG),
}


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` into ``target`` and return ``target``."""
    if model_id not in _BUILDERS:
        raise ValueError(f"no tiny FLUX.1 builder for {model_id!r}; known: {sorted(_BUILDERS)}")
    builder, default_config = _BUILDERS[model_id]
    seed_everything(0)
    pipe = builder()
    return save_tiny_pipeline(pipe, Path(target), model_id=model_id, default_config=dict(default_config))
