"""AnimateDiff SDXL: text2video from SDXL base 1.0 plus the SDXL motion adapter.

The two are published apart: the pipeline's repository is SDXL base 1.0, the motion adapter
(``MotionAdapter``, ``guoyww/animatediff-motion-adapter-sdxl-beta``) its own. A weights folder is therefore the
SDXL base layout with the adapter repository's files in a ``motion_adapter/`` sub-folder; from the hub, the adapter
comes from its own repository. ``AnimateDiffSDXLPipeline`` merges the adapter's motion modules into the SDXL UNet
(a ``UNetMotionModel``) when it is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.contracts.errors import WeightsNotFoundError
from omnirt.models.contracts import UNET, diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline, import_diffusers
from omnirt.registry.registry import register_model

MOTION_ADAPTER_HUB = "guoyww/animatediff-motion-adapter-sdxl-beta"
#: the sub-folder of a weights folder that holds the motion adapter
MOTION_ADAPTER_FOLDER = "motion_adapter"


@register_model(
    id="animate-diff-sdxl",
    task="text2video",
    hub_id="stabilityai/stable-diffusion-xl-base-1.0",
    resource_hint={"min_vram_gb": 16, "dtype": "fp16"},
    **diffusion_contract(
        "text2video",
        defaults={
            "width": 1024,
            "height": 1024,
            "num_frames": 16,
            "fps": 8,
            "num_inference_steps": 20,
            "guidance_scale": 8.0,
            "scheduler": "native",
        },
        schedulers=UNET,
        require_prompt=True,
        tier="adjacent",
        maturity="beta",
        summary="AnimateDiff SDXL (beta motion adapter on SDXL base 1.0) text to video.",
    ),
)
class AnimateDiffSDXLFamily(DiffusersPipeline):
    pipeline_classes = {"text2video": "AnimateDiffSDXLPipeline"}
    output_kind = "video"

    def separate_components(self, dtype: Any) -> dict[str, Any]:
        diffusers = import_diffusers()
        location = MOTION_ADAPTER_HUB
        if self.source.is_local:
            folder = Path(self.source.location) / MOTION_ADAPTER_FOLDER
            if not (folder / "config.json").is_file():
                raise WeightsNotFoundError(
                    f"'{self.spec.id}' needs the motion adapter ({MOTION_ADAPTER_HUB}) in {folder}; "
                    "put that repository's files there.",
                    details={"model": self.spec.id, "location": str(folder)},
                )
            location = str(folder)
        return {"motion_adapter": diffusers.MotionAdapter.from_pretrained(location, torch_dtype=dtype)}
