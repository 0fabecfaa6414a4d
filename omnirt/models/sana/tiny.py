"""Tiny random-weight Sana, for `omnirt make-tiny` and the tests.

This module owns the tiny copy of ``Efficient-Large-Model/Sana_1600M_1024px_diffusers`` (``sana-1.6b``): a
:class:`~diffusers.SanaPipeline` saved in the real layout, with a linear-attention DiT ``transformer``
(:class:`~diffusers.SanaTransformer2DModel`), a deep-compression autoencoder ``vae``
(:class:`~diffusers.AutoencoderDC`), a Gemma 2 ``text_encoder`` (``Gemma2Model``) with its Gemma ``tokenizer``, and
DPM-Solver++ on flow-matching sigmas, as the real repository ships it.

How the dimensions are tied:

* ``transformer.in_channels`` = ``out_channels`` = the autoencoder's ``latent_channels`` (patch size 1).
* ``caption_channels`` = the text encoder's ``hidden_size`` (its last hidden state is used);
  ``cross_attention_dim`` = the transformer's width, ``num_attention_heads * attention_head_dim``.
* ``sample_size`` picks the aspect-ratio bins the pipeline snaps to when ``use_resolution_binning`` is on (32 for
  the real 1024px model). The tiny folder turns binning off, so the 32x32 default renders at 32x32.

The autoencoder has two stages (2x downsampling, 32x in the real one), so sizes must be even. The pipeline prepends
its "complex human instruction" to every prompt; with the one-byte-per-token tiny vocabulary that makes a prompt
of about 1,700 tokens, which the one-layer text encoder reads in well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_tokenizers import gemma_tokenizer

if TYPE_CHECKING:
    from diffusers import SanaPipeline

# ---------------------------------------------------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------------------------------------------------

TEXT_HIDDEN_SIZE = 8

# Gemma 2 (2B-it in the real model). Ids match ``tiny_tokenizers.gemma_tokenizer``: <pad>=0, <eos>=1, <bos>=2.
TEXT_ENCODER_CONFIG: dict[str, Any] = {
    "vocab_size": 360,
    "hidden_size": TEXT_HIDDEN_SIZE,
    "intermediate_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 4,
    "max_position_embeddings": 4096,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
}

# DC-AE with one ResBlock stage and one EfficientViT stage (multi-scale linear attention), as in the real f32c32
# autoencoder's shallow and deep stages.
VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "latent_channels": 4,
    "attention_head_dim": 2,
    "encoder_block_types": ("ResBlock", "EfficientViTBlock"),
    "decoder_block_types": ("ResBlock", "EfficientViTBlock"),
    "encoder_block_out_channels": (8, 8),
    "decoder_block_out_channels": (8, 8),
    "encoder_qkv_multiscales": ((), (5,)),
    "decoder_qkv_multiscales": ((), (5,)),
    "encoder_layers_per_block": (1, 1),
    "decoder_layers_per_block": (1, 1),
    "downsample_block_type": "conv",
    "upsample_block_type": "interpolate",
    "decoder_norm_types": "rms_norm",
    "decoder_act_fns": "silu",
    "scaling_factor": 0.41407,
}

_HEADS = 2
_HEAD_DIM = 4

TRANSFORMER_CONFIG: dict[str, Any] = {
    "in_channels": VAE_CONFIG["latent_channels"],
    "out_channels": VAE_CONFIG["latent_channels"],
    "patch_size": 1,
    "sample_size": 16,
    "num_layers": 2,
    "num_attention_heads": _HEADS,
    "attention_head_dim": _HEAD_DIM,
    "num_cross_attention_heads": _HEADS,
    "cross_attention_head_dim": _HEAD_DIM,
    "cross_attention_dim": _HEADS * _HEAD_DIM,
    "caption_channels": TEXT_HIDDEN_SIZE,
    "mlp_ratio": 2.5,
}

# DPM-Solver++ over flow-matching sigmas with a fixed shift: the real repository's scheduler.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "algorithm_type": "dpmsolver++",
    "solver_order": 2,
    "prediction_type": "flow_prediction",
    "use_flow_sigmas": True,
    "flow_shift": 3.0,
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


def _sana() -> SanaPipeline:
    from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaPipeline, SanaTransformer2DModel
    from transformers import Gemma2Config, Gemma2Model

    return SanaPipeline(
        tokenizer=gemma_tokenizer(),
        text_encoder=Gemma2Model(Gemma2Config(**TEXT_ENCODER_CONFIG)).eval(),
        vae=AutoencoderDC(**VAE_CONFIG),
        transformer=SanaTransformer2DModel(**TRANSFORMER_CONFIG),
        scheduler=DPMSolverMultistepScheduler(**SCHEDULER_CONFIG),
    )


_BUILDERS = {"sana-1.6b": _sana}


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` into ``target`` and return ``target``."""
    builder = _BUILDERS.get(model_id)
    if builder is None:
        raise ValueError(f"no tiny Sana builder for {model_id!r}; known: {sorted(_BUILDERS)}")
    seed_everything(0)
    pipe = builder()
    return save_tiny_pipeline(pipe, Path(target), model_id=model_id, default_config=dict(DEFAULT_CONFIG))
