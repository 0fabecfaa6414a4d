"""Tiny random-weight Wan checkpoints for `omnirt make-tiny`.

This module owns the component configs and the builders of four ids, each in the layout of its real
``Wan-AI/*-Diffusers`` repository:

* ``wan2.1-t2v-14b``: ``WanPipeline`` with one transformer;
* ``wan2.1-i2v-14b``: ``WanImageToVideoPipeline`` with a CLIP image encoder, whose penultimate hidden states reach
  the transformer through added key/value projections;
* ``wan2.2-t2v-14b``: ``WanPipeline`` with two experts, ``transformer`` for the high-noise steps and
  ``transformer_2`` for the low-noise steps, switched at ``boundary_ratio``;
* ``wan2.2-i2v-14b``: ``WanImageToVideoPipeline`` with two experts and no image encoder (the conditioning image
  reaches the transformers only through its VAE latent).

The tiny scheduler's shift puts the two steps of a default call on either side of the Wan 2.2 boundaries, so both
experts run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omnirt.models.tiny_common import build_seeded_tiny
from omnirt.models.tiny_components import TINY_CLIP_IMAGE_PROCESSOR_CONFIG, TINY_T5_CONFIG, name_real_image_processor

# Spatial factor 8 (three downsamples), temporal factor 4, 16 latent channels: the real Wan 2.1 VAE's factors.
VAE: dict[str, Any] = {
    "base_dim": 3,
    "z_dim": 16,
    "dim_mult": [1, 1, 1, 1],
    "num_res_blocks": 1,
    "temperal_downsample": [False, True, True],
}

# The shared tiny T5 config, built as a UMT5 encoder like the real umt5-xxl.
TEXT_ENCODER: dict[str, Any] = TINY_T5_CONFIG

# The Wan 2.1 DiT at toy width; text_dim is the text encoder's d_model. Helios extends it with its own RoPE and
# history settings.
DIT: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 12,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 32,
    "freq_dim": 256,
    "ffn_dim": 32,
    "num_layers": 2,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
}

TRANSFORMER_T2V: dict[str, Any] = {**DIT, "rope_max_seq_len": 32}

# 36 = 16 noisy latent channels + 4 mask channels + 16 channels of the conditioning video's latent.
TRANSFORMER_I2V_22: dict[str, Any] = {**TRANSFORMER_T2V, "in_channels": 36}

# Wan 2.1 I2V also attends to the image encoder's tokens: image_dim is the encoder's hidden size, and the added
# key/value projections take the inner dim (heads x head dim), as on the real checkpoint. The transformer splits its
# context as "image tokens, then 512 text tokens": like the real model, it needs the default max_sequence_length=512
# (another value runs, but mixes image and text tokens up).
TRANSFORMER_I2V_21: dict[str, Any] = {**TRANSFORMER_I2V_22, "image_dim": 8, "added_kv_proj_dim": 24}

# A CLIPVisionModel like the real ViT-H encoder, read at its penultimate hidden state.
IMAGE_ENCODER: dict[str, Any] = {
    "image_size": 224,
    "patch_size": 32,
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
}

IMAGE_PROCESSOR: dict[str, Any] = TINY_CLIP_IMAGE_PROCESSOR_CONFIG

# The real repositories ship UniPC with flow sigmas. flow_shift 3.0 puts the two steps of a default call at
# t=999 and t=750: above and below both Wan 2.2 boundaries.
SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "prediction_type": "flow_prediction",
    "use_flow_sigmas": True,
    "flow_shift": 3.0,
}

# Timestep ratio at which Wan 2.2 hands over from the high-noise to the low-noise expert.
BOUNDARY_RATIO = {"wan2.2-t2v-14b": 0.875, "wan2.2-i2v-14b": 0.9}

DEFAULT_CONFIG: dict[str, Any] = {"height": 32, "width": 32, "num_frames": 9, "fps": 8, "num_inference_steps": 2}


def _text_encoder() -> Any:
    from transformers import UMT5Config, UMT5EncoderModel

    return UMT5EncoderModel(UMT5Config(**TEXT_ENCODER)).eval()


def _transformer(config: dict[str, Any]) -> Any:
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(**config)


def _shared_components() -> dict[str, Any]:
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler

    from omnirt.models.tiny_tokenizers import t5_tokenizer

    return {
        "tokenizer": t5_tokenizer(),
        "text_encoder": _text_encoder(),
        "vae": AutoencoderKLWan(**VAE),
        "scheduler": UniPCMultistepScheduler(**SCHEDULER),
    }


def _wan21_t2v() -> Any:
    from diffusers import WanPipeline

    return WanPipeline(**_shared_components(), transformer=_transformer(TRANSFORMER_T2V))


def _wan21_i2v() -> Any:
    from diffusers import WanImageToVideoPipeline
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModel

    return WanImageToVideoPipeline(
        **_shared_components(),
        image_encoder=CLIPVisionModel(CLIPVisionConfig(**IMAGE_ENCODER)).eval(),
        image_processor=CLIPImageProcessorPil(**IMAGE_PROCESSOR),
        transformer=_transformer(TRANSFORMER_I2V_21),
    )


def _wan22_t2v() -> Any:
    from diffusers import WanPipeline

    return WanPipeline(
        **_shared_components(),
        transformer=_transformer(TRANSFORMER_T2V),
        transformer_2=_transformer(TRANSFORMER_T2V),
        boundary_ratio=BOUNDARY_RATIO["wan2.2-t2v-14b"],
    )


def _wan22_i2v() -> Any:
    from diffusers import WanImageToVideoPipeline

    return WanImageToVideoPipeline(
        **_shared_components(),
        transformer=_transformer(TRANSFORMER_I2V_22),
        transformer_2=_transformer(TRANSFORMER_I2V_22),
        boundary_ratio=BOUNDARY_RATIO["wan2.2-i2v-14b"],
    )


BUILDERS: dict[str, Callable[[], Any]] = {
    "wan2.1-t2v-14b": _wan21_t2v,
    "wan2.1-i2v-14b": _wan21_i2v,
    "wan2.2-t2v-14b": _wan22_t2v,
    "wan2.2-i2v-14b": _wan22_i2v,
}


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of the Wan checkpoint ``model_id`` into ``target``."""
    target = build_seeded_tiny(model_id, target, family="Wan", builders=BUILDERS, default_config=DEFAULT_CONFIG)
    name_real_image_processor(target, "image_processor")  # as the real repositories name it
    return target
