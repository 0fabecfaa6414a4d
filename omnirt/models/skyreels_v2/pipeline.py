"""SkyReels-V2 14B 540P (a Wan 2.1 architecture with its own weights): text2video."""

from __future__ import annotations

from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model


@register_model(
    id="skyreels-v2",
    task="text2video",
    hub_id="Skywork/SkyReels-V2-T2V-14B-540P-Diffusers",
    resource_hint={"min_vram_gb": 40, "dtype": "bf16"},
    **diffusion_contract(
        "text2video",
        defaults={
            "width": 960,
            "height": 544,
            "num_frames": 97,
            "fps": 24,
            "num_inference_steps": 50,
            "guidance_scale": 6.0,
            "max_sequence_length": 512,
        },
        extra_config=("max_sequence_length",),
        require_prompt=True,
        tier="experimental",
        maturity="beta",
        summary="SkyReels-V2 14B text to video (540p).",
    ),
)
class SkyReelsV2Family(DiffusersPipeline):
    pipeline_classes = {"text2video": "SkyReelsV2Pipeline"}
    output_kind = "video"
