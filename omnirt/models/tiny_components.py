"""Tiny component configs shared by several families' builders.

Each family's ``tiny.py`` still owns its components; what is here is only what several of them build the same way
(a toy CLIP text encoder, a toy T5 encoder, a two-block KL VAE, ...). A family that differs by a key or two derives
its own dict, e.g. ``{**TINY_CLIP_TEXT_CONFIG, "hidden_act": "gelu"}``, so that the difference stays visible where
the family is built. Changing a value here changes every tiny folder that uses it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# CLIP text encoder (``CLIPTextConfig``) at toy width. Ids match ``tiny_tokenizers.clip_tokenizer``:
# <|startoftext|>=0, <|endoftext|>=1 (also the pad), 514 ids in all. Two layers, so that pipelines reading the
# penultimate hidden state work. The real CLIP ViT-L uses ``quick_gelu``; OpenCLIP encoders derive ``gelu``.
TINY_CLIP_TEXT_CONFIG: dict[str, Any] = {
    "vocab_size": 1000,
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "pad_token_id": 1,
}

# T5 encoder (``T5Config``, or ``UMT5Config`` for Wan) at toy width, with the default ``relu`` feed-forward. Ids
# match ``tiny_tokenizers.t5_tokenizer``: <pad>=0, </s>=1, <unk>=2. T5-XXL v1.1 users derive ``gated-gelu``.
TINY_T5_CONFIG: dict[str, Any] = {
    "vocab_size": 1000,
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 37,
    "num_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "dropout_rate": 0.0,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}

# Image KL VAE (``AutoencoderKL`` and relatives) with two blocks: it downsamples 2x instead of the real 8x. Families
# add their own ``scaling_factor`` / ``shift_factor`` and quant-conv settings, as their real checkpoints differ.
TINY_KL_VAE_CONFIG: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
    "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
    "block_out_channels": (4, 8),
    "layers_per_block": 1,
    "norm_num_groups": 2,
    "latent_channels": 4,
}

# Flow-matching Euler scheduler with resolution-dependent shift, as FLUX.1 dev and FLUX.2 ship it.
TINY_FLUX_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
    "base_shift": 0.5,
    "max_shift": 1.15,
}

# CLIP image processor: the pipelines feed their CLIP vision encoders 224x224 images.
TINY_CLIP_IMAGE_PROCESSOR_CONFIG: dict[str, Any] = {
    "size": {"shortest_edge": 224},
    "crop_size": {"height": 224, "width": 224},
}


def name_real_image_processor(target: Path, component: str, processor: str = "CLIPImageProcessor") -> None:
    """Name ``processor`` (e.g. ``CLIPImageProcessor``) for ``component`` in ``model_index.json``, as the real
    repository does.

    Without torchvision the processor is built as ``CLIPImageProcessorPil``; transformers loads the real name
    as that class when torchvision is missing, and as the torchvision-backed class where it is installed.
    """
    index_path = Path(target) / "model_index.json"
    index = json.loads(index_path.read_text())
    if index.get(component) == ["transformers", f"{processor}Pil"]:
        index[component] = ["transformers", processor]
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
