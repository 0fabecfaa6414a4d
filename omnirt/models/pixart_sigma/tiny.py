"""Tiny random-weight PixArt-Sigma, for `omnirt make-tiny` and the tests.

This module owns the tiny copy of ``PixArt-alpha/PixArt-Sigma-XL-2-1024-MS`` (``pixart-sigma``): a
:class:`~diffusers.PixArtSigmaPipeline` saved in the real layout, with a DiT ``transformer``
(:class:`~diffusers.PixArtTransformer2DModel`, adaLN-single), a KL ``vae`` (SDXL's scaling), a T5 ``text_encoder``
with its ``tokenizer``, and a DPM-Solver++ scheduler.

How the dimensions are tied:

* ``transformer.in_channels`` = the VAE's ``latent_channels``; ``out_channels`` is twice that (the model also
  predicts the variance, which the pipeline drops).
* ``caption_channels`` = the T5 ``d_model`` (the caption projection maps it to the transformer's width,
  ``num_attention_heads * attention_head_dim``, which is also its ``cross_attention_dim``).
* ``sample_size`` picks the aspect-ratio bins the pipeline snaps to when ``use_resolution_binning`` is on (128 for
  the real 1024px model). The tiny folder turns binning off, so the 32x32 default renders at 32x32.

The VAE has two blocks (2x downsampling) and the patch is 2x2, so sizes must be multiples of 4.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_components import TINY_KL_VAE_CONFIG, TINY_T5_CONFIG
from omnirt.models.tiny_tokenizers import t5_tokenizer

if TYPE_CHECKING:
    from diffusers import PixArtSigmaPipeline

# ---------------------------------------------------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------------------------------------------------

# T5-XXL v1.1 encoder: the shared tiny T5 with its gated-gelu.
TEXT_ENCODER_CONFIG: dict[str, Any] = {**TINY_T5_CONFIG, "feed_forward_proj": "gated-gelu"}

# The shared two-block KL VAE with SDXL's latent scaling (PixArt-Sigma uses the SDXL VAE).
VAE_CONFIG: dict[str, Any] = {**TINY_KL_VAE_CONFIG, "scaling_factor": 0.13025}

_HEADS = 2
_HEAD_DIM = 8

TRANSFORMER_CONFIG: dict[str, Any] = {
    "sample_size": 16,
    "patch_size": 2,
    "in_channels": VAE_CONFIG["latent_channels"],
    "out_channels": 2 * VAE_CONFIG["latent_channels"],  # noise and variance
    "num_layers": 2,
    "num_attention_heads": _HEADS,
    "attention_head_dim": _HEAD_DIM,
    "cross_attention_dim": _HEADS * _HEAD_DIM,
    "caption_channels": TEXT_ENCODER_CONFIG["d_model"],
    "norm_type": "ada_norm_single",
    "norm_elementwise_affine": False,
    "norm_eps": 1e-6,
    "use_additional_conditions": False,
    "interpolation_scale": 1,
}

SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "algorithm_type": "dpmsolver++",
    "solver_order": 2,
    "prediction_type": "epsilon",
}

DEFAULT_CONFIG: dict[str, Any] = {
    "height": 32,
    "width": 32,
    "num_inference_steps": 2,
    "max_sequence_length": 32,
    "use_resolution_binning": False,
}


# ---------------------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------------------


def _pixart_sigma() -> PixArtSigmaPipeline:
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    return PixArtSigmaPipeline(
        tokenizer=t5_tokenizer(),
        text_encoder=T5EncoderModel(T5Config(**TEXT_ENCODER_CONFIG)).eval(),
        vae=AutoencoderKL(**VAE_CONFIG),
        transformer=PixArtTransformer2DModel(**TRANSFORMER_CONFIG),
        scheduler=DPMSolverMultistepScheduler(**SCHEDULER_CONFIG),
    )


_BUILDERS = {"pixart-sigma": _pixart_sigma}


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` into ``target`` and return ``target``."""
    builder = _BUILDERS.get(model_id)
    if builder is None:
        raise ValueError(f"no tiny PixArt-Sigma builder for {model_id!r}; known: {sorted(_BUILDERS)}")
    seed_everything(0)
    pipe = builder()
    return save_tiny_pipeline(pipe, Path(target), model_id=model_id, default_config=dict(DEFAULT_CONFIG))
