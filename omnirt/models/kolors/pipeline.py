"""Kolors: text2image with an SDXL-style UNet conditioned on ChatGLM3 embeddings (``KolorsPipeline``)."""

from __future__ import annotations

from omnirt.models.contracts import UNET, diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model


@register_model(
    id="kolors",
    task="text2image",
    hub_id="Kwai-Kolors/Kolors-diffusers",
    resource_hint={"min_vram_gb": 16, "dtype": "fp16"},
    **diffusion_contract(
        "text2image",
        defaults={
            "width": 1024,
            "height": 1024,
            "num_inference_steps": 50,
            "guidance_scale": 5.0,
            "max_sequence_length": 256,
            "scheduler": "native",
        },
        extra_config=("max_sequence_length",),
        schedulers=UNET,
        tier="experimental",
        maturity="beta",
        summary="Kolors: 1024px text to image with Chinese and English prompts (ChatGLM3 text encoder).",
    ),
)
class KolorsFamily(DiffusersPipeline):
    pipeline_classes = {"text2image": "KolorsPipeline"}
