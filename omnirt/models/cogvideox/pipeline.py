"""CogVideoX 2B and 5B: text2video."""

from __future__ import annotations

from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model

VIDEO = {"width": 720, "height": 480, "num_frames": 49, "fps": 8, "num_inference_steps": 50, "guidance_scale": 6.0}


@register_model(
    id="cogvideox-5b",
    task="text2video",
    hub_id="THUDM/CogVideoX-5b",
    resource_hint={"min_vram_gb": 20, "dtype": "bf16"},
    **diffusion_contract("text2video", defaults=VIDEO, tier="experimental", maturity="beta", summary="CogVideoX 5B."),
)
@register_model(
    id="cogvideox-2b",
    task="text2video",
    hub_id="THUDM/CogVideoX-2b",
    resource_hint={"min_vram_gb": 12, "dtype": "fp16"},
    **diffusion_contract("text2video", defaults=VIDEO, tier="experimental", maturity="beta", summary="CogVideoX 2B."),
)
class CogVideoXFamily(DiffusersPipeline):
    pipeline_classes = {"text2video": "CogVideoXPipeline"}
    output_kind = "video"
