"""Tiny random-weight Helios checkpoint (`helios-t2v`, `helios-i2v`) for `omnirt make-tiny`.

This module owns the component configs and the builder. The folder has the layout of ``BestWishYsh/Helios-Base``:
a ``HeliosPipeline`` with a UMT5 text encoder, the Wan VAE, the Helios transformer (multi-term memory patches for
the history chunks) and the Helios scheduler. Text and image to video share the folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.tiny_common import build_seeded_tiny
from omnirt.models.wan import tiny as wan_tiny

MODEL_IDS = ("helios-t2v", "helios-i2v")

# The tiny Wan DiT with Helios's RoPE (rope_dim sums to the head dim) and history settings.
TRANSFORMER: dict[str, Any] = {
    **wan_tiny.DIT,
    "rope_dim": (4, 4, 4),
    "has_multi_term_memory_patch": True,
    "guidance_cross_attn": True,
    "zero_history_timestep": True,
    "is_amplify_history": False,
}

# One denoising stage over the whole schedule (the pyramid checkpoints use several).
SCHEDULER: dict[str, Any] = {"stage_range": [0, 1], "stages": 1, "use_dynamic_shifting": True}

# One chunk: 9 latent frames are 33 video frames with the Wan VAE's temporal factor of 4.
DEFAULT_CONFIG: dict[str, Any] = {"height": 32, "width": 32, "num_frames": 33, "fps": 8, "num_inference_steps": 2}


def _build_pipeline() -> Any:
    from diffusers import AutoencoderKLWan, HeliosPipeline, HeliosScheduler, HeliosTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    from omnirt.models.tiny_tokenizers import t5_tokenizer

    return HeliosPipeline(
        tokenizer=t5_tokenizer(),
        text_encoder=UMT5EncoderModel(UMT5Config(**wan_tiny.TEXT_ENCODER)).eval(),
        vae=AutoencoderKLWan(**wan_tiny.VAE),
        transformer=HeliosTransformer3DModel(**TRANSFORMER),
        scheduler=HeliosScheduler(**SCHEDULER),
    )


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of the Helios checkpoint ``model_id`` into ``target``."""
    builders = dict.fromkeys(MODEL_IDS, _build_pipeline)
    return build_seeded_tiny(model_id, target, family="Helios", builders=builders, default_config=DEFAULT_CONFIG)
