"""Mochi 1 preview (10B asymmetric diffusion transformer, T5-XXL text encoder): text2video."""

from __future__ import annotations

from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model


@register_model(
    id="mochi",
    task="text2video",
    hub_id="genmo/mochi-1-preview",
    resource_hint={"min_vram_gb": 24, "dtype": "bf16"},
    **diffusion_contract(
        "text2video",
        step_cache=True,
        defaults={
            "width": 848,
            "height": 480,
            "num_frames": 85,
            "fps": 30,
            "num_inference_steps": 64,
            "guidance_scale": 4.5,
            "max_sequence_length": 256,
        },
        extra_config=("max_sequence_length",),
        require_prompt=True,
        tier="experimental",
        maturity="beta",
        summary="Mochi 1 preview (Genmo) text to video.",
    ),
)
class MochiFamily(DiffusersPipeline):
    pipeline_classes = {"text2video": "MochiPipeline"}
    output_kind = "video"
