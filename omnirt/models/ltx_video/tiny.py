"""Tiny random-weight LTX-Video checkpoint (`ltx-video`) for `omnirt make-tiny`.

This module owns the component configs and the builder. The folder has the layout of ``Lightricks/LTX-Video``
(0.9.x): an ``LTXPipeline`` with a T5 text encoder, the LTX video VAE, the LTX transformer and a flow-matching Euler
scheduler with resolution-dependent shift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.tiny_common import build_seeded_tiny
from omnirt.models.tiny_components import TINY_T5_CONFIG

MODEL_IDS = ("ltx-video",)

# Two scaling blocks: spatial and temporal factors of 4 (the real VAE has 32 and 8). No timestep conditioning in
# the decoder, as on LTX-Video 0.9.0, so the default decode_timestep of 0.0 applies.
VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 8,
    "block_out_channels": (8, 8, 8, 8),
    "decoder_block_out_channels": (8, 8, 8, 8),
    "layers_per_block": (1, 1, 1, 1, 1),
    "decoder_layers_per_block": (1, 1, 1, 1, 1),
    "spatio_temporal_scaling": (True, True, False, False),
    "decoder_spatio_temporal_scaling": (True, True, False, False),
    "decoder_inject_noise": (False, False, False, False, False),
    "upsample_residual": (False, False, False, False),
    "upsample_factor": (1, 1, 1, 1),
    "timestep_conditioning": False,
    "patch_size": 1,
    "patch_size_t": 1,
    "encoder_causal": True,
    "decoder_causal": False,
}

# The shared tiny T5 encoder (T5 v1.1 XXL on the real checkpoint).
TEXT_ENCODER: dict[str, Any] = TINY_T5_CONFIG

# in_channels is the VAE's latent_channels; caption_channels is the text encoder's d_model.
TRANSFORMER: dict[str, Any] = {
    "in_channels": 8,
    "out_channels": 8,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 4,
    "attention_head_dim": 8,
    "cross_attention_dim": 32,
    "num_layers": 1,
    "caption_channels": 32,
}

# The real scheduler config: the shift grows with the latent sequence length.
SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.95,
    "max_shift": 2.05,
    "base_image_seq_len": 1024,
    "max_image_seq_len": 4096,
    "shift_terminal": 0.1,
}

# height and width must be multiples of 32; num_frames of the form 4k + 1.
DEFAULT_CONFIG: dict[str, Any] = {"height": 32, "width": 32, "num_frames": 9, "fps": 8, "num_inference_steps": 2}


def _text_encoder() -> Any:
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(**TEXT_ENCODER)).eval()


def _build_pipeline() -> Any:
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    from omnirt.models.tiny_tokenizers import t5_tokenizer

    return LTXPipeline(
        tokenizer=t5_tokenizer(),
        text_encoder=_text_encoder(),
        vae=AutoencoderKLLTXVideo(**VAE),
        transformer=LTXVideoTransformer3DModel(**TRANSFORMER),
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER),
    )


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of the LTX-Video checkpoint ``model_id`` into ``target``."""
    builders = dict.fromkeys(MODEL_IDS, _build_pipeline)
    return build_seeded_tiny(model_id, target, family="LTX-Video", builders=builders, default_config=DEFAULT_CONFIG)
