"""Tiny random-weight Stable Diffusion 1.5 and 2.1, for `omnirt make-tiny` and the tests.

This module owns the tiny copies of ``runwayml/stable-diffusion-v1-5`` (``sd15``) and
``stabilityai/stable-diffusion-2-1`` (``sd21``). Each is a :class:`~diffusers.StableDiffusionPipeline` saved in the real
layout (``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/``, no safety checker), so the same folder
also serves image-to-image and inpainting through ``StableDiffusion{Img2Img,Inpaint}Pipeline.from_pipe``.

The components keep the real architecture (a cross-attention UNet, a KL VAE, a CLIP text encoder) at toy widths.
The VAE has two blocks, so it downsamples 2x instead of 8x, and ``unet.sample_size * 2`` is the 64 pixel default.
SD 2.1 differs from 1.5 the way the real repos do: linear projections in the transformer blocks, per-block head
counts, upcast attention, a ``gelu`` text encoder and a v-prediction scheduler.

``sd21``'s depth2image task has its own weights, ``stabilityai/stable-diffusion-2-depth`` (folder ``sd21-depth``): a
:class:`~diffusers.StableDiffusionDepth2ImgPipeline` whose UNet takes 5 channels (the latents plus the depth map), a
DPT-Hybrid ``depth_estimator`` (a BiT convolutional stem under a ViT, as in ``Intel/dpt-hybrid-midas``) and its
``feature_extractor`` (``DPTImageProcessor``, 32x32 here instead of 384x384). The real model is SD 2 at 512px with
epsilon prediction.

All use DDIM with the real beta schedule. The real SD 1.5 repo ships PNDM, whose PLMS warm-up runs
``num_inference_steps + 1`` denoising steps; DDIM keeps "one step callback per requested step" true for the tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_components import TINY_CLIP_TEXT_CONFIG, TINY_KL_VAE_CONFIG, name_real_image_processor
from omnirt.models.tiny_tokenizers import clip_tokenizer

if TYPE_CHECKING:
    from diffusers import StableDiffusionDepth2ImgPipeline, StableDiffusionPipeline

# ---------------------------------------------------------------------------------------------------------------------
# Components. SD 1.5 first; SD 2.1 overrides the keys that differ in the real checkpoints.
# ---------------------------------------------------------------------------------------------------------------------

SD15_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
    "block_out_channels": (4, 8),
    "layers_per_block": 1,
    "norm_num_groups": 2,
    "attention_head_dim": 2,
    "cross_attention_dim": 32,  # = text encoder hidden_size
}

SD21_UNET_CONFIG: dict[str, Any] = {
    **SD15_UNET_CONFIG,
    "attention_head_dim": (2, 4),
    "use_linear_projection": True,
    "upcast_attention": True,
}

# The shared two-block KL VAE, with SD's latent scaling.
VAE_CONFIG: dict[str, Any] = {**TINY_KL_VAE_CONFIG, "scaling_factor": 0.18215}

# The shared tiny CLIP text encoder (quick_gelu, like CLIP ViT-L); SD 2.1's OpenCLIP uses gelu.
SD15_TEXT_ENCODER_CONFIG: dict[str, Any] = TINY_CLIP_TEXT_CONFIG

SD21_TEXT_ENCODER_CONFIG: dict[str, Any] = {**TINY_CLIP_TEXT_CONFIG, "hidden_act": "gelu"}

SD15_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
}

SD21_SCHEDULER_CONFIG: dict[str, Any] = {**SD15_SCHEDULER_CONFIG, "prediction_type": "v_prediction"}

# SD 2 depth: SD 2's UNet with one more input channel, the depth map; epsilon prediction like SD 2 base.
SD2_DEPTH_UNET_CONFIG: dict[str, Any] = {**SD21_UNET_CONFIG, "in_channels": SD15_UNET_CONFIG["in_channels"] + 1}

_DPT_IMAGE_SIZE = 32
_DPT_PATCH_SIZE = 16
_BIT_HIDDEN_SIZES = [8, 16, 32]

# DPT-Hybrid: a three-stage BiT backbone feeds the ViT (its last stage is the patch embedding input; the first two
# are read out directly), four ViT layers, and the neck reassembles four feature maps for the depth head.
DEPTH_ESTIMATOR_CONFIG: dict[str, Any] = {
    "image_size": _DPT_IMAGE_SIZE,
    "patch_size": _DPT_PATCH_SIZE,
    "num_channels": 3,
    "hidden_size": 32,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "hidden_act": "gelu",
    "backbone_out_indices": (0, 1, 2, 3),
    "is_hybrid": True,
    "backbone_config": {
        "layer_type": "bottleneck",
        "global_padding": "same",
        "embedding_size": 8,
        "hidden_sizes": _BIT_HIDDEN_SIZES,
        "depths": [1, 1, 2],
        "num_groups": 2,
        "out_features": ["stage1", "stage2", "stage3"],
    },
    "backbone_featmap_shape": [1, _BIT_HIDDEN_SIZES[-1], *(2 * [_DPT_IMAGE_SIZE // _DPT_PATCH_SIZE])],
    "neck_hidden_sizes": [8, 16, 32, 32],
    "fusion_hidden_size": 16,
}

# The real processor resizes to 384x384 keeping the aspect ratio; the tiny one to the tiny DPT's 32x32.
DEPTH_PROCESSOR_CONFIG: dict[str, Any] = {
    "size": {"height": _DPT_IMAGE_SIZE, "width": _DPT_IMAGE_SIZE},
    "keep_aspect_ratio": False,
    "do_normalize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
}

DEFAULT_CONFIG: dict[str, Any] = {"height": 64, "width": 64, "num_inference_steps": 2}


# ---------------------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------------------


def _pipeline(
    unet_config: dict[str, Any], text_encoder_config: dict[str, Any], scheduler_config: dict[str, Any]
) -> StableDiffusionPipeline:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    return StableDiffusionPipeline(
        vae=AutoencoderKL(**VAE_CONFIG),
        text_encoder=CLIPTextModel(CLIPTextConfig(**text_encoder_config)).eval(),
        tokenizer=clip_tokenizer(),
        unet=UNet2DConditionModel(**unet_config),
        scheduler=DDIMScheduler(**scheduler_config),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def _sd15() -> StableDiffusionPipeline:
    return _pipeline(SD15_UNET_CONFIG, SD15_TEXT_ENCODER_CONFIG, SD15_SCHEDULER_CONFIG)


def _sd21() -> StableDiffusionPipeline:
    return _pipeline(SD21_UNET_CONFIG, SD21_TEXT_ENCODER_CONFIG, SD21_SCHEDULER_CONFIG)


def _sd2_depth() -> StableDiffusionDepth2ImgPipeline:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionDepth2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    return StableDiffusionDepth2ImgPipeline(
        vae=AutoencoderKL(**VAE_CONFIG),
        text_encoder=CLIPTextModel(CLIPTextConfig(**SD21_TEXT_ENCODER_CONFIG)).eval(),
        tokenizer=clip_tokenizer(),
        unet=UNet2DConditionModel(**SD2_DEPTH_UNET_CONFIG),
        scheduler=DDIMScheduler(**SD15_SCHEDULER_CONFIG),
        depth_estimator=DPTForDepthEstimation(DPTConfig(**DEPTH_ESTIMATOR_CONFIG)).eval(),
        feature_extractor=DPTImageProcessor(**DEPTH_PROCESSOR_CONFIG),
    )


# Keyed by weights name: the id, or the folder of a task with its own weights (ModelSpec.weights_name).
_BUILDERS = {"sd15": _sd15, "sd21": _sd21, "sd21-depth": _sd2_depth}


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` into ``target`` and return ``target``."""
    builder = _BUILDERS.get(model_id)
    if builder is None:
        raise ValueError(f"no tiny Stable Diffusion builder for {model_id!r}; known: {sorted(_BUILDERS)}")
    seed_everything(0)
    pipe = builder()
    target = save_tiny_pipeline(pipe, Path(target), model_id=model_id, default_config=dict(DEFAULT_CONFIG))
    name_real_image_processor(target, "feature_extractor", "DPTImageProcessor")  # as the real repository names it
    return target
