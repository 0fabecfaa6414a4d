"""HunyuanVideo (Llama text encoder plus CLIP): text2video."""

from __future__ import annotations

from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model


@register_model(
    id="hunyuan-video",
    task="text2video",
    hub_id="hunyuanvideo-community/HunyuanVideo",
    resource_hint={"min_vram_gb": 48, "dtype": "bf16"},
    **diffusion_contract(
        "text2video",
        step_cache=True,
        defaults={
            "width": 1280,
            "height": 720,
            "num_frames": 129,
            "fps": 24,
            "num_inference_steps": 50,
            "guidance_scale": 6.0,
            "max_sequence_length": 256,
        },
        extra_config=("max_sequence_length",),
        tier="experimental",
        maturity="beta",
        summary="HunyuanVideo 13B.",
    ),
)
class HunyuanVideoFamily(DiffusersPipeline):
    pipeline_classes = {"text2video": "HunyuanVideoPipeline"}
    output_kind = "video"
