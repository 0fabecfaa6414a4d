"""Tiny random-weight copies of the experimental image DiTs, for `omnirt make-tiny` and the tests.

Each builder saves its pipeline in the layout of the real repository (see ``pipeline.py`` for the hub ids), with
the shared toy encoders, tokenizers and VAEs where the real models share them:

* ``bria-3.2``: a FLUX-like MMDiT without pooled projection, a T5 encoder, a KL VAE. ``in_channels`` is
  ``4 * latent_channels`` (2x2 packed latents); the RoPE axes add up to ``attention_head_dim``.
* ``ovis-image``: a FLUX-like MMDiT over a Qwen3 text encoder's last hidden state (``joint_attention_dim`` = its
  hidden size). The prompt goes through the tokenizer's chat template, so the tiny Qwen tokenizer gets a Qwen3-style
  template. The pipeline drops the first 28 template tokens.
* ``hidream-i1``: a sparse-MoE DiT fed by two CLIP encoders (pooled, ``text_emb_dim`` = the sum of their projection
  dims), a T5 encoder and a Llama decoder whose hidden states ``llama_layers`` pick (``caption_channels`` = T5
  ``d_model``, Llama hidden size). The pipeline renders at ``(128 * vae_scale_factor) ** 2`` pixels whatever the
  requested size, so the tiny VAE has one block (no downsampling) and the tiny default is 128x128.
* ``lumina-t2x``: a Next-DiT over a Gemma encoder's penultimate hidden state (``cross_attention_dim`` = its hidden
  size). The pipeline assumes an 8x VAE, so the tiny VAE keeps four blocks (of four channels).
* ``pixart-sigma``: a DiT with adaLN-single over a T5 encoder (``caption_channels`` = its ``d_model``), the
  two-block KL VAE with SDXL's scaling and DPM-Solver++. ``out_channels`` is twice ``latent_channels``: the model
  also predicts the variance, which the pipeline drops. VAE factor 2 and 2x2 patches: sizes are multiples of 4.
* ``sana-1.6b``: a linear-attention DiT (patch size 1) over a Gemma 2 encoder's last hidden state
  (``caption_channels`` = its hidden size), a deep-compression autoencoder with one ResBlock and one EfficientViT
  stage (2x instead of the real 32x) and DPM-Solver++ on flow-matching sigmas, as the real repository ships it. The
  pipeline prepends its "complex human instruction" to every prompt: about 1,700 tokens with the one-byte-per-token
  tiny vocabulary, which the one-layer encoder reads in well under a second.

  For both, ``sample_size`` picks the aspect-ratio bins the pipeline snaps to when ``use_resolution_binning`` is
  on; the tiny folders turn binning off, so the 32x32 default renders at 32x32.
* ``hunyuan-image-2.1``: a dual-stream DiT with a token refiner, a Qwen2.5-VL encoder (the Qwen-Image tiny one), a
  ByT5 glyph encoder, the HunyuanImage VAE (its resnets use 32 norm groups, hence 32 channels) and the two guiders.
  The pipeline pads prompts to 1000 tokens; that length is fixed by the library.
* ``glm-image``: an autoregressive GLM-Image model (``vision_language_encoder``) samples image-code tokens, a
  small preview grid then the target grid at 1/32 of the image size, which the DiT upsamples 2x and follows; a ByT5
  ``tokenizer`` and T5 ``text_encoder`` embed glyph text. The ``processor`` (image processor, tokenizer, chat
  template) lays out the prompt as ``{text}<sop>{h} {w}<eop><sop>{preview h} {preview w}<eop>{bos}``. The tiny
  tokenizer keeps the real id scheme: ids ``0..CODES-1`` are the image codes (``<|dit_token_i|>``), ``CODES`` the
  image start (the tokenizer's bos), ``CODES + 1`` the image end, then byte-level text and the specials. The AR head
  only predicts codes, so sampling never ends early. The preview grid is 16x16 whatever the size, so every call
  samples at least 257 tokens; the VAE has four blocks because the pipeline ties ``patch_size x VAE factor`` to 16.
* ``chronoedit``: the tiny Wan 2.1 image-to-video components (UMT5, CLIP vision, Wan VAE, transformer with image
  key/value projections), with ChronoEdit's transformer class and a flow-matching Euler scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omnirt.models.qwen_image.tiny import TEXT_ENCODER_CONFIG as QWEN25_VL_TEXT_ENCODER
from omnirt.models.qwen_image.tiny import TEXT_HIDDEN_SIZE as QWEN25_VL_HIDDEN_SIZE
from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_components import (
    TINY_CLIP_TEXT_CONFIG,
    TINY_FLUX_SCHEDULER_CONFIG,
    TINY_KL_VAE_CONFIG,
    TINY_T5_CONFIG,
    name_real_image_processor,
)
from omnirt.models.tiny_tokenizers import (
    byte_level_alphabet,
    clip_tokenizer,
    gemma_tokenizer,
    llama_tokenizer,
    qwen2_tokenizer,
    t5_tokenizer,
)
from omnirt.models.wan import tiny as wan_tiny

# ---------------------------------------------------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------------------------------------------------

_LATENT_CHANNELS: int = TINY_KL_VAE_CONFIG["latent_channels"]
_T5_WIDTH: int = TINY_T5_CONFIG["d_model"]

BRIA_TRANSFORMER: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 4 * _LATENT_CHANNELS,
    "num_layers": 1,
    "num_single_layers": 1,
    "attention_head_dim": 8,
    "num_attention_heads": 2,
    "joint_attention_dim": _T5_WIDTH,
    "pooled_projection_dim": None,
    "axes_dims_rope": [0, 4, 4],
}

# A FLUX.1-style KL VAE (no quant convs, FLUX.1's latent shift and scaling) at toy width: BRIA, Ovis-Image, HiDream.
FLUX_VAE: dict[str, Any] = {
    **TINY_KL_VAE_CONFIG,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "shift_factor": 0.1159,
    "scaling_factor": 0.3611,
}

QWEN3_TEXT_ENCODER: dict[str, Any] = {
    "vocab_size": 512,  # the tiny Qwen tokenizer's ids end at 262
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "max_position_embeddings": 512,
    "bos_token_id": 256,  # <|endoftext|>
    "eos_token_id": 258,  # <|im_end|>
    "pad_token_id": 256,
}

OVIS_TRANSFORMER: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 4 * _LATENT_CHANNELS,
    "out_channels": 4 * _LATENT_CHANNELS,
    "num_layers": 1,
    "num_single_layers": 1,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": QWEN3_TEXT_ENCODER["hidden_size"],
    "axes_dims_rope": (4, 4, 8),
}

# Qwen3's chat template as far as a single user turn with thinking switched off goes.
QWEN3_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)

# Long-context CLIP encoders: HiDream pads CLIP prompts to max_sequence_length (128 by default).
HIDREAM_CLIP: dict[str, Any] = {**TINY_CLIP_TEXT_CONFIG, "projection_dim": 32, "max_position_embeddings": 128}

HIDREAM_LLAMA: dict[str, Any] = {
    "vocab_size": 512,  # the tiny Llama tokenizer's ids end at 353
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
}

HIDREAM_TRANSFORMER: dict[str, Any] = {
    "patch_size": 2,
    "in_channels": _LATENT_CHANNELS,
    "out_channels": _LATENT_CHANNELS,
    "num_layers": 1,
    "num_single_layers": 1,
    "attention_head_dim": 8,
    "num_attention_heads": 2,
    "caption_channels": [_T5_WIDTH, HIDREAM_LLAMA["hidden_size"]],
    "text_emb_dim": 2 * HIDREAM_CLIP["projection_dim"],
    "num_routed_experts": 4,
    "num_activated_experts": 2,
    "axes_dims_rope": (4, 2, 2),
    "max_resolution": (128, 128),
    "llama_layers": (0, 1),
}

# One block: no downsampling, so the fixed 128x128-latent area is 128x128 pixels.
HIDREAM_VAE: dict[str, Any] = {
    **FLUX_VAE,
    "down_block_types": ("DownEncoderBlock2D",),
    "up_block_types": ("UpDecoderBlock2D",),
    "block_out_channels": (4,),
}

GEMMA_TEXT_ENCODER: dict[str, Any] = {
    "vocab_size": 512,  # the tiny Gemma tokenizer's ids end at 356
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 8,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
}

LUMINA_TRANSFORMER: dict[str, Any] = {
    "sample_size": 16,
    "patch_size": 2,
    "in_channels": _LATENT_CHANNELS,
    "hidden_size": 32,
    "num_layers": 2,
    "num_attention_heads": 2,
    "num_kv_heads": 1,
    "multiple_of": 16,
    "ffn_dim_multiplier": None,
    "norm_eps": 1e-5,
    "learn_sigma": True,
    "qk_norm": True,
    "cross_attention_dim": GEMMA_TEXT_ENCODER["hidden_size"],
    "scaling_factor": 1.0,
}

# SDXL's VAE scaling; four blocks for the 8x factor the pipeline assumes.
LUMINA_VAE: dict[str, Any] = {
    **TINY_KL_VAE_CONFIG,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (4, 4, 4, 4),
    "scaling_factor": 0.13025,
}

HUNYUAN_BYT5: dict[str, Any] = {
    **TINY_T5_CONFIG,
    "vocab_size": 384,  # ByT5: 3 specials, 256 bytes, 125 extra ids
    "feed_forward_proj": "gated-gelu",
}

HUNYUAN_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": (32, 32, 32),
    "layers_per_block": 1,
    "scaling_factor": 0.476986,
    "spatial_compression_ratio": 4,  # two downsamples
    "sample_size": 128,
}

HUNYUAN_TRANSFORMER: dict[str, Any] = {
    "in_channels": HUNYUAN_VAE["latent_channels"],
    "out_channels": HUNYUAN_VAE["latent_channels"],
    "num_attention_heads": 4,
    "attention_head_dim": 8,
    "num_layers": 1,
    "num_single_layers": 1,
    "num_refiner_layers": 1,
    "patch_size": (1, 1),
    "guidance_embeds": False,  # the base model; the distilled one embeds distilled_guidance_scale
    "text_embed_dim": QWEN25_VL_HIDDEN_SIZE,
    "text_embed_2_dim": HUNYUAN_BYT5["d_model"],
    "rope_axes_dim": (4, 4),
}


GLM_CODES = 128  # image codebook size (16384 on the real model)
GLM_IMAGE_START = GLM_CODES  # <|dit_token_CODES|>: the tokenizer's bos
GLM_IMAGE_END = GLM_CODES + 1
GLM_SPECIAL_TOKENS = ("<|endoftext|>", "<|image|>", "<sop>", "<eop>")
# codes, image start/end, 256 byte-level characters, then the specials
GLM_SPECIAL_IDS = {token: GLM_IMAGE_END + 1 + 256 + index for index, token in enumerate(GLM_SPECIAL_TOKENS)}
GLM_TEXT_VOCAB = GLM_IMAGE_END + 1 + 256 + len(GLM_SPECIAL_TOKENS)

# The real template's layout: an input image is framed by image start/end around <|image|>, text is kept as is.
GLM_CHAT_TEMPLATE = (
    "{%- for message in messages -%}{%- if message.content is string -%}{{ message.content }}{%- else -%}"
    "{%- for item in message.content -%}{%- if item.type == 'image' -%}"
    f"<|dit_token_{GLM_IMAGE_START}|><|image|><|dit_token_{GLM_IMAGE_END}|>"
    "{%- elif item.type == 'text' -%}{{ item.text }}{%- endif -%}{%- endfor -%}{%- endif -%}{%- endfor -%}"
)

GLM_AR_MODEL: dict[str, Any] = {
    "text_config": {
        "vocab_size": GLM_TEXT_VOCAB,
        "hidden_size": 32,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "vision_vocab_size": GLM_CODES,  # the head predicts codes only
        "rope_parameters": {"mrope_section": (4, 2, 2)},
        "pad_token_id": GLM_SPECIAL_IDS["<|endoftext|>"],
        "eos_token_id": GLM_IMAGE_END,
    },
    "vision_config": {
        "depth": 1,
        "hidden_size": 32,
        "num_heads": 2,
        "image_size": 32,
        "patch_size": 8,
        "intermediate_size": 32,
    },
    "vq_config": {"embed_dim": 32, "num_embeddings": GLM_CODES, "latent_channels": 32},
    "image_token_id": GLM_SPECIAL_IDS["<|image|>"],
    "image_start_token_id": GLM_IMAGE_START,
    "image_end_token_id": GLM_IMAGE_END,
}

GLM_GLYPH_ENCODER: dict[str, Any] = {**TINY_T5_CONFIG, "vocab_size": 384}  # ByT5 ids

GLM_TRANSFORMER: dict[str, Any] = {
    "patch_size": 2,
    "in_channels": 4,
    "out_channels": 4,
    "num_layers": 1,
    "attention_head_dim": 8,
    "num_attention_heads": 2,
    "text_embed_dim": GLM_GLYPH_ENCODER["d_model"],
    "time_embed_dim": 16,
    "condition_dim": 8,
    "prior_vq_quantizer_codebook_size": GLM_CODES,
}

# 8x, so that patch_size (2) x VAE factor = 16: each upsampled code covers one 2x2 latent patch.
GLM_VAE: dict[str, Any] = {
    **TINY_KL_VAE_CONFIG,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (4, 4, 4, 4),
    "latents_mean": [0.0] * 4,
    "latents_std": [1.0] * 4,
}

# T5-XXL v1.1 encoder: the shared tiny T5 with its gated-gelu.
PIXART_TEXT_ENCODER: dict[str, Any] = {**TINY_T5_CONFIG, "feed_forward_proj": "gated-gelu"}

# The shared two-block KL VAE with SDXL's latent scaling (PixArt-Sigma uses the SDXL VAE).
PIXART_VAE: dict[str, Any] = {**TINY_KL_VAE_CONFIG, "scaling_factor": 0.13025}

PIXART_TRANSFORMER: dict[str, Any] = {
    "sample_size": 16,
    "patch_size": 2,
    "in_channels": _LATENT_CHANNELS,
    "out_channels": 2 * _LATENT_CHANNELS,  # noise and variance
    "num_layers": 2,
    "num_attention_heads": 2,
    "attention_head_dim": 8,
    "cross_attention_dim": 2 * 8,  # heads x head dim
    "caption_channels": PIXART_TEXT_ENCODER["d_model"],
    "norm_type": "ada_norm_single",
    "norm_elementwise_affine": False,
    "norm_eps": 1e-6,
    "use_additional_conditions": False,
    "interpolation_scale": 1,
}

PIXART_SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.0001,
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "algorithm_type": "dpmsolver++",
    "solver_order": 2,
    "prediction_type": "epsilon",
}

# Gemma 2 (2B-it in the real model). Ids match ``tiny_tokenizers.gemma_tokenizer``: <pad>=0, <eos>=1, <bos>=2.
SANA_TEXT_ENCODER: dict[str, Any] = {
    "vocab_size": 360,
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 4,
    "max_position_embeddings": 4096,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
}

# DC-AE with one ResBlock stage and one EfficientViT stage (multi-scale linear attention), as in the real f32c32
# autoencoder's shallow and deep stages.
SANA_VAE: dict[str, Any] = {
    "in_channels": 3,
    "latent_channels": 4,
    "attention_head_dim": 2,
    "encoder_block_types": ("ResBlock", "EfficientViTBlock"),
    "decoder_block_types": ("ResBlock", "EfficientViTBlock"),
    "encoder_block_out_channels": (8, 8),
    "decoder_block_out_channels": (8, 8),
    "encoder_qkv_multiscales": ((), (5,)),
    "decoder_qkv_multiscales": ((), (5,)),
    "encoder_layers_per_block": (1, 1),
    "decoder_layers_per_block": (1, 1),
    "downsample_block_type": "conv",
    "upsample_block_type": "interpolate",
    "decoder_norm_types": "rms_norm",
    "decoder_act_fns": "silu",
    "scaling_factor": 0.41407,
}

SANA_TRANSFORMER: dict[str, Any] = {
    "in_channels": SANA_VAE["latent_channels"],
    "out_channels": SANA_VAE["latent_channels"],
    "patch_size": 1,
    "sample_size": 16,
    "num_layers": 2,
    "num_attention_heads": 2,
    "attention_head_dim": 4,
    "num_cross_attention_heads": 2,
    "cross_attention_head_dim": 4,
    "cross_attention_dim": 2 * 4,  # heads x head dim
    "caption_channels": SANA_TEXT_ENCODER["hidden_size"],
    "mlp_ratio": 2.5,
}

# DPM-Solver++ over flow-matching sigmas with a fixed shift: the real repository's scheduler.
SANA_SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "algorithm_type": "dpmsolver++",
    "solver_order": 2,
    "prediction_type": "flow_prediction",
    "use_flow_sigmas": True,
    "flow_shift": 3.0,
}

CHRONOEDIT_SCHEDULER: dict[str, Any] = {"num_train_timesteps": 1000, "shift": 7.0}

DEFAULT_CONFIG: dict[str, Any] = {"height": 32, "width": 32, "num_inference_steps": 2}

DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
    "bria-3.2": {**DEFAULT_CONFIG, "max_sequence_length": 32},
    "ovis-image": {**DEFAULT_CONFIG, "max_sequence_length": 32},
    "hidream-i1": {"height": 128, "width": 128, "num_inference_steps": 2, "max_sequence_length": 32},
    "lumina-t2x": {**DEFAULT_CONFIG, "max_sequence_length": 32},
    "pixart-sigma": {**DEFAULT_CONFIG, "max_sequence_length": 32, "use_resolution_binning": False},
    "sana-1.6b": {**DEFAULT_CONFIG, "max_sequence_length": 32, "use_resolution_binning": False},
    "hunyuan-image-2.1": dict(DEFAULT_CONFIG),
    "chronoedit": dict(DEFAULT_CONFIG),  # and the real max_sequence_length, 512 (see the Wan 2.1 I2V transformer)
    "glm-image": dict(DEFAULT_CONFIG),
}


# ---------------------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------------------


def _t5_encoder(config: dict[str, Any]) -> Any:
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(**config)).eval()


def _glm_processor_tokenizer() -> Any:
    """GLM-Image's AR tokenizer: image codes and image start/end first, then byte-level text and the specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"<|dit_token_{index}|>": index for index in range(GLM_IMAGE_END + 1)}
    for char in byte_level_alphabet():
        vocab[char] = len(vocab)
    vocab.update(GLM_SPECIAL_IDS)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=f"<|dit_token_{GLM_IMAGE_START}|>",
        eos_token=f"<|dit_token_{GLM_IMAGE_END}|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<|image|>", "grid_bos_token": "<sop>", "grid_eos_token": "<eop>"},
    )


