"""Tiny random-weight Mochi checkpoint (`mochi`) for `omnirt make-tiny`.

This module owns the component configs and the builder. The folder has the layout of ``genmo/mochi-1-preview``: a
``MochiPipeline`` with a T5 text encoder, the Mochi video VAE (spatial factor 8, temporal factor 6), the asymmetric
Mochi transformer and a flow-matching Euler scheduler.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.tiny_common import build_seeded_tiny
from omnirt.models.tiny_components import TINY_T5_CONFIG

MODEL_IDS = ("mochi",)

# The real factors: four blocks give a spatial factor of 8 and a temporal factor of 6; 12 latent channels.
VAE: dict[str, Any] = {
    "latent_channels": 12,
    "out_channels": 3,
    "encoder_block_out_channels": (32, 32, 32, 32),
    "decoder_block_out_channels": (32, 32, 32, 32),
    "layers_per_block": (1, 1, 1, 1, 1),
}

# The shared tiny T5 encoder (T5 v1.1 XXL on the real checkpoint).
TEXT_ENCODER: dict[str, Any] = TINY_T5_CONFIG

# in_channels is the VAE's latent_channels; text_embed_dim the text encoder's d_model.
TRANSFORMER: dict[str, Any] = {
    "patch_size": 2,
    "num_attention_heads": 2,
    "attention_head_dim": 8,
    "num_layers": 2,
    "pooled_projection_dim": 16,
    "in_channels": 12,
    "out_channels": None,
    "qk_norm": "rms_norm",
    "text_embed_dim": 32,
    "time_embed_dim": 4,
    "activation_fn": "swiglu",
    "max_sequence_length": 16,
}

# height and width must be multiples of 16; num_frames of the form 6k + 1. max_sequence_length: the transformer's.
DEFAULT_CONFIG: dict[str, Any] = {
    "height": 32,
    "width": 32,
    "num_frames": 7,
    "fps": 8,
    "num_inference_steps": 2,
    "max_sequence_length": 16,
}


def _build_pipeline() -> Any:
    from diffusers import AutoencoderKLMochi, FlowMatchEulerDiscreteScheduler, MochiPipeline, MochiTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    from omnirt.models.tiny_tokenizers import t5_tokenizer

    return MochiPipeline(
        tokenizer=t5_tokenizer(),
        text_encoder=T5EncoderModel(T5Config(**TEXT_ENCODER)).eval(),
        vae=AutoencoderKLMochi(**VAE),
        transformer=MochiTransformer3DModel(**TRANSFORMER),
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of the Mochi checkpoint ``model_id`` into ``target``."""
    builders = dict.fromkeys(MODEL_IDS, _build_pipeline)
    return build_seeded_tiny(model_id, target, family="Mochi", builders=builders, default_config=DEFAULT_CONFIG)
