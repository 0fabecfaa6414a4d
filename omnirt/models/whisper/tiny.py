"""Tiny random-weight Whisper, for `omnirt make-tiny` and the tests.

This module owns the tiny copies of ``openai/whisper-small`` (``whisper-small``) and ``openai/whisper-large-v3``
(``whisper-large-v3``). Each is a :class:`~transformers.WhisperForConditionalGeneration` saved with safetensors beside
a :class:`~transformers.WhisperProcessor` (byte-level BPE tokenizer + log-mel feature extractor) and an explicit
``generation_config.json``: the layout of the real repos, loaded through the same ``from_pretrained`` calls.

The model keeps the real encoder-decoder architecture at toy widths (d_model 16, one layer each side, two heads) and
reads 80 mel bins over the full 30 s window (1500 encoder positions), like whisper-small. (The real large-v3 reads 128
bins; the tiny copies share whisper-small's front end.)

Pitfalls the builder handles:

* The tokenizer has no merges: its vocabulary is the 256 byte characters of byte-level BPE, then the Whisper special
  tokens, registered as special so that ``skip_special_tokens`` drops them from transcripts.
* ``generate(language=..., task=...)`` reads ``lang_to_id``, ``task_to_id``, ``no_timestamps_token_id`` and
  ``is_multilingual`` from the generation config, not from the model config, so the builder writes them. The
  suppress lists are empty: the real ones name ids of the 51k-token vocabulary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.tiny_common import seed_everything
from omnirt.runtime.weights import write_folder_defaults

LANGUAGE_TOKENS: dict[str, str] = {"en": "<|en|>"}
SPECIAL_TOKENS: list[str] = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    *LANGUAGE_TOKENS.values(),
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nospeech|>",
    "<|notimestamps|>",
]

WHISPER_CONFIG: dict[str, Any] = {
    "d_model": 16,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 32,
    "decoder_ffn_dim": 32,
    "num_mel_bins": 80,
    "max_source_positions": 1500,
    "max_target_positions": 64,
    "begin_suppress_tokens": [],
    "suppress_tokens": [],
}

DEFAULT_CONFIG: dict[str, Any] = {"language": "en"}

_MODELS = ("whisper-small", "whisper-large-v3")


def byte_characters() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for the bytes 0-255, in byte order (GPT-2's table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = 0
    table: dict[int, str] = {}
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return [table[byte] for byte in range(256)]


def vocabulary() -> dict[str, int]:
    """Byte characters first (ids 0-255), then the special tokens."""
    return {token: index for index, token in enumerate([*byte_characters(), *SPECIAL_TOKENS])}


def processor() -> Any:
    """A WhisperProcessor: the byte-level tokenizer with Whisper's special tokens, and an 80-bin feature extractor."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

    tokenizer = WhisperTokenizer(vocab=vocabulary(), merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    return WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer)


def generation_config(vocab: dict[str, int]) -> Any:
    from transformers import GenerationConfig

    end = vocab["<|endoftext|>"]
    return GenerationConfig(
        decoder_start_token_id=vocab["<|startoftranscript|>"],
        bos_token_id=end,
        eos_token_id=end,
        pad_token_id=end,
        no_timestamps_token_id=vocab["<|notimestamps|>"],
        lang_to_id={token: vocab[token] for token in LANGUAGE_TOKENS.values()},
        task_to_id={"transcribe": vocab["<|transcribe|>"], "translate": vocab["<|translate|>"]},
        is_multilingual=True,
        begin_suppress_tokens=[],
        suppress_tokens=[],
        max_length=WHISPER_CONFIG["max_target_positions"],
    )


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of ``model_id`` into ``target`` and return ``target``."""
    if model_id not in _MODELS:
        raise ValueError(f"no tiny Whisper builder for {model_id!r}; known: {sorted(_MODELS)}")
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary()
    end = vocab["<|endoftext|>"]
    seed_everything(0)
    config = WhisperConfig(
        vocab_size=len(vocab),
        pad_token_id=end,
        bos_token_id=end,
        eos_token_id=end,
        decoder_start_token_id=vocab["<|startoftranscript|>"],
        **WHISPER_CONFIG,
    )
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = generation_config(vocab)
    model.save_pretrained(target, safe_serialization=True)
    processor().save_pretrained(target)
    write_folder_defaults(target, model_id=model_id, default_config=dict(DEFAULT_CONFIG), tiny=True)
    return target
