"""Tiny random-weight Kolors, for `omnirt make-tiny` and the tests.

This module owns the tiny copy of ``Kwai-Kolors/Kolors-diffusers`` (``kolors``): a :class:`~diffusers.KolorsPipeline`
saved in the real layout, with an SDXL-style ``unet``, a KL ``vae``, a ChatGLM3 ``text_encoder`` and its
SentencePiece ``tokenizer`` (both classes ship inside diffusers, ``diffusers.pipelines.kolors``, and the real
``model_index.json`` names them under the ``kolors`` library) and an Euler scheduler. There is no image encoder
(IP-Adapter only).

How the dimensions are tied:

* The pipeline reads the text encoder's second-to-last hidden state as the token embeddings and the last layer's
  final token as the pooled embedding, so the ChatGLM model has two layers. The UNet projects the token embeddings
  (``encoder_hid_dim`` = ChatGLM ``hidden_size``, ``encoder_hid_dim_type="text_proj"``) to its
  ``cross_attention_dim``.
* SDXL's micro-conditioning: ``projection_class_embeddings_input_dim`` = pooled width + 6 time ids x
  ``addition_time_embed_dim``.
* The ChatGLM vocabulary (``padded_vocab_size``) holds the SentencePiece pieces plus the nine ChatGLM specials
  (``[MASK]`` .. ``<|observation|>``) the tokenizer appends after them.

The tokenizer's SentencePiece model is trained at build time on a few lines of ASCII, one piece per character. The VAE
has two blocks (2x downsampling), so sizes must be even; the tiny default is 32x32.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnirt.models.tiny_common import save_tiny_pipeline, seed_everything
from omnirt.models.tiny_components import TINY_KL_VAE_CONFIG

if TYPE_CHECKING:
    from diffusers import KolorsPipeline

# ---------------------------------------------------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------------------------------------------------

TEXT_HIDDEN_SIZE = 16
_PIECES = 100  # the SentencePiece vocabulary: <unk>, <s>, </s>, the word marker and printable ASCII (and spares)
_CHATGLM_SPECIALS = 9

# ChatGLM3-6B at toy width: RMSNorm, rotary attention, grouped (multi-query) key/value heads, as in the real one.
TEXT_ENCODER_CONFIG: dict[str, Any] = {
    "num_layers": 2,
    "padded_vocab_size": 128,  # >= _PIECES + _CHATGLM_SPECIALS
    "hidden_size": TEXT_HIDDEN_SIZE,
    "ffn_hidden_size": 32,
    "kv_channels": 8,
    "num_attention_heads": 2,
    "seq_length": 512,
    "multi_query_attention": True,
    "multi_query_group_num": 1,
    "add_qkv_bias": True,
    "rmsnorm": True,
    "post_layer_norm": True,
    "original_rope": True,
    "torch_dtype": "float32",
}

# The shared two-block KL VAE with SDXL's latent scaling (Kolors uses the SDXL VAE).
VAE_CONFIG: dict[str, Any] = {**TINY_KL_VAE_CONFIG, "scaling_factor": 0.13025}

_ADDITION_TIME_EMBED_DIM = 8

UNET_CONFIG: dict[str, Any] = {
    "sample_size": 16,
    "in_channels": VAE_CONFIG["latent_channels"],
    "out_channels": VAE_CONFIG["latent_channels"],
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "block_out_channels": (4, 8),
    "layers_per_block": 1,
    "norm_num_groups": 2,
    "attention_head_dim": (2, 4),
    "use_linear_projection": True,
    "cross_attention_dim": 8,
    "encoder_hid_dim": TEXT_HIDDEN_SIZE,
    "encoder_hid_dim_type": "text_proj",
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": _ADDITION_TIME_EMBED_DIM,
    "projection_class_embeddings_input_dim": TEXT_HIDDEN_SIZE + 6 * _ADDITION_TIME_EMBED_DIM,
}

SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1100,
    "beta_start": 0.00085,
    "beta_end": 0.014,
    "beta_schedule": "scaled_linear",
    "timestep_spacing": "leading",
    "steps_offset": 1,
    "prediction_type": "epsilon",
}

DEFAULT_CONFIG: dict[str, Any] = {"height": 32, "width": 32, "num_inference_steps": 2, "max_sequence_length": 32}

_TRAINING_LINES = (
    " ".join(chr(code) for code in range(33, 127)),
    "a cat sitting on a mat",
    "a studio portrait of a person",
)


# ---------------------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------------------


def sentencepiece_model() -> bytes:
    """A character-level SentencePiece model: <unk>=0, <s>=1, </s>=2, then one piece per seen character."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_TRAINING_LINES),
        model_writer=model,
        model_type="char",
        vocab_size=_PIECES,
        hard_vocab_limit=False,
        character_coverage=1.0,
        normalization_rule_name="identity",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def _chatglm(model_cls: Any, config_cls: Any) -> Any:
    """A randomly initialised ChatGLM. The class leaves weights uninitialised unless ``empty_init=False`` (it
    expects a checkpoint), and even then allocates its RMSNorm scales with ``torch.empty``: they start at 1 here."""
    import torch

    model = model_cls(config_cls(**TEXT_ENCODER_CONFIG), empty_init=False).eval()
    with torch.no_grad():
        for module in model.modules():
            if type(module).__name__ == "RMSNorm":
                module.weight.fill_(1.0)
    return model


def _kolors(scratch: Path) -> KolorsPipeline:
    """The pipeline; its tokenizer reads ``scratch/tokenizer.model``, which must outlive ``save_pretrained``."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, KolorsPipeline, UNet2DConditionModel
    from diffusers.pipelines.kolors import ChatGLMModel, ChatGLMTokenizer
    from diffusers.pipelines.kolors.text_encoder import ChatGLMConfig

    vocab_file = scratch / "tokenizer.model"
    vocab_file.write_bytes(sentencepiece_model())
    return KolorsPipeline(
        vae=AutoencoderKL(**VAE_CONFIG),
        text_encoder=_chatglm(ChatGLMModel, ChatGLMConfig),
        tokenizer=ChatGLMTokenizer(vocab_file=str(vocab_file)),
        unet=UNet2DConditionModel(**UNET_CONFIG),
        scheduler=EulerDiscreteScheduler(**SCHEDULER_CONFIG),
        image_encoder=None,
        feature_extractor=None,
    )


_BUILDERS = {"kolors": _kolors}


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` into ``target`` and return ``target``."""
    builder = _BUILDERS.get(model_id)
    if builder is None:
        raise ValueError(f"no tiny Kolors builder for {model_id!r}; known: {sorted(_BUILDERS)}")
    seed_everything(0)
    with tempfile.TemporaryDirectory() as scratch:  # saving copies the tokenizer's SentencePiece model
        pipe = builder(Path(scratch))
        return save_tiny_pipeline(pipe, Path(target), model_id=model_id, default_config=dict(DEFAULT_CONFIG))
