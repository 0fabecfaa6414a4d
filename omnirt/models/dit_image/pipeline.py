"""Experimental image DiTs served by their own diffusers pipelines, registered from one table.

* text2image: GLM-Image, HunyuanImage 2.1, Ovis-Image, HiDream-I1, BRIA 3.2, Lumina-Next (``lumina-t2x``),
  PixArt-Sigma and Sana;
* edit: ChronoEdit, a Wan-based video DiT that edits an image by generating a short clip from it and keeping the
  last frame.

Two behaviours of the libraries' pipelines that a caller sees:

* HiDream-I1 renders at a fixed area (1024x1024 pixels on the real model) and uses ``width``/``height`` only for the
  aspect ratio; the defaults are that area.
* HunyuanImage 2.1 guides through the guiders saved with the weights (``guider``, ``ocr_guider``), so it takes no
  ``guidance_scale``.
* PixArt-Sigma and Sana bin resolutions by default: the pipeline renders at the nearest trained aspect ratio and
  resizes the result to the requested size (``use_resolution_binning``).

OmniGen (``OmniGenPipeline``) is not registered: the pinned diffusers builds its multimodal processor only when
torchvision imports, and the CPU torch build has no working torchvision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omnirt.models.base import RunContext
from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model

SQUARE_1K = {"width": 1024, "height": 1024}


@dataclass(frozen=True)
class DitImageModel:
    """One row of the table: what differs between the registered ids."""

    model_id: str
    task: str
    hub_id: str
    defaults: dict[str, Any]
    min_vram_gb: int
    summary: str
    extra_config: tuple[str, ...] = ()
    drop_config: tuple[str, ...] = ()
    negative_prompt: bool = True
    dtype: str = "bf16"
    maturity: str = "experimental"


def _register(row: DitImageModel) -> Any:
    return register_model(
        id=row.model_id,
        task=row.task,
        hub_id=row.hub_id,
        resource_hint={"min_vram_gb": row.min_vram_gb, "dtype": row.dtype},
        **diffusion_contract(
            row.task,
            defaults=row.defaults,
            extra_config=row.extra_config,
            drop_config=row.drop_config,
            negative_prompt=row.negative_prompt,
            tier="experimental",
            maturity=row.maturity,
            summary=row.summary,
        ),
    )


GLM_IMAGE = DitImageModel(
    "glm-image",
    "text2image",
    "zai-org/GLM-Image",
    defaults={**SQUARE_1K, "num_inference_steps": 50, "guidance_scale": 1.5},
    # The autoregressive stage drafts one image per call.
    drop_config=("num_images_per_prompt",),
    negative_prompt=False,
    min_vram_gb=40,
    summary="GLM-Image: an autoregressive model drafts image tokens that a diffusion decoder renders.",
)
HUNYUAN_IMAGE = DitImageModel(
    "hunyuan-image-2.1",
    "text2image",
    "hunyuanvideo-community/HunyuanImage-2.1-Diffusers",
    defaults={"width": 2048, "height": 2048, "num_inference_steps": 50},
    drop_config=("guidance_scale",),
    min_vram_gb=48,
    summary="HunyuanImage 2.1: 2K text to image with glyph-aware text rendering.",
)
OVIS_IMAGE = DitImageModel(
    "ovis-image",
    "text2image",
    "AIDC-AI/Ovis-Image-7B",
    defaults={**SQUARE_1K, "num_inference_steps": 50, "guidance_scale": 5.0, "max_sequence_length": 256},
    extra_config=("max_sequence_length",),
    min_vram_gb=24,
    summary="Ovis-Image 7B: text to image tuned for text rendering (Qwen3 text encoder).",
)
HIDREAM_I1 = DitImageModel(
    "hidream-i1",
    "text2image",
    "HiDream-ai/HiDream-I1-Full",
    defaults={**SQUARE_1K, "num_inference_steps": 50, "guidance_scale": 5.0, "max_sequence_length": 128},
    extra_config=("max_sequence_length",),
    min_vram_gb=48,
    summary="HiDream-I1 Full: sparse-MoE DiT with CLIP, T5 and Llama-3.1 text encoders (fixed 1 MP area).",
)
BRIA_32 = DitImageModel(
    "bria-3.2",
    "text2image",
    "briaai/BRIA-3.2",
    defaults={**SQUARE_1K, "num_inference_steps": 30, "guidance_scale": 5.0, "max_sequence_length": 128},
    extra_config=("max_sequence_length",),
    min_vram_gb=16,
    summary="BRIA 3.2: text to image trained on licensed data.",
)
LUMINA_NEXT = DitImageModel(
    "lumina-t2x",
    "text2image",
    "Alpha-VLLM/Lumina-Next-SFT-diffusers",
    defaults={**SQUARE_1K, "num_inference_steps": 30, "guidance_scale": 4.0, "max_sequence_length": 256},
    extra_config=("max_sequence_length",),
    min_vram_gb=16,
    summary="Lumina-Next SFT (Lumina-T2X): Next-DiT text to image with a Gemma text encoder.",
)
# PixArt-Sigma and its successor Sana share the pipeline's calling convention (300-token prompts, aspect-ratio
# binning) and so their defaults.
BINNED_1K_DEFAULTS = {
    **SQUARE_1K,
    "num_inference_steps": 20,
    "guidance_scale": 4.5,
    "max_sequence_length": 300,
    "use_resolution_binning": True,
}
PIXART_SIGMA = DitImageModel(
    "pixart-sigma",
    "text2image",
    "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS",
    defaults=BINNED_1K_DEFAULTS,
    extra_config=("max_sequence_length", "use_resolution_binning"),
    min_vram_gb=12,
    dtype="fp16",
    maturity="beta",
    summary="PixArt-Sigma XL: 1024px text to image (DiT, T5 text encoder).",
)
SANA = DitImageModel(
    "sana-1.6b",
    "text2image",
    "Efficient-Large-Model/Sana_1600M_1024px_diffusers",
    defaults=BINNED_1K_DEFAULTS,
    extra_config=("max_sequence_length", "use_resolution_binning"),
    min_vram_gb=12,
    maturity="beta",
    summary="Sana 1.6B: fast 1024px text to image (linear-attention DiT, Gemma 2 text encoder).",
)
CHRONOEDIT = DitImageModel(
    "chronoedit",
    "edit",
    "nvidia/ChronoEdit-14B-Diffusers",
    # Without temporal reasoning (the pipeline's default) the clip has 5 frames.
    defaults={
        "width": 1280,
        "height": 720,
        "num_inference_steps": 50,
        "guidance_scale": 5.0,
        "max_sequence_length": 512,
    },
    extra_config=("max_sequence_length",),
    # One edited image per request: the pipeline makes one clip per prompt.
    drop_config=("num_images_per_prompt",),
    min_vram_gb=40,
    summary="ChronoEdit 14B: physically consistent image editing as a short video whose last frame is the edit.",
)


@_register(GLM_IMAGE)
class GlmImageFamily(DiffusersPipeline):
    pipeline_classes = {"text2image": "GlmImagePipeline"}


@_register(HUNYUAN_IMAGE)
class HunyuanImageFamily(DiffusersPipeline):
    pipeline_classes = {"text2image": "HunyuanImagePipeline"}


@_register(OVIS_IMAGE)
class OvisImageFamily(DiffusersPipeline):
    pipeline_classes = {"text2image": "OvisImagePipeline"}


@_register(HIDREAM_I1)
class HiDreamImageFamily(DiffusersPipeline):
    pipeline_classes = {"text2image": "HiDreamImagePipeline"}


@_register(BRIA_32)
class BriaFamily(DiffusersPipeline):
    pipeline_classes = {"text2image": "BriaPipeline"}


@_register(LUMINA_NEXT)
class LuminaNextFamily(DiffusersPipeline):
    pipeline_classes = {"text2image": "LuminaPipeline"}


@_register(PIXART_SIGMA)
class PixArtSigmaFamily(DiffusersPipeline):
    pipeline_classes = {"text2image": "PixArtSigmaPipeline"}


@_register(SANA)
class SanaFamily(DiffusersPipeline):
    pipeline_classes = {"text2image": "SanaPipeline"}


@_register(CHRONOEDIT)
class ChronoEditFamily(DiffusersPipeline):
    pipeline_classes = {"edit": "ChronoEditPipeline"}

    def decode(self, ctx: RunContext, raw: Any) -> Any:
        # The clip (PIL frames) starts at the input image, resized to width x height, and ends at the edit.
        return [raw.frames[0][-1].convert("RGB")]
