"""Stable Video Diffusion (img2vid and img2vid-xt): image2video, conditioned on an image only."""

from __future__ import annotations

from omnirt.models.contracts import UNET, diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model

SVD = {
    "width": 1024,
    "height": 576,
    "num_frames": 14,
    "fps": 7,
    "num_inference_steps": 25,
    "frame_bucket": 127,
    "noise_aug_strength": 0.02,
    "decode_chunk_size": 8,
    "min_guidance_scale": 1.0,
    "max_guidance_scale": 3.0,
}
SVD_CONFIG = ("frame_bucket", "noise_aug_strength", "decode_chunk_size", "min_guidance_scale", "max_guidance_scale")
COMMON = {
    "schedulers": UNET,
    "extra_config": SVD_CONFIG,
    "drop_config": ("guidance_scale",),
    "prompt": False,
    "negative_prompt": False,
    "lora": False,
    "tier": "adjacent",
    "maturity": "stable",
}


@register_model(
    id="svd-xt",
    task="image2video",
    hub_id="stabilityai/stable-video-diffusion-img2vid-xt",
    resource_hint={"min_vram_gb": 16, "dtype": "fp16"},
    **diffusion_contract("image2video", defaults={**SVD, "num_frames": 25}, summary="SVD-XT: 25 frames.", **COMMON),
)
@register_model(
    id="svd",
    task="image2video",
    hub_id="stabilityai/stable-video-diffusion-img2vid",
    resource_hint={"min_vram_gb": 16, "dtype": "fp16"},
    **diffusion_contract(
        "image2video", defaults=SVD, summary="Stable Video Diffusion: 14 frames from an image.", **COMMON
    ),
)
class StableVideoDiffusionFamily(DiffusersPipeline):
    pipeline_classes = {"image2video": "StableVideoDiffusionPipeline"}
    config_arguments = {"frame_bucket": "motion_bucket_id"}
    output_kind = "video"
