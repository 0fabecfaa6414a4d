"""Qwen-Image (MMDiT with a Qwen2.5-VL text encoder): text2image, and the Edit and Edit-Plus (2509) models (edit).

The edit models read the input image twice: the Qwen2.5-VL encoder sees it with the instruction (through the
repository's ``processor``, a ``Qwen2VLProcessor``), and the VAE latents of it join the transformer's sequence.
"""

from __future__ import annotations

from typing import Any

from omnirt.contracts.errors import DependencyUnavailableError
from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model

HINT = {"min_vram_gb": 40, "dtype": "bf16"}


def _qwen(model_id: str, task: str, hub_id: str, *, size: int, summary: str, step_cache: bool = False) -> Any:
    """Register one Qwen-Image model: they differ only in task, repository, native size and First Block Cache."""
    return register_model(
        id=model_id,
        task=task,
        hub_id=hub_id,
        resource_hint=HINT,
        **diffusion_contract(
            task,
            step_cache=step_cache,
            defaults={
                "width": size,
                "height": size,
                "num_inference_steps": 50,
                "true_cfg_scale": 4.0,
                "max_sequence_length": 512,
            },
            extra_config=("true_cfg_scale", "max_sequence_length"),
            drop_config=("guidance_scale",),
            tier="adjacent",
            maturity="beta",
            summary=summary,
        ),
    )


@_qwen(
    "qwen-image",
    "text2image",
    "Qwen/Qwen-Image",
    size=1328,
    step_cache=True,
    summary="Qwen-Image: text to image with strong text rendering.",
)
class QwenImageFamily(DiffusersPipeline):
    pipeline_classes = {"text2image": "QwenImagePipeline"}


def require_processor_support(model_id: str) -> None:
    """transformers builds (and loads) ``Qwen2VLProcessor`` only where torchvision works: say so up front."""
    from transformers.utils import is_torchvision_available

    if not is_torchvision_available():
        raise DependencyUnavailableError(
            f"'{model_id}' needs torchvision: transformers builds its Qwen2VLProcessor (with a video processor) only "
            "where torchvision is installed.",
            details={"model": model_id, "missing": "torchvision"},
        )


class QwenImageEditing(DiffusersPipeline):
    """The edit models: their repositories carry a ``processor`` that needs torchvision."""

    def _load(self, config: dict[str, Any]) -> Any:
        require_processor_support(self.spec.id)
        return super()._load(config)


@_qwen(
    "qwen-image-edit",
    "edit",
    "Qwen/Qwen-Image-Edit",
    size=1024,
    summary="Qwen-Image-Edit: instruction-based image editing.",
)
class QwenImageEdit(QwenImageEditing):
    pipeline_classes = {"edit": "QwenImageEditPipeline"}


@_qwen(
    "qwen-image-edit-plus",
    "edit",
    "Qwen/Qwen-Image-Edit-2509",
    size=1024,
    summary="Qwen-Image-Edit 2509: instruction-based image editing.",
)
class QwenImageEditPlus(QwenImageEditing):
    pipeline_classes = {"edit": "QwenImageEditPlusPipeline"}
