"""Stable Diffusion 3 and 3.5 (MMDiT, flow matching): text2image."""

from __future__ import annotations

from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model

SIZE = {"width": 1024, "height": 1024, "max_sequence_length": 256}


def _sd3(model_id: str, hub_id: str, steps: int, guidance: float, vram: int, summary: str):
    return register_model(
        id=model_id,
        task="text2image",
        hub_id=hub_id,
        resource_hint={"min_vram_gb": vram, "dtype": "fp16"},
        **diffusion_contract(
            "text2image",
            defaults={**SIZE, "num_inference_steps": steps, "guidance_scale": guidance},
            extra_config=("max_sequence_length",),
            tier="experimental",
            maturity="beta",
            summary=summary,
        ),
    )


@_sd3("sd3.5-medium", "stabilityai/stable-diffusion-3.5-medium", 40, 4.5, 12, "Stable Diffusion 3.5 Medium.")
@_sd3("sd3.5-large-turbo", "stabilityai/stable-diffusion-3.5-large-turbo", 4, 0.0, 24, "SD 3.5 Large Turbo, 4 steps.")
@_sd3("sd3.5-large", "stabilityai/stable-diffusion-3.5-large", 28, 3.5, 24, "Stable Diffusion 3.5 Large.")
@_sd3("sd3-medium", "stabilityai/stable-diffusion-3-medium-diffusers", 28, 7.0, 16, "Stable Diffusion 3 Medium.")
class StableDiffusion3Family(DiffusersPipeline):
    pipeline_classes = {"text2image": "StableDiffusion3Pipeline"}
