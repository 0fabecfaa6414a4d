"""Tiny random-weight HunyuanVideo 1.5 checkpoints for `omnirt make-tiny`.

This module owns the component configs and the builders of two ids, each in the layout of its real
``hunyuanvideo-community/HunyuanVideo-1.5-480p_*`` repository: a Qwen2.5-VL text model (``text_encoder``, read
three hidden states from the end), a ByT5 encoder for quoted glyph text (``text_encoder_2``), the HunyuanVideo 1.5
VAE, the transformer, a flow-matching Euler scheduler and a classifier-free-guidance ``guider``.

* ``hunyuan-video-1.5-t2v``: ``HunyuanVideo15Pipeline``;
* ``hunyuan-video-1.5-i2v``: ``HunyuanVideo15ImageToVideoPipeline``, which also holds a SigLIP ``image_encoder``
  and its ``feature_extractor``.

The transformer takes ``2 * latent_channels + 1`` input channels (noisy latent, conditioning latent, mask) in both.
The pipelines drop the first 108 tokens of their chat-formatted prompt; with the one-token-per-byte tiny tokenizer
that cuts inside the system message, which is harmless.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omnirt.models.qwen_image import tiny as qwen_image_tiny
from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_components import TINY_T5_CONFIG

MODEL_IDS = ("hunyuan-video-1.5-t2v", "hunyuan-video-1.5-i2v")

# Spatial factor 4 and temporal factor 2 (the real VAE: 16 and 4), 4 latent channels.
VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": (16, 16),
    "layers_per_block": 1,
    "spatial_compression_ratio": 4,
    "temporal_compression_ratio": 2,
    "downsample_match_channel": False,
    "upsample_match_channel": False,
}

# The Qwen2.5-VL text model of the tiny Qwen-Image, with three layers: the pipeline reads hidden_states[-3].
TEXT_ENCODER: dict[str, Any] = {**qwen_image_tiny.TEXT_ENCODER_CONFIG["text_config"], "num_hidden_layers": 3}

# ByT5 is a T5 encoder over bytes: 3 specials, 256 bytes and 125 extra ids fit the shared tiny T5's vocabulary.
TEXT_ENCODER_2: dict[str, Any] = TINY_T5_CONFIG

# A SigLIP vision tower; its hidden size is the transformer's image_embed_dim.
IMAGE_ENCODER: dict[str, Any] = {
    "hidden_size": 12,
    "intermediate_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
}
FEATURE_EXTRACTOR: dict[str, Any] = {"size": {"height": 32, "width": 32}}

# in_channels = 2 x 4 latent channels + 1 mask channel; text_embed_dim is the Qwen hidden size, text_embed_2_dim the
# ByT5 d_model; rope_axes_dim sums to the head dim. target_size is the resolution (in pixels) the image-to-video
# buckets are built around: 32 makes a square input image a 32x32 video.
TRANSFORMER: dict[str, Any] = {
    "in_channels": 9,
    "out_channels": 4,
    "num_attention_heads": 2,
    "attention_head_dim": 8,
    "num_layers": 1,
    "num_refiner_layers": 1,
    "mlp_ratio": 2.0,
    "patch_size": 1,
    "patch_size_t": 1,
    "text_embed_dim": 16,
    "text_embed_2_dim": 32,
    "image_embed_dim": 12,
    "rope_axes_dim": (2, 2, 4),
    "target_size": 32,
}

SCHEDULER: dict[str, Any] = {"shift": 7.0}
GUIDER: dict[str, Any] = {"guidance_scale": 6.0}

# A ChatML template like Qwen2.5-VL's, for the tiny Qwen2 tokenizer.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)

# num_frames of the form 2k + 1 with the tiny VAE's temporal factor of 2.
DEFAULT_CONFIG: dict[str, Any] = {"height": 32, "width": 32, "num_frames": 5, "fps": 8, "num_inference_steps": 2}


def _components(task_type: str) -> dict[str, Any]:
    from diffusers import AutoencoderKLHunyuanVideo15, FlowMatchEulerDiscreteScheduler, HunyuanVideo15Transformer3DModel
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import ByT5Tokenizer, Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel, T5Config, T5EncoderModel

    from omnirt.models.tiny_tokenizers import qwen2_tokenizer

    tokenizer = qwen2_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    return {
        "transformer": HunyuanVideo15Transformer3DModel(**TRANSFORMER, task_type=task_type).eval(),
        "vae": AutoencoderKLHunyuanVideo15(**VAE).eval(),
        "scheduler": FlowMatchEulerDiscreteScheduler(**SCHEDULER),
        "text_encoder": Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(**TEXT_ENCODER)).eval(),
        "tokenizer": tokenizer,
        "text_encoder_2": T5EncoderModel(T5Config(**TEXT_ENCODER_2)).eval(),
        "tokenizer_2": ByT5Tokenizer(),
        "guider": ClassifierFreeGuidance(**GUIDER),
    }


def _build_pipeline(model_id: str) -> Any:
    from diffusers import HunyuanVideo15ImageToVideoPipeline, HunyuanVideo15Pipeline
    from transformers import SiglipImageProcessorPil, SiglipVisionConfig, SiglipVisionModel

    if model_id == "hunyuan-video-1.5-t2v":
        return HunyuanVideo15Pipeline(**_components("t2v"))
    return HunyuanVideo15ImageToVideoPipeline(
        **_components("i2v"),
        image_encoder=SiglipVisionModel(SiglipVisionConfig(**IMAGE_ENCODER)).eval(),
        feature_extractor=SiglipImageProcessorPil(**FEATURE_EXTRACTOR),
    )


def _name_real_feature_extractor(target: Path) -> None:
    """Name ``SiglipImageProcessor`` in ``model_index.json`` as the real repository does (the PIL class stands in
    for it without torchvision, and transformers loads the real name as that class then)."""
    index_path = target / "model_index.json"
    index = json.loads(index_path.read_text())
    if index.get("feature_extractor") == ["transformers", "SiglipImageProcessorPil"]:
        index["feature_extractor"] = ["transformers", "SiglipImageProcessor"]
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of the HunyuanVideo 1.5 checkpoint ``model_id`` into ``target``."""
    if model_id not in MODEL_IDS:
        raise ValueError(f"no tiny HunyuanVideo 1.5 builder for {model_id!r}; known: {list(MODEL_IDS)}")
    target = Path(target)
    seed_everything(0)
    pipe = _build_pipeline(model_id)
    save_tiny_pipeline(pipe, target, model_id=model_id, default_config=dict(DEFAULT_CONFIG))
    _name_real_feature_extractor(target)
    return target