def _glm_image() -> Any:
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, GlmImagePipeline, GlmImageTransformer2DModel
    from transformers import (
        ByT5Tokenizer,
        GlmImageConfig,
        GlmImageForConditionalGeneration,
        GlmImageImageProcessorPil,
        GlmImageProcessor,
    )

    processor = GlmImageProcessor(
        image_processor=GlmImageImageProcessorPil(),
        tokenizer=_glm_processor_tokenizer(),
        chat_template=GLM_CHAT_TEMPLATE,
    )
    return GlmImagePipeline(
        tokenizer=ByT5Tokenizer(),
        processor=processor,
        text_encoder=_t5_encoder(GLM_GLYPH_ENCODER),
        vision_language_encoder=GlmImageForConditionalGeneration(GlmImageConfig(**GLM_AR_MODEL)).eval(),
        vae=AutoencoderKL(**GLM_VAE),
        transformer=GlmImageTransformer2DModel(**GLM_TRANSFORMER),
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )


def _bria() -> Any:
    from diffusers import AutoencoderKL, BriaPipeline, BriaTransformer2DModel, FlowMatchEulerDiscreteScheduler

    return BriaPipeline(
        transformer=BriaTransformer2DModel(**BRIA_TRANSFORMER),
        scheduler=FlowMatchEulerDiscreteScheduler(**TINY_FLUX_SCHEDULER_CONFIG),
        vae=AutoencoderKL(**FLUX_VAE),
        text_encoder=_t5_encoder(TINY_T5_CONFIG),
        tokenizer=t5_tokenizer(),
    )


