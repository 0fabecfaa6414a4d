"""Tiny random-weight Qwen-Image, for `omnirt make-tiny` and the tests.

This module owns the tiny copy of ``Qwen/Qwen-Image`` (``qwen-image``): a :class:`~diffusers.QwenImagePipeline`
saved in the real layout, with an MMDiT ``transformer``, the Wan-style causal 3D ``vae``
(:class:`~diffusers.AutoencoderKLQwenImage`), a Qwen2.5-VL ``text_encoder`` with its Qwen2 ``tokenizer``, and a
flow-matching scheduler with resolution-dependent shifting. The same folder also serves image-to-image and
inpainting through ``QwenImage{Img2Img,Inpaint}Pipeline.from_pipe``.

How the dimensions are tied:

* The VAE downsamples ``2 ** len(temperal_downsample)`` times spatially (4x here, 8x in the real model) and the
  transformer packs 2x2 latent patches, so sizes must be multiples of 8; the tiny default is 32.
* ``transformer.in_channels`` = 4 x ``vae.z_dim`` (packed); ``out_channels`` = ``z_dim`` (the output projection
  unpacks ``patch_size ** 2`` of them).
* ``joint_attention_dim`` = the text encoder's hidden size (its last hidden state is used), which the vision tower's
  ``out_hidden_size`` must match too.
* The RoPE axes (``axes_dims_rope``) add up to ``attention_head_dim``.

The text model's vocabulary is shrunk to 512 and its special ids point at the tiny tokenizer's: ``<|endoftext|>``
(256), ``<|im_end|>`` (258), ``<|vision_start|>`` (259) .. ``<|video_pad|>`` (262). Prompts are wrapped in the
pipeline's chat template, whose first 34 tokens it drops; with the one-byte-per-token tiny vocabulary that cuts
inside the template, which is harmless.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_tokenizers import qwen2_tokenizer

if TYPE_CHECKING:
    from diffusers import QwenImagePipeline

# ---------------------------------------------------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------------------------------------------------

TEXT_HIDDEN_SIZE = 16

TEXT_ENCODER_CONFIG: dict[str, Any] = {
    "text_config": {
        "vocab_size": 512,
        "hidden_size": TEXT_HIDDEN_SIZE,
        "intermediate_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "rope_theta": 1_000_000.0,
        "rope_scaling": {"type": "default", "rope_type": "default", "mrope_section": [1, 1, 2]},
        "bos_token_id": 256,  # <|endoftext|>
        "eos_token_id": 258,  # <|im_end|>
    },
    "vision_config": {
        "depth": 2,
        "hidden_size": 16,
        "intermediate_size": 16,
        "num_heads": 2,
        "out_hidden_size": TEXT_HIDDEN_SIZE,
    },
    "vocab_size": 512,
    "hidden_size": TEXT_HIDDEN_SIZE,
    "bos_token_id": 256,
    "eos_token_id": 258,
    "vision_start_token_id": 259,
    "vision_end_token_id": 260,
    "image_token_id": 261,
    "video_token_id": 262,
    "vision_token_id": 261,
}

VAE_CONFIG: dict[str, Any] = {
    "base_dim": 8,
    "z_dim": 4,
    "dim_mult": [1, 2, 4],  # lists: the VAE concatenates them with lists
    "num_res_blocks": 1,
    "temperal_downsample": [False, True],
    "latents_mean": [0.0] * 4,
    "latents_std": [1.0] * 4,
}

TRANSFORMER_CONFIG: dict[str, Any] = {
    "patch_size": 2,
    "in_channels": 4 * VAE_CONFIG["z_dim"],  # 2x2 packed latents
    "out_channels": VAE_CONFIG["z_dim"],
    "num_layers": 2,
    "attention_head_dim": 16,
    "num_attention_heads": 3,
    "joint_attention_dim": TEXT_HIDDEN_SIZE,
    "guidance_embeds": False,
    "axes_dims_rope": (8, 4, 4),
}

SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": True,
    "base_image_seq_len": 256,
    "max_image_seq_len": 8192,
    "base_shift": 0.5,
    "max_shift": 0.9,
    "shift_terminal": 0.02,
    "time_shift_type": "exponential",
}

DEFAULT_CONFIG: dict[str, Any] = {"height": 32, "width": 32, "num_inference_steps": 2}


# ---------------------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------------------


def _qwen_image() -> QwenImagePipeline:
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    return QwenImagePipeline(
        transformer=QwenImageTransformer2DModel(**TRANSFORMER_CONFIG),
        vae=AutoencoderKLQwenImage(**VAE_CONFIG),
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
        text_encoder=Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**TEXT_ENCODER_CONFIG)).eval(),
        tokenizer=qwen2_tokenizer(),
    )


_BUILDERS = {"qwen-image": _qwen_image}


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` into ``target`` and return ``target``."""
    builder = _BUILDERS.get(model_id)
    if builder is None:
        raise ValueError(f"no tiny Qwen-Image builder for {model_id!r}; known: {sorted(_BUILDERS)}")
    seed_everything(0)
    pipe = builder()
    return save_tiny_pipeline(pipe, Path(target), model_id=model_id, default_config=dict(DEFAULT_CONFIG))
