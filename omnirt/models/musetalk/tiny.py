"""Tiny random-weight MuseTalk 1.5, for ``omnirt make-tiny`` and the tests.

This module owns the tiny copy of ``musetalk-1.5``: upstream's ``models/`` layout under the real file names, with
toy widths, loaded by the same code as the real folder (:func:`omnirt.models.musetalk.components.load_components`):

* ``musetalkV15/musetalk.json`` + ``unet.pth``: the real ``UNet2DConditionModel`` block types and settings (8 input
  channels, 4 output, 32 norm groups, latent size 32) at ``block_out_channels`` ``[32, 64, 64, 64]`` with one layer
  per block and two attention heads (the real 8 heads make the tiny UNet's attention over the 1024 latent positions
  twice as slow on a CPU), saved as a plain ``torch.save(state_dict)`` like upstream;
* ``sd-vae/``: an ``AutoencoderKL`` with 4 latent channels and four levels (three 2x downsamples: 256 px to 32), so
  the latents have the real 4x32x32 shape; saved with ``save_pretrained`` (safetensors);
* ``whisper/``: a ``WhisperModel`` with whisper-tiny's 4 encoder layers (so it gives the 5 hidden states MuseTalk
  stacks), 80 mel bins and 1500 positions (30 s), at d_model 16, plus the ``WhisperFeatureExtractor``;
* ``omnirt.json`` with the folder's defaults.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omnirt.models.tiny_common import seed_everything
from omnirt.models.whisper.tiny import WHISPER_CONFIG
from omnirt.runtime.weights import write_folder_defaults

#: The tiny Whisper encoder's width; the UNet's ``cross_attention_dim`` follows it.
TINY_WHISPER_WIDTH = 16

# whisper-small's tiny front end (the Whisper family's), with the 4 encoder layers MuseTalk's 5 hidden states need.
TINY_WHISPER_CONFIG: dict[str, Any] = {
    **WHISPER_CONFIG,
    "d_model": TINY_WHISPER_WIDTH,
    "encoder_layers": 4,
    "max_target_positions": 16,
    "vocab_size": 16,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 1,
    "decoder_start_token_id": 2,
}

TINY_UNET_CONFIG: dict[str, Any] = {
    "_class_name": "UNet2DConditionModel",
    "act_fn": "silu",
    "attention_head_dim": 2,
    "block_out_channels": [32, 64, 64, 64],
    "center_input_sample": False,
    "cross_attention_dim": TINY_WHISPER_WIDTH,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 8,
    "layers_per_block": 1,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 32,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}

TINY_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [8, 16, 16, 16],
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "latent_channels": 4,
    "sample_size": 256,
    "scaling_factor": 0.18215,
}

DEFAULT_CONFIG: dict[str, Any] = {}


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` (``musetalk-1.5``) into ``target`` and return ``target``."""
    if model_id != "musetalk-1.5":
        raise ValueError(f"no tiny MuseTalk builder for {model_id!r}; known: ['musetalk-1.5']")
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    from omnirt.models.diffusers_pipeline import import_diffusers

    import_diffusers()  # quiets the libraries' progress bars
    target = Path(target)
    seed_everything(0)

    unet_folder = target / "musetalkV15"
    unet_folder.mkdir(parents=True, exist_ok=True)
    (unet_folder / "musetalk.json").write_text(json.dumps(TINY_UNET_CONFIG, indent=2) + "\n")
    unet = UNet2DConditionModel.from_config(TINY_UNET_CONFIG)
    torch.save(unet.state_dict(), unet_folder / "unet.pth")

    AutoencoderKL(**TINY_VAE_CONFIG).save_pretrained(target / "sd-vae", safe_serialization=True)

    whisper_folder = target / "whisper"
    WhisperModel(WhisperConfig(**TINY_WHISPER_CONFIG)).save_pretrained(whisper_folder, safe_serialization=True)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(whisper_folder)

    write_folder_defaults(target, model_id=model_id, default_config=dict(DEFAULT_CONFIG), tiny=True)
    return target
