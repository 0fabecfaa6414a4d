"""PixArt-Sigma: text2image with a DiT conditioned on T5 embeddings (``PixArtSigmaPipeline``)."""

from __future__ import annotations

from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model


@register_model(
    id="pixart-sigma",
    task="text2image",
    hub_id="PixArt-alpha/PixArt-Sigma-XL-2-1024-MS",
    resource_hint={"min_vram_gb": 12, "dtype": "fp16"},
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
        summary="PixArt-Sigma XL: 1024px text to image (DiT, T5 text encoder).",
    ),
)
class PixArtSigmaFamily(DiffusersPipeline):
    pipeline_classes = {"text2image": "PixArtSigmaPipeline"}
