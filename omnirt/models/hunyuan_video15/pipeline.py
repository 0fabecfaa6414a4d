"""HunyuanVideo 1.5 (480p checkpoints): text2video and image2video.

The pipelines steer classifier-free guidance through a ``guider`` component instead of a ``guidance_scale``
argument: a request's ``guidance_scale`` replaces the checkpoint's guider by a copy with that scale for the run, and
without one the checkpoint's own setting applies. Their ``__call__`` has no step callback, so progress comes from the
scheduler (:class:`~omnirt.models.diffusers_pipeline.DiffusersPipeline` does that for any such pipeline).

Image to video takes its resolution from the checkpoint (the transformer's ``target_size``) and the aspect-ratio
bucket nearest the input image; ``width`` and ``height`` crop the input image to their aspect ratio first, so they
choose the bucket.
"""

from __future__ import annotations

from typing import Any

from omnirt.models.base import RunContext
from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model

VIDEO = {"width": 848, "height": 480, "num_frames": 121, "fps": 24, "num_inference_steps": 50}


def _hunyuan_video15(model_id: str, task: str, hub_id: str, *, summary: str) -> Any:
    return register_model(
        id=model_id,
        task=task,
        hub_id=hub_id,
        resource_hint={"min_vram_gb": 24, "dtype": "bf16"},
        **diffusion_contract(
            task,
            defaults=dict(VIDEO),
            require_prompt=True,
            tier="experimental",
            maturity="beta",
            summary=summary,
        ),
    )


class _HunyuanVideo15(DiffusersPipeline):
    output_kind = "video"

    def adjust_arguments(self, ctx: RunContext, arguments: dict[str, Any]) -> None:
        pipe = self.task_pipeline(ctx.request.task)
        native_guider = self.__dict__.setdefault("native_guider", self.pipe.guider)
        scale = ctx.config.get("guidance_scale")
        pipe.guider = native_guider if scale is None else native_guider.new(guidance_scale=float(scale))


@_hunyuan_video15(
    "hunyuan-video-1.5-t2v",
    "text2video",
    "hunyuanvideo-community/HunyuanVideo-1.5-480p_t2v",
    summary="HunyuanVideo 1.5 text to video (480p).",
)
class HunyuanVideo15TextToVideo(_HunyuanVideo15):
    pipeline_classes = {"text2video": "HunyuanVideo15Pipeline"}


@_hunyuan_video15(
    "hunyuan-video-1.5-i2v",
    "image2video",
    "hunyuanvideo-community/HunyuanVideo-1.5-480p_i2v",
    summary="HunyuanVideo 1.5 image to video (480p).",
)
class HunyuanVideo15ImageToVideo(_HunyuanVideo15):
    pipeline_classes = {"image2video": "HunyuanVideo15ImageToVideoPipeline"}

    def adjust_arguments(self, ctx: RunContext, arguments: dict[str, Any]) -> None:
        super().adjust_arguments(ctx, arguments)
        width, height = ctx.config.get("width"), ctx.config.get("height")
        if width and height and "image" in arguments:
            from PIL import ImageOps

            arguments["image"] = ImageOps.fit(arguments["image"], (int(width), int(height)))
