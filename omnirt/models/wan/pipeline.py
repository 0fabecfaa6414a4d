"""Wan 2.1 and 2.2 (14B; 2.2 uses two experts split by a noise boundary): text2video and image2video.

Wan 2.2's second expert (``transformer_2``) denoises the low-noise steps with its own ``guidance_scale_2``.
"""

from __future__ import annotations

from typing import Any

from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model

VIDEO = {"width": 832, "height": 480, "num_frames": 81, "fps": 16, "max_sequence_length": 512}
HINT = {"min_vram_gb": 40, "dtype": "bf16"}


def _wan(
    model_id: str,
    task: str,
    hub_id: str,
    *,
    steps: int,
    guidance: float,
    tier: str,
    summary: str,
    guidance_2: float | None = None,
) -> Any:
    defaults = {**VIDEO, "num_inference_steps": steps, "guidance_scale": guidance}
    extra_config: tuple[str, ...] = ("max_sequence_length",)
    if guidance_2 is not None:
        defaults["guidance_scale_2"] = guidance_2
        extra_config += ("guidance_scale_2",)
    return register_model(
        id=model_id,
        task=task,
        hub_id=hub_id,
        resource_hint=HINT,
        **diffusion_contract(
            task,
            step_cache=True,
            defaults=defaults,
            extra_config=extra_config,
            require_prompt=True,
            tier=tier,
            maturity="beta",
            summary=summary,
        ),
    )


@_wan(
    "wan2.2-t2v-14b",
    "text2video",
    "Wan-AI/Wan2.2-T2V-A14B-Diffusers",
    steps=40,
    guidance=4.0,
    guidance_2=3.0,
    tier="adjacent",
    summary="Wan 2.2 A14B text to video (two experts).",
)
@_wan(
    "wan2.1-t2v-14b",
    "text2video",
    "Wan-AI/Wan2.1-T2V-14B-Diffusers",
    steps=50,
    guidance=5.0,
    tier="experimental",
    summary="Wan 2.1 14B text to video.",
)
class WanTextToVideo(DiffusersPipeline):
    pipeline_classes = {"text2video": "WanPipeline"}
    output_kind = "video"


@_wan(
    "wan2.2-i2v-14b",
    "image2video",
    "Wan-AI/Wan2.2-I2V-A14B-Diffusers",
    steps=40,
    guidance=3.5,
    guidance_2=3.5,
    tier="adjacent",
    summary="Wan 2.2 A14B image to video (two experts).",
)
@_wan(
    "wan2.1-i2v-14b",
    "image2video",
    "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
    steps=50,
    guidance=5.0,
    tier="experimental",
    summary="Wan 2.1 14B image to video (480p).",
)
class WanImageToVideo(DiffusersPipeline):
    pipeline_classes = {"image2video": "WanImageToVideoPipeline"}
    output_kind = "video"
