"""Tiny random-weight HunyuanVideo checkpoint (`hunyuan-video`) for `omnirt make-tiny`.

This module owns the component configs and the builder. The folder has the layout of
``hunyuanvideo-community/HunyuanVideo``: a ``HunyuanVideoPipeline`` with a Llama text encoder (prompt tokens) and a
CLIP text encoder (pooled prompt), the HunyuanVideo 3D VAE, the dual-stream transformer with guidance embedding and
a flow-matching Euler scheduler.

The pipeline's default prompt template crops its first 95 tokens, sized for the real Llama tokenizer. The tiny
tokenizer spends one token per character, so with the default ``max_sequence_length`` the Llama tokens hold only
template text; the prompt still conditions the video through the CLIP pooled embedding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.tiny_common import build_seeded_tiny
from omnirt.models.tiny_components import TINY_CLIP_TEXT_CONFIG

MODEL_IDS = ("hunyuan-video",)

# Spatial factor 8, temporal factor 4 (the real factors).
VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "down_block_types": ("HunyuanVideoDownBlock3D",) * 4,
    "up_block_types": ("HunyuanVideoUpBlock3D",) * 4,
    "block_out_channels": (8, 8, 8, 8),
    "layers_per_block": 1,
    "act_fn": "silu",
    "norm_num_groups": 4,
    "scaling_factor": 0.476986,
    "spatial_compression_ratio": 8,
    "temporal_compression_ratio": 4,
    "mid_block_add_attention": True,
}

# Ids match tiny_tokenizers.llama_tokenizer: <unk>=0, <s>=1, </s>=2.
TEXT_ENCODER: dict[str, Any] = {
    "vocab_size": 1000,
    "hidden_size": 16,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "hidden_act": "gelu",
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}

# The shared tiny CLIP text encoder, narrower and with gelu.
TEXT_ENCODER_2: dict[str, Any] = {**TINY_CLIP_TEXT_CONFIG, "hidden_size": 8, "projection_dim": 32, "hidden_act": "gelu"}

# text_embed_dim is the Llama hidden size, pooled_projection_dim the CLIP hidden size; rope_axes_dim sums to the
# head dim. guidance_embeds: the real checkpoint is guidance-distilled (guidance_scale is an input, not CFG).
TRANSFORMER: dict[str, Any] = {
    "in_channels": 4,
    "out_channels": 4,
    "num_attention_heads": 2,
    "attention_head_dim": 10,
    "num_layers": 1,
    "num_single_layers": 1,
    "num_refiner_layers": 1,
    "patch_size": 1,
    "patch_size_t": 1,
    "guidance_embeds": True,
    "text_embed_dim": 16,
    "pooled_projection_dim": 8,
    "rope_axes_dim": (2, 4, 4),
}

SCHEDULER: dict[str, Any] = {"shift": 7.0}

# height and width must be multiples of 16; num_frames of the form 4k + 1.
DEFAULT_CONFIG: dict[str, Any] = {"height": 32, "width": 32, "num_frames": 9, "fps": 8, "num_inference_steps": 2}


def _text_encoders() -> dict[str, Any]:
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

    from omnirt.models.tiny_tokenizers import clip_tokenizer, llama_tokenizer

    return {
        "tokenizer": llama_tokenizer(),
        "text_encoder": LlamaModel(LlamaConfig(**TEXT_ENCODER)).eval(),
        "tokenizer_2": clip_tokenizer(),
        "text_encoder_2": CLIPTextModel(CLIPTextConfig(**TEXT_ENCODER_2)).eval(),
    }


def _build_pipeline() -> Any:
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoPipeline,
        HunyuanVideoTransformer3DModel,
    )

    return HunyuanVideoPipeline(
        **_text_encoders(),
        vae=AutoencoderKLHunyuanVideo(**VAE),
        transformer=HunyuanVideoTransformer3DModel(**TRANSFORMER),
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER),
    )


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of the HunyuanVideo checkpoint ``model_id`` into ``target``."""
    builders = dict.fromkeys(MODEL_IDS, _build_pipeline)
    return build_seeded_tiny(model_id, target, family="HunyuanVideo", builders=builders, default_config=DEFAULT_CONFIG)
