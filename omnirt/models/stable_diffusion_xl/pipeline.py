"""Stable Diffusion XL: base 1.0 (text2image, image2image, inpaint), the refiner (image2image) and Turbo."""

from __future__ import annotations

from omnirt.models.contracts import UNET, diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model

BASE_HUB = "stabilityai/stable-diffusion-xl-base-1.0"
BASE = {"width": 1024, "height": 1024, "num_inference_steps": 30, "guidance_scale": 5.0, "scheduler": "native"}
HINT = {"min_vram_gb": 12, "dtype": "fp16"}


@register_model(
    id="sdxl-base-1.0",
    task="inpaint",
    hub_id=BASE_HUB,
    resource_hint=HINT,
    **diffusion_contract(
        "inpaint",
        defaults={**BASE, "strength": 0.99},
        schedulers=UNET,
        tier="experimental",
        maturity="beta",
        summary="SDXL base 1.0 inpainting.",
    ),
)
@register_model(
    id="sdxl-base-1.0",
    task="image2image",
    hub_id=BASE_HUB,
    resource_hint=HINT,
    **diffusion_contract(
        "image2image",
        defaults={**BASE, "strength": 0.8},
        schedulers=UNET,
        tier="adjacent",
        maturity="beta",
        summary="SDXL base 1.0 img2img.",
    ),
)
@register_model(
    id="sdxl-base-1.0",
    task="text2image",
    hub_id=BASE_HUB,
    resource_hint=HINT,
    example='omnirt generate --task text2image --model sdxl-base-1.0 --prompt "a portrait, studio light"',
    **diffusion_contract(
        "text2image",
        defaults=BASE,
        schedulers=UNET,
        tier="adjacent",
        maturity="stable",
        summary="SDXL base 1.0 (1024px): avatar portraits and assets.",
    ),
)
class StableDiffusionXLFamily(DiffusersPipeline):
    pipeline_classes = {
        "text2image": "StableDiffusionXLPipeline",
        "image2image": "StableDiffusionXLImg2ImgPipeline",
        "inpaint": "StableDiffusionXLInpaintPipeline",
    }


@register_model(
    id="sdxl-refiner-1.0",
    task="image2image",
    hub_id="stabilityai/stable-diffusion-xl-refiner-1.0",
    resource_hint=HINT,
    **diffusion_contract(
        "image2image",
        defaults={**BASE, "strength": 0.3},
        schedulers=UNET,
        tier="adjacent",
        maturity="beta",
        summary="SDXL refiner 1.0: detail pass over an image.",
    ),
)
class StableDiffusionXLRefiner(DiffusersPipeline):
    pipeline_classes = {"image2image": "StableDiffusionXLImg2ImgPipeline"}


@register_model(
    id="sdxl-turbo",
    task="text2image",
    hub_id="stabilityai/sdxl-turbo",
    resource_hint={"min_vram_gb": 8, "dtype": "fp16"},
    **diffusion_contract(
        "text2image",
        defaults={"width": 512, "height": 512, "num_inference_steps": 1, "guidance_scale": 0.0, "scheduler": "native"},
        schedulers=UNET,
        tier="experimental",
        maturity="beta",
        summary="SDXL Turbo: one-step 512px images.",
    ),
)
class StableDiffusionXLTurbo(DiffusersPipeline):
    pipeline_classes = {"text2image": "StableDiffusionXLPipeline"}
