"""SANA-Video 2B (480p): text2video.

The pipeline names the frame count ``frames``. With ``use_resolution_binning`` (the default) it renders at the
480p bucket nearest the requested aspect ratio and resizes the video back to ``width`` x ``height``.
"""

from __future__ import annotations

from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model


@register_model(
    id="sana-video",
    task="text2video",
    hub_id="Efficient-Large-Model/SANA-Video_2B_480p_diffusers",
    resource_hint={"min_vram_gb": 16, "dtype": "bf16"},
    **diffusion_contract(
        "text2video",
        defaults={
            "width": 832,
            "height": 480,
            "num_frames": 81,
            "fps": 16,
            "num_inference_steps": 50,
            "guidance_scale": 6.0,
            "max_sequence_length": 300,
            "use_resolution_binning": True,
        },
        extra_config=("max_sequence_length", "use_resolution_binning"),
        require_prompt=True,
        tier="experimental",
        maturity="beta",
        summary="SANA-Video 2B text to video (480p).",
    ),
)
class SanaVideoFamily(DiffusersPipeline):
    pipeline_classes = {"text2video": "SanaVideoPipeline"}
    config_arguments = {"num_frames": "frames"}
    output_kind = "video"
