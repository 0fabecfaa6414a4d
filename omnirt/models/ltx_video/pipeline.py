"""LTX-Video: fast text2video."""

from __future__ import annotations

from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model


@register_model(
    id="ltx-video",
    task="text2video",
    hub_id="Lightricks/LTX-Video",
    resource_hint={"min_vram_gb": 16, "dtype": "bf16"},
    **diffusion_contract(
        "text2video",
        defaults={
            "width": 704,
            "height": 480,
            "num_frames": 161,
            "fps": 25,
            "num_inference_steps": 50,
            "guidance_scale": 3.0,
            "max_sequence_length": 128,
        },
        extra_config=("max_sequence_length",),
        tier="experimental",
        maturity="beta",
        summary="LTX-Video 0.9.",
    ),
)
class LTXVideoFamily(DiffusersPipeline):
    pipeline_classes = {"text2video": "LTXPipeline"}
    config_arguments = {"fps": "frame_rate"}
    output_kind = "video"
