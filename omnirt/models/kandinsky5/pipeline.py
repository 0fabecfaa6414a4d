"""Kandinsky 5.0 video (Kandinsky Lab): text2video (Lite, 2B) and image2video (Pro, 19B)."""

from __future__ import annotations

from typing import Any

from omnirt.contracts.errors import RequestValidationError
from omnirt.models.base import RunContext
from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model

#: latent frames the I2V pipeline renormalises against the later ones
I2V_NORMALIZED_LATENT_FRAMES = 4

VIDEO = {"width": 768, "height": 512, "num_frames": 121, "fps": 24, "max_sequence_length": 512}


def _kandinsky5(model_id: str, task: str, hub_id: str, *, min_vram_gb: int, summary: str) -> Any:
    return register_model(
        id=model_id,
        task=task,
        hub_id=hub_id,
        resource_hint={"min_vram_gb": min_vram_gb, "dtype": "bf16"},
        **diffusion_contract(
            task,
            defaults={**VIDEO, "num_inference_steps": 50, "guidance_scale": 5.0},
            extra_config=("max_sequence_length",),
            require_prompt=True,
            tier="experimental",
            maturity="beta",
            summary=summary,
        ),
    )


@_kandinsky5(
    "kandinsky5-t2v",
    "text2video",
    "kandinskylab/Kandinsky-5.0-T2V-Lite-sft-5s-Diffusers",
    min_vram_gb=24,
    summary="Kandinsky 5.0 T2V Lite (2B) text to video, 5 s.",
)
class Kandinsky5TextToVideo(DiffusersPipeline):
    pipeline_classes = {"text2video": "Kandinsky5T2VPipeline"}
    output_kind = "video"


@_kandinsky5(
    "kandinsky5-i2v",
    "image2video",
    "kandinskylab/Kandinsky-5.0-I2V-Pro-sft-5s-Diffusers",
    min_vram_gb=48,
    summary="Kandinsky 5.0 I2V Pro (19B) image to video, 5 s.",
)
class Kandinsky5ImageToVideo(DiffusersPipeline):
    pipeline_classes = {"image2video": "Kandinsky5I2VPipeline"}
    output_kind = "video"

    def adjust_arguments(self, ctx: RunContext, arguments: dict[str, Any]) -> None:
        # The pipeline renormalises the first 4 latent frames against the ones after them; with no frames after
        # them the statistics are NaN and so is the video.
        pipe = self.task_pipeline(ctx.request.task)
        num_frames = int(arguments.get("num_frames", 121))
        if (num_frames - 1) // pipe.vae_scale_factor_temporal + 1 <= I2V_NORMALIZED_LATENT_FRAMES:
            shortest = I2V_NORMALIZED_LATENT_FRAMES * pipe.vae_scale_factor_temporal + 1
            message = f"'{self.spec.id}' needs num_frames >= {shortest}, got {num_frames}."
            raise RequestValidationError(message, details={"issues": [{"level": "error", "message": message}]})
