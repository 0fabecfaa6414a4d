"""Tiny random-weight Kandinsky 5.0 video checkpoints for `omnirt make-tiny`.

This module owns the component configs and the builders of two ids, each in the layout of its real
``kandinskylab/Kandinsky-5.0-*-Diffusers`` repository: a Qwen2.5-VL ``text_encoder`` (last hidden state), a CLIP
``text_encoder_2`` (pooled), the HunyuanVideo VAE, the Kandinsky 5 transformer and a flow-matching Euler scheduler.

* ``kandinsky5-t2v``: ``Kandinsky5T2VPipeline``;
* ``kandinsky5-i2v``: ``Kandinsky5I2VPipeline``, whose transformer takes ``visual_cond``: the noisy latent, the
  first frame's latent and a mask (``2 * in_visual_dim + 1`` channels).

The real ``tokenizer`` folder holds a ``Qwen2VLProcessor``; its video processor needs torchvision, which a CPU-only
torch lacks, so the tiny folder holds the Qwen2 tokenizer alone (the pipelines only pass it text).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.hunyuan_video import tiny as hunyuan_tiny
from omnirt.models.qwen_image import tiny as qwen_image_tiny
from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_components import TINY_CLIP_TEXT_CONFIG

# The HunyuanVideo VAE at toy width: spatial factor 8, temporal factor 4, 4 latent channels.
VAE: dict[str, Any] = hunyuan_tiny.VAE

# Qwen2.5-VL, hidden size 16, with the ids of the tiny Qwen2 tokenizer.
TEXT_ENCODER: dict[str, Any] = qwen_image_tiny.TEXT_ENCODER_CONFIG

# The shared tiny CLIP text encoder with gelu, as OpenCLIP-style encoders use.
TEXT_ENCODER_2: dict[str, Any] = {**TINY_CLIP_TEXT_CONFIG, "hidden_act": "gelu", "projection_dim": 32}

# in_visual_dim is the VAE's latent channels; in_text_dim the Qwen hidden size; in_text_dim2 the CLIP hidden size.
TRANSFORMER_T2V: dict[str, Any] = {
    "in_visual_dim": 4,
    "in_text_dim": 16,
    "in_text_dim2": 32,
    "time_dim": 32,
    "out_visual_dim": 4,
    "patch_size": (1, 2, 2),
    "model_dim": 48,
    "ff_dim": 128,
    "num_text_blocks": 1,
    "num_visual_blocks": 1,
    "axes_dims": (8, 8, 8),
    "visual_cond": False,
}
TRANSFORMER_I2V: dict[str, Any] = {**TRANSFORMER_T2V, "visual_cond": True}

SCHEDULER: dict[str, Any] = {"shift": 7.0}

# The pipelines drop the first 128 tokens of their ~640-character system prompt; the tiny tokenizer spends one token
# per character, so the prompt itself starts near token 640. 640 tokens keep it (the real default is 512 tokens of
# a real tokenizer). height and width must be multiples of 16; num_frames of the form 4k + 1.
DEFAULT_CONFIG: dict[str, Any] = {
    "height": 32,
    "width": 32,
    "num_frames": 5,
    "fps": 8,
    "num_inference_steps": 2,
    "max_sequence_length": 640,
}

# The I2V pipeline renormalises the first 4 latent frames against the frames after them: it needs 5 or more latent
# frames (17 video frames), else the statistics of an empty slice make the video NaN.
I2V_DEFAULT_CONFIG: dict[str, Any] = {**DEFAULT_CONFIG, "num_frames": 17}


def _build_pipeline(model_id: str) -> Any:
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        Kandinsky5I2VPipeline,
        Kandinsky5T2VPipeline,
        Kandinsky5Transformer3DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from omnirt.models.tiny_tokenizers import clip_tokenizer, qwen2_tokenizer

    pipeline_cls, transformer = {
        "kandinsky5-t2v": (Kandinsky5T2VPipeline, TRANSFORMER_T2V),
        "kandinsky5-i2v": (Kandinsky5I2VPipeline, TRANSFORMER_I2V),
    }[model_id]
    return pipeline_cls(
        transformer=Kandinsky5Transformer3DModel(**transformer).eval(),
        vae=AutoencoderKLHunyuanVideo(**VAE).eval(),
        text_encoder=Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**TEXT_ENCODER)).eval(),
        tokenizer=qwen2_tokenizer(),
        text_encoder_2=CLIPTextModel(CLIPTextConfig(**TEXT_ENCODER_2)).eval(),
        tokenizer_2=clip_tokenizer(),
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER),
    )


MODEL_IDS = ("kandinsky5-t2v", "kandinsky5-i2v")


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of the Kandinsky 5.0 checkpoint ``model_id`` into ``target``."""
    if model_id not in MODEL_IDS:
        raise ValueError(f"no tiny Kandinsky 5.0 builder for {model_id!r}; known: {list(MODEL_IDS)}")
    target = Path(target)
    seed_everything(0)
    pipe = _build_pipeline(model_id)
    defaults = I2V_DEFAULT_CONFIG if model_id == "kandinsky5-i2v" else DEFAULT_CONFIG
    save_tiny_pipeline(pipe, target, model_id=model_id, default_config=dict(defaults))
    return target
