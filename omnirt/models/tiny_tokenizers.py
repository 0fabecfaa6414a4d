"""Tokenizers with tiny in-memory vocabularies, for `omnirt make-tiny`.

Real checkpoints ship tokenizers trained on large corpora; a tiny random-weight copy only needs one that has the
right class and special tokens, so that the pipeline's own prompt handling runs unchanged. Every character (or
byte) is one token: there are no merges.
"""

from __future__ import annotations

from typing import Any

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


def byte_level_alphabet() -> list[str]:
    """The 256 printable characters that GPT-2 style byte-level BPE uses for bytes 0..255, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {byte: byte for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in mapping:
            mapping[byte] = 256 + extra
            extra += 1
    return [chr(mapping[byte]) for byte in range(256)]


def clip_tokenizer(model_max_length: int = 77) -> Any:
    """CLIP BPE tokenizer: <|startoftext|>=0, <|endoftext|>=1, then 256 byte chars and their word-final forms."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for char in byte_level_alphabet():
            vocab[char + suffix] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)


def t5_tokenizer(model_max_length: int = 512) -> Any:
    """T5 Unigram tokenizer: <pad>=0, </s>=1, <unk>=2, the word marker, ASCII and marker+ASCII pieces."""
    from transformers import T5Tokenizer

    ascii_chars = [chr(code) for code in range(33, 127)]
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(char, -5.0) for char in ascii_chars]
    pieces += [("▁" + char, -4.0) for char in ascii_chars]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=model_max_length)


def qwen2_tokenizer(model_max_length: int = 4096) -> Any:
    """Qwen2 byte-level BPE: bytes 0..255, then <|endoftext|>=256 and the chat/vision specials 257..262."""
    from transformers import Qwen2Tokenizer

    vocab = {char: index for index, char in enumerate(byte_level_alphabet())}
    for token in QWEN_SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=[],
        model_max_length=model_max_length,
        additional_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]),
    )


def llama_tokenizer(model_max_length: int = 4096) -> Any:
    """Llama BPE with byte fallback: <unk>=0, <s>=1, </s>=2, <0x00>..<0xFF>, the word marker and ASCII."""
    from transformers import LlamaTokenizer

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    vocab["▁"] = len(vocab)
    for code in range(33, 127):
        vocab[chr(code)] = len(vocab)
    tokenizer = LlamaTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "<unk>"
    return tokenizer


def gemma_tokenizer(model_max_length: int = 4096, *, real_specials: bool = False) -> Any:
    """Gemma BPE with byte fallback: <pad>=0, <eos>=1, <bos>=2, <unk>=3, <0x00>..<0xFF>, the word marker and ASCII.

    ``real_specials`` keeps two traits of the real tokenizer: <mask> sits at 4, before the bytes (otherwise the
    library appends it last), and every text starts with <bos>, so that an empty negative prompt is one token.
    """
    from transformers import GemmaTokenizer

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}
    if real_specials:
        vocab["<mask>"] = len(vocab)
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    vocab["▁"] = len(vocab)
    for code in range(33, 127):
        vocab[chr(code)] = len(vocab)
    bos = {"add_bos_token": True} if real_specials else {}
    return GemmaTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length, **bos)
