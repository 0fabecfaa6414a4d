"""Qwen-Image (MMDiT with a Qwen2.5-VL text encoder): text2image."""

from __future__ import annotations

from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model


@register_model(
    id="qwen-image",
    task="text2image",
    hub_id="Qwen/Qwen-Image",
    resource_hint={"min_vram_gb": 40, "dtype": "bf16"},
    **diffusion_contract(
        "text2image",
        defaults={
            "width": 1328,
            "height": 1328,
            "num_inference_steps": 50,
            "true_cfg_scale": 4.0,
            "max_sequence_length": 512,
        },
        extra_config=("true_cfg_scale", "max_sequence_length"),
        drop_config=("guidance_scale",),
        tier="adjacent",
        maturity="beta",
        summary="Qwen-Image: text to image with strong text rendering.",
    ),
)
class QwenImageFamily(DiffusersPipeline):
    pipeline_classes = {"text2image": "QwenImagePipeline"}