def _ovis() -> Any:
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, OvisImagePipeline, OvisImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    tokenizer = qwen2_tokenizer()
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    return OvisImagePipeline(
        transformer=OvisImageTransformer2DModel(**OVIS_TRANSFORMER),
        scheduler=FlowMatchEulerDiscreteScheduler(**TINY_FLUX_SCHEDULER_CONFIG),
        vae=AutoencoderKL(**FLUX_VAE),
        text_encoder=Qwen3Model(Qwen3Config(**QWEN3_TEXT_ENCODER)).eval(),
        tokenizer=tokenizer,
    )


def _hidream() -> Any:
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        HiDreamImagePipeline,
        HiDreamImageTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, LlamaConfig, LlamaForCausalLM

    clip_length = HIDREAM_CLIP["max_position_embeddings"]
    return HiDreamImagePipeline(
        transformer=HiDreamImageTransformer2DModel(**HIDREAM_TRANSFORMER),
        scheduler=FlowMatchEulerDiscreteScheduler(**TINY_FLUX_SCHEDULER_CONFIG),
        vae=AutoencoderKL(**HIDREAM_VAE),
        text_encoder=CLIPTextModelWithProjection(CLIPTextConfig(**HIDREAM_CLIP)).eval(),
        tokenizer=clip_tokenizer(clip_length),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**HIDREAM_CLIP)).eval(),
        tokenizer_2=clip_tokenizer(clip_length),
        text_encoder_3=_t5_encoder(TINY_T5_CONFIG),
        tokenizer_3=t5_tokenizer(),
        text_encoder_4=LlamaForCausalLM(LlamaConfig(**HIDREAM_LLAMA)).eval(),
        tokenizer_4=llama_tokenizer(),
    )


