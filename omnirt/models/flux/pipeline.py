"""FLUX.1: dev and schnell (text2image), Fill (inpaint), Kontext and Depth / Canny control (edit)."""

from __future__ import annotations

from typing import Any

from omnirt.models.base import RunContext
from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model

SIZE = {"width": 1024, "height": 1024}
HINT = {"min_vram_gb": 24, "dtype": "bf16"}
T5_LENGTH = ("max_sequence_length",)


@register_model(
    id="flux-schnell",
    task="text2image",
    hub_id="black-forest-labs/FLUX.1-schnell",
    resource_hint=HINT,
    **diffusion_contract(
        "text2image",
        step_cache=True,
        defaults={**SIZE, "num_inference_steps": 4, "guidance_scale": 0.0, "max_sequence_length": 256},
        extra_config=T5_LENGTH,
        negative_prompt=False,
        tier="experimental",
        maturity="beta",
        summary="FLUX.1 schnell: 4-step text to image.",
    ),
)
@register_model(
    id="flux-dev",
    task="text2image",
    hub_id="black-forest-labs/FLUX.1-dev",
    resource_hint=HINT,
    example='omnirt generate --task text2image --model flux-dev --prompt "a studio portrait"',
    **diffusion_contract(
        "text2image",
        step_cache=True,
        defaults={**SIZE, "num_inference_steps": 28, "guidance_scale": 3.5, "max_sequence_length": 512},
        extra_config=T5_LENGTH,
        negative_prompt=False,
        tier="adjacent",
        maturity="stable",
        summary="FLUX.1 dev: guidance-distilled text to image.",
    ),
)
class FluxFamily(DiffusersPipeline):
    pipeline_classes = {"text2image": "FluxPipeline"}


@register_model(
    id="flux-fill",
    task="inpaint",
    hub_id="black-forest-labs/FLUX.1-Fill-dev",
    resource_hint=HINT,
    **diffusion_contract(
        "inpaint",
        defaults={**SIZE, "num_inference_steps": 50, "guidance_scale": 30.0, "max_sequence_length": 512},
        extra_config=T5_LENGTH,
        drop_config=("strength",),
        negative_prompt=False,
        tier="adjacent",
        maturity="beta",
        summary="FLUX.1 Fill: inpainting and outpainting.",
    ),
)
class FluxFill(DiffusersPipeline):
    pipeline_classes = {"inpaint": "FluxFillPipeline"}


@register_model(
    id="flux-kontext",
    task="edit",
    hub_id="black-forest-labs/FLUX.1-Kontext-dev",
    resource_hint=HINT,
    **diffusion_contract(
        "edit",
        defaults={**SIZE, "num_inference_steps": 28, "guidance_scale": 2.5, "max_sequence_length": 512},
        extra_config=T5_LENGTH,
        negative_prompt=False,
        tier="adjacent",
        maturity="beta",
        summary="FLUX.1 Kontext: instruction-based image editing.",
    ),
)
class FluxKontext(DiffusersPipeline):
    pipeline_classes = {"edit": "FluxKontextPipeline"}
    # Kontext snaps the input to its preferred resolutions and sizes the output by ``max_area`` unless told
    # otherwise; OmniRT honours the requested width and height.
    fixed_arguments = {"_auto_resize": False}

    def adjust_arguments(self, ctx: RunContext, arguments: dict[str, Any]) -> None:
        arguments["max_area"] = int(ctx.config["width"]) * int(ctx.config["height"])


def _flux_control(model_id: str, hub_id: str, *, steps: int, guidance: float, summary: str) -> Any:
    return register_model(
        id=model_id,
        task="edit",
        hub_id=hub_id,
        resource_hint=HINT,
        **diffusion_contract(
            "edit",
            defaults={**SIZE, "num_inference_steps": steps, "guidance_scale": guidance, "max_sequence_length": 512},
            extra_config=T5_LENGTH,
            negative_prompt=False,
            tier="adjacent",
            maturity="beta",
            summary=summary,
        ),
    )


@_flux_control(
    "flux-canny",
    "black-forest-labs/FLUX.1-Canny-dev",
    steps=50,
    guidance=30.0,
    summary="FLUX.1 Canny: text to image following the edges of a Canny map (the input image).",
)
@_flux_control(
    "flux-depth",
    "black-forest-labs/FLUX.1-Depth-dev",
    steps=30,
    guidance=10.0,
    summary="FLUX.1 Depth: text to image following the structure of a depth map (the input image).",
)
class FluxControl(DiffusersPipeline):
    pipeline_classes = {"edit": "FluxControlPipeline"}
    # The request's image is the control map; the transformer sees it concatenated to the latents per token.
    input_arguments = {"image": "control_image"}
