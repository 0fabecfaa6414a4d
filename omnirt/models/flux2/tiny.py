"""Tiny random-weight FLUX.2 dev and FLUX.2 klein, for `omnirt make-tiny` and the tests.

This module owns the tiny copies of ``black-forest-labs/FLUX.2-dev`` (``flux2.dev``, :class:`~diffusers.Flux2Pipeline`
with a Mistral 3 text encoder) and ``black-forest-labs/FLUX.2-klein-4B`` (``flux2-klein``,
:class:`~diffusers.Flux2KleinPipeline` with a Qwen3 text encoder), each saved in its real layout: ``transformer``,
``vae`` (:class:`~diffusers.AutoencoderKLFlux2`), ``text_encoder``, ``tokenizer`` and ``scheduler``. Both pipelines
also edit: a call with ``image=`` conditions on the reference image(s).

How the dimensions are tied:

* The prompt embedding stacks three hidden states of the text encoder, at the pipelines' default layers
  ``(10, 20, 30)`` for Mistral 3 and ``(9, 18, 27)`` for Qwen3, so the encoders get 31 and 28 layers and
  ``joint_attention_dim`` = 3 x the encoder's hidden size. Default calls need no test-only kwargs.
* The VAE patchifies its latents 2x2, so the transformer sees ``4 * latent_channels`` channels.
* The RoPE axes (``axes_dims_rope``) add up to ``attention_head_dim``.

Tokenizers: the real FLUX.2-dev repo ships a ``PixtralProcessor``, whose image processor needs torchvision; the tiny
copy ships the plain Llama-style tokenizer with Mistral's special tokens and a chat template, which is all that
text prompts need. Klein's Qwen tokenizer gets ``<think>``/``</think>`` and Qwen3's chat template (the pipeline
asks for ``enable_thinking=False``). klein is step-distilled (``is_distilled=True``): guidance is not used.

The VAE has two blocks (2x downsampling); with the 2x2 patches, sizes must be multiples of 4. The tiny default is 32.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_components import TINY_FLUX_SCHEDULER_CONFIG, TINY_KL_VAE_CONFIG
from omnirt.models.tiny_tokenizers import llama_tokenizer, qwen2_tokenizer

if TYPE_CHECKING:
    from diffusers import Flux2KleinPipeline, Flux2Pipeline

# ---------------------------------------------------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------------------------------------------------

MISTRAL_SPECIAL_TOKENS = (
    "[IMG]",
    "[IMG_BREAK]",
    "[IMG_END]",
    "[INST]",
    "[/INST]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
)

# Messages as the pipeline formats them: each content is a list of {"type": "text" | "image", ...} parts.
MISTRAL_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}[SYSTEM_PROMPT]"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "[/SYSTEM_PROMPT]"
    "{% elif message['role'] == 'user' %}[INST]"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% elif part['type'] == 'image' %}[IMG]{% endif %}"
    "{% endfor %}"
    "[/INST]"
    "{% endif %}"
    "{% endfor %}"
)

QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)

# ---------------------------------------------------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------------------------------------------------

TEXT_HIDDEN_SIZE = 16

# Mistral Small 3.1 (text) with a Pixtral vision tower; image_token_index is set from the tokenizer.
MISTRAL3_CONFIG: dict[str, Any] = {
    "text_config": {
        "model_type": "mistral",
        "vocab_size": 512,
        "hidden_size": TEXT_HIDDEN_SIZE,
        "intermediate_size": 37,
        "num_hidden_layers": 31,  # hidden states 10, 20 and 30 are read
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 4,
        "max_position_embeddings": 1024,
        "rms_norm_eps": 1e-5,
        "rope_theta": 1_000_000_000.0,
        "sliding_window": None,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
    },
    "vision_config": {
        "model_type": "pixtral",
        "hidden_size": 16,
        "intermediate_size": 37,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "head_dim": 4,
        "image_size": 30,
        "patch_size": 6,
        "num_channels": 3,
    },
    "image_seq_length": 4,
    "vision_feature_layer": -1,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}

QWEN3_CONFIG: dict[str, Any] = {
    "vocab_size": 512,
    "hidden_size": TEXT_HIDDEN_SIZE,
    "intermediate_size": 16,
    "num_hidden_layers": 28,  # hidden states 9, 18 and 27 are read
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "max_position_embeddings": 1024,
    "rope_theta": 1_000_000.0,
    "tie_word_embeddings": True,
}

# The shared two-block KL VAE, without quant convs and with the 2x2 latent patchify of AutoencoderKLFlux2.
VAE_CONFIG: dict[str, Any] = {
    **TINY_KL_VAE_CONFIG,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "patch_size": (2, 2),
}

DEV_TRANSFORMER_CONFIG: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 4 * VAE_CONFIG["latent_channels"],  # 2x2 patchified latents
    "num_layers": 1,
    "num_single_layers": 1,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 3 * TEXT_HIDDEN_SIZE,  # three stacked hidden states
    "timestep_guidance_channels": 256,
    "axes_dims_rope": (4, 4, 4, 4),
    "guidance_embeds": True,
}

KLEIN_TRANSFORMER_CONFIG: dict[str, Any] = {**DEV_TRANSFORMER_CONFIG, "guidance_embeds": False}

# The shared FLUX scheduler: flow matching with a shift that grows with the image token count, as in FLUX.1 dev.
SCHEDULER_CONFIG: dict[str, Any] = TINY_FLUX_SCHEDULER_CONFIG

DEFAULT_CONFIG: dict[str, Any] = {"height": 32, "width": 32, "num_inference_steps": 2}


# ---------------------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------------------


def _mistral_tokenizer() -> Any:
    tokenizer = llama_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": list(MISTRAL_SPECIAL_TOKENS)})
    tokenizer.pad_token = "<unk>"
    tokenizer.chat_template = MISTRAL_CHAT_TEMPLATE
    return tokenizer


def _qwen3_tokenizer() -> Any:
    tokenizer = qwen2_tokenizer()
    tokenizer.add_tokens(["<think>", "</think>"])
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    return tokenizer


def _shared(transformer_config: dict[str, Any]) -> dict[str, Any]:
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2Transformer2DModel

    return {
        "transformer": Flux2Transformer2DModel(**transformer_config),
        "vae": AutoencoderKLFlux2(**VAE_CONFIG),
        "scheduler": FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG),
    }


def _dev() -> Flux2Pipeline:
    from diffusers import Flux2Pipeline
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    tokenizer = _mistral_tokenizer()
    config = Mistral3Config(**MISTRAL3_CONFIG, image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"))
    return Flux2Pipeline(
        **_shared(DEV_TRANSFORMER_CONFIG),
        text_encoder=Mistral3ForConditionalGeneration(config).eval(),
        tokenizer=tokenizer,
    )


def _klein() -> Flux2KleinPipeline:
    from diffusers import Flux2KleinPipeline
    from transformers import Qwen3Config, Qwen3ForCausalLM

    return Flux2KleinPipeline(
        **_shared(KLEIN_TRANSFORMER_CONFIG),
        text_encoder=Qwen3ForCausalLM(Qwen3Config(**QWEN3_CONFIG)).eval(),
        tokenizer=_qwen3_tokenizer(),
        is_distilled=True,
    )


_BUILDERS = {"flux2.dev": _dev, "flux2-klein": _klein}


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` into ``target`` and return ``target``."""
    builder = _BUILDERS.get(model_id)
    if builder is None:
        raise ValueError(f"no tiny FLUX.2 builder for {model_id!r}; known: {sorted(_BUILDERS)}")
    seed_everything(0)
    pipe = builder()
    return save_tiny_pipeline(pipe, Path(target), model_id=model_id, default_config=dict(DEFAULT_CONFIG))