def _lumina() -> Any:
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, LuminaNextDiT2DModel, LuminaPipeline
    from transformers import GemmaConfig, GemmaModel

    return LuminaPipeline(
        transformer=LuminaNextDiT2DModel(**LUMINA_TRANSFORMER),
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=AutoencoderKL(**LUMINA_VAE),
        text_encoder=GemmaModel(GemmaConfig(**GEMMA_TEXT_ENCODER)).eval(),
        tokenizer=gemma_tokenizer(real_specials=True),
    )


def _pixart_sigma() -> Any:
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel

    return PixArtSigmaPipeline(
        tokenizer=t5_tokenizer(),
        text_encoder=_t5_encoder(PIXART_TEXT_ENCODER),
        vae=AutoencoderKL(**PIXART_VAE),
        transformer=PixArtTransformer2DModel(**PIXART_TRANSFORMER),
        scheduler=DPMSolverMultistepScheduler(**PIXART_SCHEDULER),
    )


def _sana() -> Any:
    from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaPipeline, SanaTransformer2DModel
    from transformers import Gemma2Config, Gemma2Model

    return SanaPipeline(
        tokenizer=gemma_tokenizer(),
        text_encoder=Gemma2Model(Gemma2Config(**SANA_TEXT_ENCODER)).eval(),
        vae=AutoencoderDC(**SANA_VAE),
        transformer=SanaTransformer2DModel(**SANA_TRANSFORMER),
        scheduler=DPMSolverMultistepScheduler(**SANA_SCHEDULER),
    )


