"""Tiny random-weight VITS / MMS-TTS, for `omnirt make-tiny` and the tests.

This module owns the tiny copies of ``facebook/mms-tts-eng`` (``mms-tts-eng``) and ``kakao-enterprise/vits-ljs``
(``vits-ljs``). Each is a :class:`~transformers.VitsModel` saved with safetensors beside a character
:class:`~transformers.VitsTokenizer` (``vocab.json``), the layout of the real repos, so the family loads it through
the same ``from_pretrained`` calls as the real weights.

The model keeps the real architecture (text encoder, flow-based prior, stochastic duration predictor, HiFi-GAN
decoder) at toy widths: 16 hidden channels, two layers and two flows everywhere. The decoder upsamples 256x, as the
real one does, and the output is 16 kHz like MMS-TTS. The output is noise.

The tokenizer reads characters (``phonemize=False``, as MMS-TTS does): pad, unk, space, a-z and ``'.,?!``, with a
blank between characters (``add_blank``). The real ``vits-ljs`` phonemizes with espeak; the tiny copy does not, so it
needs neither ``phonemizer`` nor espeak.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

from omnirt.models.tiny_common import seed_everything
from omnirt.runtime.weights import write_folder_defaults

VOCAB: list[str] = ["<pad>", "<unk>", " ", *string.ascii_lowercase, *"'.,?!"]

VITS_CONFIG: dict[str, Any] = {
    "vocab_size": len(VOCAB),
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "window_size": 4,
    "ffn_dim": 32,
    "flow_size": 16,
    "spectrogram_bins": 33,
    "prior_encoder_num_flows": 2,
    "prior_encoder_num_wavenet_layers": 2,
    "posterior_encoder_num_wavenet_layers": 2,
    "duration_predictor_num_flows": 2,
    "duration_predictor_filter_channels": 16,
    "upsample_initial_channel": 16,
    "upsample_rates": [8, 8, 2, 2],
    "upsample_kernel_sizes": [16, 16, 4, 4],
    "resblock_kernel_sizes": [3],
    "resblock_dilation_sizes": [[1, 3]],
    "sampling_rate": 16000,
}

DEFAULT_CONFIG: dict[str, Any] = {}

_MODELS = ("mms-tts-eng", "vits-ljs")


def tokenizer(folder: Path) -> Any:
    """A character VitsTokenizer whose ``vocab.json`` is written into ``folder``."""
    from transformers import VitsTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = folder / "vocab.json"
    vocab_file.write_text(json.dumps({token: index for index, token in enumerate(VOCAB)}, indent=2) + "\n")
    return VitsTokenizer(vocab_file=str(vocab_file), phonemize=False, add_blank=True, normalize=True)


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` into ``target`` and return ``target``."""
    if model_id not in _MODELS:
        raise ValueError(f"no tiny VITS builder for {model_id!r}; known: {sorted(_MODELS)}")
    from transformers import VitsConfig, VitsModel

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    seed_everything(0)
    model = VitsModel(VitsConfig(**VITS_CONFIG)).eval()
    model.save_pretrained(target, safe_serialization=True)
    tokenizer(target).save_pretrained(target)
    write_folder_defaults(target, model_id=model_id, default_config=dict(DEFAULT_CONFIG), tiny=True)
    return target
