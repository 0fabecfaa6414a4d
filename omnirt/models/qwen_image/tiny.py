"""Tiny random-weight Qwen-Image and its edit models, for `omnirt make-tiny` and the tests.

This module owns the tiny copies of ``Qwen/Qwen-Image`` (``qwen-image``), ``Qwen/Qwen-Image-Edit``
(``qwen-image-edit``) and ``Qwen/Qwen-Image-Edit-2509`` (``qwen-image-edit-plus``). Qwen-Image is a
:class:`~diffusers.QwenImagePipeline`
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

The edit models share those components and add the repository's ``processor``: a ``Qwen2VLProcessor`` (the Qwen2
tokenizer, a ``Qwen2VLImageProcessor`` capped at a few hundred pixels' worth of 14x14 patches, and the video
processor the class requires). transformers builds that processor only where torchvision is installed; without it
the builder raises :class:`~omnirt.contracts.errors.DependencyUnavailableError`. They resize the input image to about
one megapixel for the VAE, so their VAE downsamples 8x (as the real one does) to keep the image tokens few.

The text model's vocabulary is shrunk to 512 and its special ids point at the tiny tokenizer's: ``<|endoftext|>``
(256), ``<|im_end|>`` (258), ``<|vision_start|>`` (259) .. ``<|video_pad|>`` (262). Prompts are wrapped in the
pipeline's chat template, whose first 34 tokens it drops; with the one-byte-per-token tiny vocabulary that cuts
inside the template, which is harmless.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnirt.models.qwen_image.pipeline import require_processor_support
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

# The edit models' VAE: one more downsampling stage, 8x in all like the real one.
EDIT_VAE_CONFIG: dict[str, Any] = {**VAE_CONFIG, "dim_mult": [1, 2, 4, 4], "temperal_downsample": [False, True, True]}

# Qwen2-VL image preprocessing: 14x14 patches, 2x2 merged into one image token, two frames per temporal patch; the
# pixel budget (16 merged tokens at most) is tiny.
IMAGE_PROCESSOR_CONFIG: dict[str, Any] = {
    "patch_size": 14,
    "merge_size": 2,
    "temporal_patch_size": 2,
    "min_pixels": 4 * 28 * 28,
    "max_pixels": 16 * 28 * 28,
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


def _processor() -> Any:
    """The edit repositories' ``processor``: Qwen2-VL image (and video) preprocessing plus the Qwen2 tokenizer."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    return Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**IMAGE_PROCESSOR_CONFIG),
        tokenizer=qwen2_tokenizer(),
        video_processor=Qwen2VLVideoProcessor(**IMAGE_PROCESSOR_CONFIG),
    )


def _edit(class_name: str) -> Any:
    import diffusers
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    processor = _processor()
    return getattr(diffusers, class_name)(
        transformer=QwenImageTransformer2DModel(**TRANSFORMER_CONFIG),
        vae=AutoencoderKLQwenImage(**EDIT_VAE_CONFIG),
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
        text_encoder=Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**TEXT_ENCODER_CONFIG)).eval(),
        tokenizer=qwen2_tokenizer(),
        processor=processor,
    )


_BUILDERS = {
    "qwen-image": _qwen_image,
    "qwen-image-edit": lambda: _edit("QwenImageEditPipeline"),
    "qwen-image-edit-plus": lambda: _edit("QwenImageEditPlusPipeline"),
}


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` into ``target`` and return ``target``."""
    builder = _BUILDERS.get(model_id)
    if builder is None:
        raise ValueError(f"no tiny Qwen-Image builder for {model_id!r}; known: {sorted(_BUILDERS)}")
    if model_id != "qwen-image":
        require_processor_support(model_id)
    seed_everything(0)
    pipe = builder()
    return save_tiny_pipeline(pipe, Path(target), model_id=model_id, default_config=dict(DEFAULT_CONFIG))