def _hunyuan_image() -> Any:
    from diffusers import (
        AdaptiveProjectedMixGuidance,
        AutoencoderKLHunyuanImage,
        FlowMatchEulerDiscreteScheduler,
        HunyuanImagePipeline,
        HunyuanImageTransformer2DModel,
    )
    from transformers import ByT5Tokenizer, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    return HunyuanImagePipeline(
        transformer=HunyuanImageTransformer2DModel(**HUNYUAN_TRANSFORMER),
        vae=AutoencoderKLHunyuanImage(**HUNYUAN_VAE),
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=5.0),
        text_encoder=Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**QWEN25_VL_TEXT_ENCODER)).eval(),
        tokenizer=qwen2_tokenizer(),
        text_encoder_2=_t5_encoder(HUNYUAN_BYT5),
        tokenizer_2=ByT5Tokenizer(),
        guider=AdaptiveProjectedMixGuidance(),
        ocr_guider=AdaptiveProjectedMixGuidance(),
    )


def _chronoedit() -> Any:
    from diffusers import (
        AutoencoderKLWan,
        ChronoEditPipeline,
        ChronoEditTransformer3DModel,
        FlowMatchEulerDiscreteScheduler,
    )
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    return ChronoEditPipeline(
        tokenizer=t5_tokenizer(),
        text_encoder=UMT5EncoderModel(UMT5Config(**wan_tiny.TEXT_ENCODER)).eval(),
        image_encoder=CLIPVisionModel(CLIPVisionConfig(**wan_tiny.IMAGE_ENCODER)).eval(),
        image_processor=CLIPImageProcessorPil(**wan_tiny.IMAGE_PROCESSOR),
        transformer=ChronoEditTransformer3DModel(**wan_tiny.TRANSFORMER_I2V_21),
        vae=AutoencoderKLWan(**wan_tiny.VAE),
        scheduler=FlowMatchEulerDiscreteScheduler(**CHRONOEDIT_SCHEDULER),
    )


BUILDERS: dict[str, Callable[[], Any]] = {
    "bria-3.2": _bria,
    "ovis-image": _ovis,
    "hidream-i1": _hidream,
    "lumina-t2x": _lumina,
    "pixart-sigma": _pixart_sigma,
    "sana-1.6b": _sana,
    "hunyuan-image-2.1": _hunyuan_image,
    "chronoedit": _chronoedit,
    "glm-image": _glm_image,
}


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` into ``target`` and return ``target``."""
    if model_id not in BUILDERS:
        raise ValueError(f"no tiny image-DiT builder for {model_id!r}; known: {sorted(BUILDERS)}")
    target = Path(target)
    seed_everything(0)
    pipe = BUILDERS[model_id]()
    save_tiny_pipeline(pipe, target, model_id=model_id, default_config=dict(DEFAULT_CONFIGS[model_id]))
    if model_id == "chronoedit":
        name_real_image_processor(target, "image_processor")  # as the real repository names it
    return target
