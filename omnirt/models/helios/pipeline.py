"""Helios Base: text2video and image2video through the one ``HeliosPipeline`` (it takes an optional ``image``).

Helios denoises the video in chunks of ``num_latent_frames_per_chunk`` latent frames (33 video frames at the real
chunk size of 9), each attending to a history of earlier chunks, so the video length is a whole number of chunks.
"""

from __future__ import annotations

from typing import Any

from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model

VIDEO = {
    "width": 640,
    "height": 384,
    "num_frames": 132,
    "fps": 24,
    "num_inference_steps": 50,
    "guidance_scale": 5.0,
    "max_sequence_length": 512,
}


def _helios(model_id: str, task: str, *, summary: str) -> Any:
    return register_model(
        id=model_id,
        task=task,
        hub_id="BestWishYsh/Helios-Base",
        resource_hint={"min_vram_gb": 40, "dtype": "bf16"},
        **diffusion_contract(
            task,
            defaults=dict(VIDEO),
            extra_config=("max_sequence_length",),
            require_prompt=True,
            tier="experimental",
            maturity="beta",
            summary=summary,
        ),
    )


@_helios("helios-i2v", "image2video", summary="Helios Base image to video (chunked, long video).")
@_helios("helios-t2v", "text2video", summary="Helios Base text to video (chunked, long video).")
class HeliosFamily(DiffusersPipeline):
    pipeline_classes = {"text2video": "HeliosPipeline", "image2video": "HeliosPipeline"}
    output_kind = "video"
