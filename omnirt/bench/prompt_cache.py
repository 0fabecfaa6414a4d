"""``omnirt bench prompt-cache``: what reusing text-encoder outputs saves on requests that repeat a prompt.

One warm engine per model serves the same prompt again and again, alternating two ways, in the same process and the
same minute:

* ``uncached``: ``prompt_cache: false``: the text encoders run on every request;
* ``cached``: the default: the first request encodes, the others take the embeddings from the cache.

Models: the tiny ``sd15`` and ``flux-schnell`` (encoders of toy size, so the saving is small), and ``flux-schnell`` with
a T5 encoder of T5-base size (12 layers, width 768; the transformer's text projection widened to match) in place of
the toy T5, which gives the encoder the share of a request it has with real weights. The figures are median wall
times per request, their ratio, and the encoder time of an uncached request (``prepare_conditions_ms``).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from omnirt.contracts.types import GenerateRequest

#: name -> (registered model, whether its T5 encoder is replaced by a T5-base-sized one)
VARIANTS: dict[str, tuple[str, bool]] = {
    "sd15": ("sd15", False),
    "flux-schnell": ("flux-schnell", False),
    "flux-schnell+t5-base": ("flux-schnell", True),
}
DEFAULT_VARIANTS = tuple(VARIANTS)

# T5-base's encoder shape (the real FLUX uses T5-XXL: width 4096, 24 layers), over the tiny tokenizer's vocabulary.
T5_BASE_SHAPE: dict[str, Any] = {"d_model": 768, "d_kv": 64, "d_ff": 2048, "num_layers": 12, "num_heads": 12}


def _request(model_id: str, folder: Path, *, cached: bool, seed: int) -> GenerateRequest:
    return GenerateRequest(
        task="text2image",
        model=model_id,
        backend="cpu",
        inputs={"prompt": "a lighthouse on a cliff at dusk, oil painting"},
        config={"model_path": str(folder), "seed": seed, "num_inference_steps": 2, "prompt_cache": cached},
    )


def widen_text_encoder(folder: Path) -> Path:
    """Replace the tiny FLUX folder's T5 encoder by a T5-base-sized one, and widen the transformer's text input."""
    import diffusers
    from transformers import T5Config, T5EncoderModel

    from omnirt.models.tiny_common import seed_everything

    seed_everything(1)
    pipe = diffusers.FluxPipeline.from_pretrained(folder)
    t5_config = T5Config(**{**pipe.text_encoder_2.config.to_dict(), **T5_BASE_SHAPE})
    transformer_config = {**pipe.transformer.config, "joint_attention_dim": T5_BASE_SHAPE["d_model"]}
    components = {
        **pipe.components,
        "text_encoder_2": T5EncoderModel(t5_config).eval(),
        "transformer": diffusers.FluxTransformer2DModel.from_config(transformer_config),
    }
    diffusers.FluxPipeline(**components).save_pretrained(folder, safe_serialization=True)
    return folder


def measure(variants: tuple[str, ...] = DEFAULT_VARIANTS, repeats: int = 5) -> list[dict[str, Any]]:
    from omnirt.models.tiny_common import make_tiny
    from omnirt.workers.engine import Engine

    rows = []
    with tempfile.TemporaryDirectory(prefix="omnirt-bench-") as scratch:
        root = Path(scratch)
        for name in variants:
            model_id, widen = VARIANTS[name]
            folder = make_tiny(model_id, root / "models" / name)
            if widen:
                widen_text_encoder(folder)
            engine = Engine(output_dir=root / "out")
            engine.run(_request(model_id, folder, cached=True, seed=0))  # loads, and fills the cache
            uncached_ms, cached_ms, encoder_ms, hits = [], [], [], 0
            for index in range(1, repeats + 1):
                started = time.perf_counter()
                result = engine.run(_request(model_id, folder, cached=False, seed=index))
                uncached_ms.append((time.perf_counter() - started) * 1000)
                encoder_ms.append(result.metadata.timings["prepare_conditions_ms"])
                started = time.perf_counter()
                result = engine.run(_request(model_id, folder, cached=True, seed=index))
                cached_ms.append((time.perf_counter() - started) * 1000)
                hits += "text_embedding" in result.metadata.cache_hits
            uncached, cached = statistics.median(uncached_ms), statistics.median(cached_ms)
            rows.append(
                {
                    "model": name,
                    "repeats": repeats,
                    "uncached_median_ms": round(uncached, 1),
                    "cached_median_ms": round(cached, 1),
                    "uncached_over_cached": round(uncached / cached, 2),
                    "encoder_median_ms": round(statistics.median(encoder_ms), 1),
                    "cache_hits": hits,
                }
            )
    return rows
