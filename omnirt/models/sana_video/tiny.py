"""Tiny random-weight SANA-Video checkpoint (`sana-video`) for `omnirt make-tiny`.

This module owns the component configs and the builder. The folder has the layout of
``Efficient-Large-Model/SANA-Video_2B_480p_diffusers``: a ``SanaVideoPipeline`` with a Gemma 2 text encoder and its
Gemma tokenizer, the Wan VAE, the SANA-Video transformer and DPM-Solver++ with flow sigmas.

The pipeline prepends its long "complex human instruction" to every prompt and keeps the last
``max_sequence_length`` tokens (plus the first); that runs unchanged with the one-token-per-byte tiny tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.tiny_common import build_seeded_tiny
from omnirt.models.wan import tiny as wan_tiny

MODEL_IDS = ("sana-video",)

# The Wan 2.1 VAE at toy width (spatial factor 8, temporal factor 4, 16 latent channels), as on the real model.
VAE: dict[str, Any] = wan_tiny.VAE

# Ids match tiny_tokenizers.gemma_tokenizer: <pad>=0, <eos>=1, <bos>=2, <unk>=3.
TEXT_ENCODER: dict[str, Any] = {
    "vocab_size": 384,
    "hidden_size": 8,
    "head_dim": 16,
    "intermediate_size": 64,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "num_hidden_layers": 1,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
}

# caption_channels is the Gemma hidden size. sample_size 30 is the real 480p model's (it picks the 480p buckets).
TRANSFORMER: dict[str, Any] = {
    "in_channels": 16,
    "out_channels": 16,
    "num_attention_heads": 2,
    "attention_head_dim": 12,
    "num_layers": 2,
    "num_cross_attention_heads": 2,
    "cross_attention_head_dim": 12,
    "cross_attention_dim": 24,
    "caption_channels": 8,
    "mlp_ratio": 2.5,
    "dropout": 0.0,
    "attention_bias": False,
    "sample_size": 30,
    "patch_size": (1, 2, 2),
    "norm_elementwise_affine": False,
    "norm_eps": 1e-6,
    "qk_norm": "rms_norm_across_heads",
    "rope_max_seq_len": 32,
}

# Flow matching solved with DPM-Solver++, as SANA ships it.
SCHEDULER: dict[str, Any] = {"prediction_type": "flow_prediction", "use_flow_sigmas": True, "flow_shift": 8.0}

# Resolution binning would render every tiny request at a 480p bucket; the tiny folder renders at the requested size.
DEFAULT_CONFIG: dict[str, Any] = {
    "height": 32,
    "width": 32,
    "num_frames": 9,
    "fps": 8,
    "num_inference_steps": 2,
    "use_resolution_binning": False,
}


def _build_pipeline() -> Any:
    from diffusers import AutoencoderKLWan, DPMSolverMultistepScheduler, SanaVideoPipeline, SanaVideoTransformer3DModel
    from transformers import Gemma2Config, Gemma2Model

    from omnirt.models.tiny_tokenizers import gemma_tokenizer

    return SanaVideoPipeline(
        tokenizer=gemma_tokenizer(),
        text_encoder=Gemma2Model(Gemma2Config(**TEXT_ENCODER)).eval(),
        vae=AutoencoderKLWan(**VAE),
        transformer=SanaVideoTransformer3DModel(**TRANSFORMER),
        scheduler=DPMSolverMultistepScheduler(**SCHEDULER),
    )


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of the SANA-Video checkpoint ``model_id`` into ``target``."""
    builders = dict.fromkeys(MODEL_IDS, _build_pipeline)
    return build_seeded_tiny(model_id, target, family="SANA-Video", builders=builders, default_config=DEFAULT_CONFIG)
