"""Tiny random-weight Helios checkpoint (`helios-t2v`, `helios-i2v`) for `omnirt make-tiny`.

This module owns the component configs and the builder. The folder has the layout of ``BestWishYsh/Helios-Base``:
a ``HeliosPipeline`` with a UMT5 text encoder, the Wan VAE, the Helios transformer (multi-term memory patches for
the history chunks) and the Helios scheduler. Text and image to video share the folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.wan import tiny as wan_tiny

MODEL_IDS = ("helios-t2v", "helios-i2v")

# text_dim is the text encoder's d_model; rope_dim sums to the head dim.
TRANSFORMER: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 12,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 32,
    "freq_dim": 256,
    "ffn_dim": 32,
    "num_layers": 2,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
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
    if model_id not in MODEL_IDS:
        raise ValueError(f"no tiny Helios builder for {model_id!r}; known: {list(MODEL_IDS)}")
    target = Path(target)
    seed_everything(0)
    pipe = _build_pipeline()
    save_tiny_pipeline(pipe, target, model_id=model_id, default_config=dict(DEFAULT_CONFIG))
    return target
