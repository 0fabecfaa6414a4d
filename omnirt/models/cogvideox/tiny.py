"""Tiny random-weight CogVideoX checkpoints (`cogvideox-2b`, `cogvideox-5b`) for `omnirt make-tiny`.

This module owns the component configs and the builder of both ids. Each folder has the layout of
``THUDM/CogVideoX-2b`` / ``THUDM/CogVideoX-5b``: a ``CogVideoXPipeline`` with a T5 text encoder, a 3D causal VAE,
the CogVideoX transformer and the CogVideoX DDIM scheduler. As on the real checkpoints, 2b uses learned-size sincos
position embeddings and 5b uses 3D rotary embeddings; 5b also has its own VAE scaling factor and SNR shift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_components import TINY_T5_CONFIG

# Four blocks: spatial factor 8, temporal factor 4 (the real factors).
VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("CogVideoXDownBlock3D",) * 4,
    "up_block_types": ("CogVideoXUpBlock3D",) * 4,
    "block_out_channels": (8, 8, 8, 8),
    "latent_channels": 4,
    "layers_per_block": 1,
    "norm_num_groups": 2,
    "temporal_compression_ratio": 4,
}

# The shared tiny T5 encoder (T5 v1.1 XXL on the real checkpoints).
TEXT_ENCODER: dict[str, Any] = TINY_T5_CONFIG

# The pipeline's default height, width and num_frames come from sample_height/width (latent pixels) and
# sample_frames: 4 x 8 = 32 pixels, 9 frames. max_text_seq_length must equal the pipeline's default
# max_sequence_length (226). text_embed_dim is the text encoder's d_model.
TRANSFORMER_2B: dict[str, Any] = {
    "num_attention_heads": 4,
    "attention_head_dim": 8,
    "in_channels": 4,
    "out_channels": 4,
    "time_embed_dim": 2,
    "text_embed_dim": 32,
    "num_layers": 1,
    "sample_width": 4,
    "sample_height": 4,
    "sample_frames": 9,
    "patch_size": 2,
    "temporal_compression_ratio": 4,
    "max_text_seq_length": 226,
}

# Rotary embeddings split the head dim into t/h/w parts of dim/4, 3*dim/8, 3*dim/8, each of which must be even.
TRANSFORMER_5B: dict[str, Any] = {
    **TRANSFORMER_2B,
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "use_rotary_positional_embeddings": True,
}

SCHEDULER_2B: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": True,
    "steps_offset": 0,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "timestep_spacing": "trailing",
    "snr_shift_scale": 3.0,
}

SCHEDULER_5B: dict[str, Any] = {**SCHEDULER_2B, "snr_shift_scale": 1.0}

VARIANTS: dict[str, dict[str, Any]] = {
    "cogvideox-2b": {"transformer": TRANSFORMER_2B, "scheduler": SCHEDULER_2B, "vae_scaling_factor": 1.15258426},
    "cogvideox-5b": {"transformer": TRANSFORMER_5B, "scheduler": SCHEDULER_5B, "vae_scaling_factor": 0.7},
}

DEFAULT_CONFIG: dict[str, Any] = {"height": 32, "width": 32, "num_frames": 9, "fps": 8, "num_inference_steps": 2}


def _text_encoder() -> Any:
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(**TEXT_ENCODER)).eval()


def _build_pipeline(variant: dict[str, Any]) -> Any:
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    from omnirt.models.tiny_tokenizers import t5_tokenizer

    return CogVideoXPipeline(
        tokenizer=t5_tokenizer(),
        text_encoder=_text_encoder(),
        vae=AutoencoderKLCogVideoX(**VAE, scaling_factor=variant["vae_scaling_factor"]),
        transformer=CogVideoXTransformer3DModel(**variant["transformer"]),
        scheduler=CogVideoXDDIMScheduler(**variant["scheduler"]),
    )


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of the CogVideoX checkpoint ``model_id`` into ``target``."""
    if model_id not in VARIANTS:
        raise ValueError(f"no tiny CogVideoX builder for {model_id!r}; known: {sorted(VARIANTS)}")
    target = Path(target)
    seed_everything(0)
    pipe = _build_pipeline(VARIANTS[model_id])
    save_tiny_pipeline(pipe, target, model_id=model_id, default_config=dict(DEFAULT_CONFIG))
    return target
