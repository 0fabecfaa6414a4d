"""Sana: text2image with a linear-attention DiT over a 32x deep-compression autoencoder (``SanaPipeline``)."""

from __future__ import annotations

from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model


@register_model(
    id="sana-1.6b",
    task="text2image",
    hub_id="Efficient-Large-Model/Sana_1600M_1024px_diffusers",
    resource_hint={"min_vram_gb": 12, "dtype": "bf16"},
    **diffusion_contract(
        "text2image",
        defaults={
            "width": 1024,
            "height": 1024,
            "num_inference_steps": 20,
            "guidance_scale": 4.5,
            "max_sequence_length": 300,
            "use_resolution_binning": True,
        },
        # With resolution binning the pipeline renders at the nearest trained aspect ratio and resizes the result to
        # the requested size.
        extra_config=("max_sequence_length", "use_resolution_binning"),
        tier="experimental",
        maturity="beta",
        summary="Sana 1.6B: fast 1024px text to image (linear-attention DiT, Gemma 2 text encoder).",
    ),
)
class SanaFamily(DiffusersPipeline):
    pipeline_classes = {"text2image": "SanaPipeline"}
