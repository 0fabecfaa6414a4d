"""Tiny random-weight LTX-2 checkpoint (`ltx2-i2v`) for `omnirt make-tiny`.

This module owns the component configs and the builder. The folder has the layout of ``Lightricks/LTX-2``: an
``LTX2ImageToVideoPipeline`` with a Gemma 3 text encoder (every hidden state, stacked), the text ``connectors`` that
turn them into video and audio context, the LTX-2 video VAE, the audio VAE and vocoder, the audio-video transformer
and a flow-matching Euler scheduler with resolution-dependent shift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.ltx_video import tiny as ltx_video_tiny
from omnirt.models.tiny_common import build_seeded_tiny

MODEL_IDS = ("ltx2-i2v",)

# Gemma 3 with a SigLIP tower, as the real gemma-3-12b; ids match tiny_tokenizers.gemma_tokenizer (355 ids), the
# image token ids sit just above them.
TEXT_HIDDEN_SIZE = 32
TEXT_LAYERS = 2
TEXT_ENCODER: dict[str, Any] = {
    "text_config": {
        "vocab_size": 384,
        "hidden_size": TEXT_HIDDEN_SIZE,
        "intermediate_size": 32,
        "num_hidden_layers": TEXT_LAYERS,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 8,
        "sliding_window": 16,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "bos_token_id": 2,
    },
    "vision_config": {
        "hidden_size": 8,
        "intermediate_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    },
    "mm_tokens_per_image": 4,
    "boi_token_index": 355,
    "eoi_token_index": 356,
    "image_token_index": 357,
}

# caption_channels is the Gemma hidden size, which the connectors keep (heads x head dim); they read every hidden
# state (the layers and the embeddings).
CONNECTORS: dict[str, Any] = {
    "caption_channels": TEXT_HIDDEN_SIZE,
    "text_proj_in_factor": TEXT_LAYERS + 1,
    "video_connector_num_attention_heads": 4,
    "video_connector_attention_head_dim": 8,
    "video_connector_num_layers": 1,
    "video_connector_num_learnable_registers": None,
    "audio_connector_num_attention_heads": 4,
    "audio_connector_attention_head_dim": 8,
    "audio_connector_num_layers": 1,
    "audio_connector_num_learnable_registers": None,
    "connector_rope_base_seq_len": 32,
    "rope_theta": 10000.0,
    "rope_double_precision": False,
    "causal_temporal_positioning": False,
    "rope_type": "split",
}

TRANSFORMER: dict[str, Any] = {
    "in_channels": 4,
    "out_channels": 4,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 2,
    "attention_head_dim": 8,
    "cross_attention_dim": 16,
    "audio_in_channels": 4,
    "audio_out_channels": 4,
    "audio_num_attention_heads": 2,
    "audio_attention_head_dim": 4,
    "audio_cross_attention_dim": 8,
    "num_layers": 2,
    "qk_norm": "rms_norm_across_heads",
    "caption_channels": TEXT_HIDDEN_SIZE,
    "rope_double_precision": False,
    "rope_type": "split",
}

# One scaling block: spatial factor 2 and temporal factor 2 (the real VAE: 32 and 8), 4 latent channels.
VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": (8,),
    "decoder_block_out_channels": (8,),
    "layers_per_block": (1,),
    "decoder_layers_per_block": (1, 1),
    "spatio_temporal_scaling": (True,),
    "decoder_spatio_temporal_scaling": (True,),
    "decoder_inject_noise": (False, False),
    "downsample_type": ("spatial",),
    "upsample_residual": (False,),
    "upsample_factor": (1,),
    "timestep_conditioning": False,
    "patch_size": 1,
    "patch_size_t": 1,
    "encoder_causal": True,
    "decoder_causal": False,
}

AUDIO_VAE: dict[str, Any] = {
    "base_channels": 4,
    "output_channels": 2,
    "ch_mult": (1,),
    "num_res_blocks": 1,
    "attn_resolutions": None,
    "in_channels": 2,
    "resolution": 32,
    "latent_channels": 2,
    "norm_type": "pixel",
    "causality_axis": "height",
    "dropout": 0.0,
    "mid_block_add_attention": False,
    "sample_rate": 16000,
    "mel_hop_length": 160,
    "is_causal": True,
    "mel_bins": 8,
}

# in_channels is the audio VAE's output channels x mel bins.
VOCODER: dict[str, Any] = {
    "in_channels": 2 * 8,
    "hidden_channels": 32,
    "out_channels": 2,
    "upsample_kernel_sizes": [4, 4],
    "upsample_factors": [2, 2],
    "resnet_kernel_sizes": [3],
    "resnet_dilations": [[1, 3, 5]],
    "leaky_relu_negative_slope": 0.1,
    "output_sampling_rate": 16000,
}

SCHEDULER: dict[str, Any] = ltx_video_tiny.SCHEDULER

# height and width must be multiples of 32; num_frames of the form 8k + 1 on the real VAE.
DEFAULT_CONFIG: dict[str, Any] = {
    "height": 32,
    "width": 32,
    "num_frames": 5,
    "fps": 25,
    "num_inference_steps": 2,
    "max_sequence_length": 64,
}


def _build_pipeline() -> Any:
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2ImageToVideoPipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    from omnirt.models.tiny_tokenizers import gemma_tokenizer

    vae = AutoencoderKLLTX2Video(**VAE)
    return LTX2ImageToVideoPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER),
        vae=vae,
        audio_vae=AutoencoderKLLTX2Audio(**AUDIO_VAE),
        text_encoder=Gemma3ForConditionalGeneration(Gemma3Config(**TEXT_ENCODER)).eval(),
        tokenizer=gemma_tokenizer(),
        connectors=LTX2TextConnectors(**CONNECTORS),
        transformer=LTX2VideoTransformer3DModel(**TRANSFORMER),
        vocoder=LTX2Vocoder(**VOCODER),
    )


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of the LTX-2 checkpoint ``model_id`` into ``target``."""
    builders = dict.fromkeys(MODEL_IDS, _build_pipeline)
    return build_seeded_tiny(model_id, target, family="LTX-2", builders=builders, default_config=DEFAULT_CONFIG)
