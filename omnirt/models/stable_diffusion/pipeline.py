"""Stable Diffusion 1.5 and 2.1: text2image, image2image and inpaint from one set of weights; sd21's depth2image
from the depth-conditioned SD 2 weights."""

from __future__ import annotations

from omnirt.models.contracts import UNET, diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model

SD15_HUB = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SD21_HUB = "stabilityai/stable-diffusion-2-1"
SD2_DEPTH_HUB = "stabilityai/stable-diffusion-2-depth"
SD15 = {"width": 512, "height": 512, "num_inference_steps": 30, "guidance_scale": 7.5, "scheduler": "native"}
SD21 = {**SD15, "width": 768, "height": 768}
COMMON = {"schedulers": UNET, "tier": "experimental", "maturity": "stable"}


@register_model(
    id="sd21",
    task="inpaint",
    hub_id=SD21_HUB,
    resource_hint={"min_vram_gb": 5, "dtype": "fp16"},
    **diffusion_contract(
        "inpaint", defaults={**SD21, "strength": 1.0}, summary="Stable Diffusion 2.1 inpainting.", **COMMON
    ),
)
@register_model(
    id="sd21",
    task="image2image",
    hub_id=SD21_HUB,
    resource_hint={"min_vram_gb": 5, "dtype": "fp16"},
    **diffusion_contract(
        "image2image", defaults={**SD21, "strength": 0.8}, summary="Stable Diffusion 2.1 img2img.", **COMMON
    ),
)
@register_model(
    id="sd21",
    task="text2image",
    hub_id=SD21_HUB,
    resource_hint={"min_vram_gb": 5, "dtype": "fp16"},
    **diffusion_contract("text2image", defaults=SD21, summary="Stable Diffusion 2.1 (768px, v-prediction).", **COMMON),
)
@register_model(
    id="sd15",
    task="inpaint",
    hub_id=SD15_HUB,
    resource_hint={"min_vram_gb": 4, "dtype": "fp16"},
    **diffusion_contract(
        "inpaint", defaults={**SD15, "strength": 1.0}, summary="Stable Diffusion 1.5 inpainting.", **COMMON
    ),
)
@register_model(
    id="sd15",
    task="image2image",
    hub_id=SD15_HUB,
    resource_hint={"min_vram_gb": 4, "dtype": "fp16"},
    **diffusion_contract(
        "image2image", defaults={**SD15, "strength": 0.8}, summary="Stable Diffusion 1.5 img2img.", **COMMON
    ),
)
@register_model(
    id="sd15",
    task="text2image",
    hub_id=SD15_HUB,
    resource_hint={"min_vram_gb": 4, "dtype": "fp16"},
    example='omnirt generate --task text2image --model sd15 --prompt "a lighthouse at dusk"',
    **diffusion_contract("text2image", defaults=SD15, summary="Stable Diffusion 1.5 (512px).", **COMMON),
)
class StableDiffusionFamily(DiffusersPipeline):
    pipeline_classes = {
        "text2image": "StableDiffusionPipeline",
        "image2image": "StableDiffusionImg2ImgPipeline",
        "inpaint": "StableDiffusionInpaintPipeline",
    }


@register_model(
    id="sd21",
    task="depth2image",
    hub_id=SD2_DEPTH_HUB,
    weights_folder="sd21-depth",
    resource_hint={"min_vram_gb": 6, "dtype": "fp16"},
    **diffusion_contract(
        "depth2image",
        defaults={**SD15, "strength": 0.8},
        summary="Stable Diffusion 2 depth: image to image keeping the input's depth (DPT-estimated).",
        **COMMON,
    ),
)
class StableDiffusionDepth(DiffusersPipeline):
    # The UNet takes the latents plus the depth map the pipeline's DPT model estimates from the input image.
    pipeline_classes = {"depth2image": "StableDiffusionDepth2ImgPipeline"}
