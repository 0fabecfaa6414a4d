"""Tiny random-weight Stable Video Diffusion checkpoints (`svd`, `svd-xt`) for `omnirt make-tiny`.

This module owns the component configs and the builder of both ids. Each folder has the layout of
``stabilityai/stable-video-diffusion-img2vid(-xt)``: a ``StableVideoDiffusionPipeline`` with a spatio-temporal UNet,
a temporal-decoder VAE, an Euler scheduler, a CLIP vision encoder and its image processor. The two ids differ, as the
real ones do, only in the number of frames the UNet is made for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_components import TINY_CLIP_IMAGE_PROCESSOR_CONFIG, name_real_image_processor

# Frames per clip, like 14 (svd) and 25 (svd-xt) on the real checkpoints. Also the UNet's ``num_frames``, which
# the pipeline uses when a call gives none.
NUM_FRAMES = {"svd": 4, "svd-xt": 8}

# 8 = 4 noisy latent channels + 4 channels of the conditioning image's latent. The added-time embedding takes
# (fps, motion_bucket_id, noise_aug_strength): 3 x addition_time_embed_dim.
UNET: dict[str, Any] = {
    "sample_size": 32,
    "in_channels": 8,
    "out_channels": 4,
    "down_block_types": ("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
    "up_block_types": ("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
    "block_out_channels": (32, 64),
    "layers_per_block": 2,
    "cross_attention_dim": 32,
    "num_attention_heads": 8,
    "addition_time_embed_dim": 32,
    "projection_class_embeddings_input_dim": 96,
}

# Two blocks: a spatial scale factor of 2, no temporal compression.
VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
    "block_out_channels": (32, 64),
    "latent_channels": 4,
}

SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "v_prediction",
    "interpolation_type": "linear",
    "use_karras_sigmas": True,
    "sigma_min": 0.002,
    "sigma_max": 700.0,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "steps_offset": 1,
}

# The pipeline always resizes the conditioning image to 224x224 before the encoder, so image_size must be 224.
# projection_dim is the UNet's cross_attention_dim.
IMAGE_ENCODER: dict[str, Any] = {
    "image_size": 224,
    "patch_size": 32,
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 5,
    "num_attention_heads": 4,
    "projection_dim": 32,
}

FEATURE_EXTRACTOR: dict[str, Any] = TINY_CLIP_IMAGE_PROCESSOR_CONFIG

DEFAULT_CONFIG: dict[str, Any] = {"height": 32, "width": 32, "fps": 7, "num_inference_steps": 2}


def _unet(num_frames: int) -> Any:
    from diffusers import UNetSpatioTemporalConditionModel

    return UNetSpatioTemporalConditionModel(**UNET, num_frames=num_frames)


def _image_encoder() -> Any:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    return CLIPVisionModelWithProjection(CLIPVisionConfig(**IMAGE_ENCODER)).eval()


def _build_pipeline(num_frames: int) -> Any:
    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline
    from transformers import CLIPImageProcessorPil

    return StableVideoDiffusionPipeline(
        vae=AutoencoderKLTemporalDecoder(**VAE),
        image_encoder=_image_encoder(),
        unet=_unet(num_frames),
        scheduler=EulerDiscreteScheduler(**SCHEDULER),
        feature_extractor=CLIPImageProcessorPil(**FEATURE_EXTRACTOR),
    )


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` (``svd`` or ``svd-xt``) into ``target``."""
    if model_id not in NUM_FRAMES:
        raise ValueError(f"no tiny Stable Video Diffusion builder for {model_id!r}; known: {sorted(NUM_FRAMES)}")
    target = Path(target)
    num_frames = NUM_FRAMES[model_id]
    seed_everything(0)
    pipe = _build_pipeline(num_frames)
    default_config = {**DEFAULT_CONFIG, "num_frames": num_frames}
    save_tiny_pipeline(pipe, target, model_id=model_id, default_config=default_config)
    name_real_image_processor(target, "feature_extractor")  # as the real repositories name it
    return target
