"""FLUX.2: dev (Mistral-3 text encoder; alias ``flux2-dev``) and klein (Qwen3 text encoder): text2image."""

from __future__ import annotations

from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model

DEV = {"width": 1024, "height": 1024, "num_inference_steps": 50, "guidance_scale": 4.0, "max_sequence_length": 512}


@register_model(id="flux2-dev", task="text2image", alias_of="flux2.dev")
@register_model(
    id="flux2.dev",
    task="text2image",
    hub_id="black-forest-labs/FLUX.2-dev",
    resource_hint={"min_vram_gb": 64, "dtype": "bf16"},
    **diffusion_contract(
        "text2image",
        defaults=DEV,
        extra_config=("max_sequence_length",),
        negative_prompt=False,
        tier="adjacent",
        maturity="beta",
        summary="FLUX.2 dev: text to image with a Mistral-3 text encoder.",
    ),
)
class Flux2Family(DiffusersPipeline):
    pipeline_classes = {"text2image": "Flux2Pipeline"}


@register_model(
    id="flux2-klein",
    task="text2image",
    hub_id="black-forest-labs/FLUX.2-klein-4B",
    resource_hint={"min_vram_gb": 16, "dtype": "bf16"},
    **diffusion_contract(
        "text2image",
        defaults={
            "width": 1024,
            "height": 1024,
            "num_inference_steps": 4,
            "guidance_scale": 1.0,
            "max_sequence_length": 512,
        },
        extra_config=("max_sequence_length",),
        negative_prompt=False,
        tier="experimental",
        maturity="beta",
        summary="FLUX.2 klein: small distilled FLUX.2 with a Qwen3 text encoder.",
    ),
)
class Flux2Klein(DiffusersPipeline):
    pipeline_classes = {"text2image": "Flux2KleinPipeline"}
