"""``omnirt bench warm-cache``: what keeping weights warm saves when requests vary steps and seeds.

For each model, requests alternate between two ways of serving them, in the same process and the same minute:

* ``reload``: a fresh engine per request, which loads the weights every time (what a cache keyed by per-request
  settings does whenever steps or size change);
* ``warm``: one engine whose cache is keyed only by what changes the weights, so only the first request loads.

Each request uses a different step count and seed. The figure is the ratio of median wall times, reload / warm.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from omnirt.contracts.types import GenerateRequest

DEFAULT_MODELS = ("sd15", "flux-schnell", "wan2.1-t2v-14b")


def _request(model_id: str, folder: Path, index: int) -> GenerateRequest:
    from omnirt.registry.registry import get_model

    spec = get_model(model_id)
    return GenerateRequest(
        task=spec.task,
        model=model_id,
        backend="cpu",
        inputs={"prompt": f"a cat, take {index}"},
        config={"model_path": str(folder), "seed": index, "num_inference_steps": 2 + index % 2},
    )


def measure(models: tuple[str, ...] = DEFAULT_MODELS, repeats: int = 5) -> list[dict[str, Any]]:
    from omnirt.models.tiny_common import make_tiny
    from omnirt.workers.engine import Engine

    rows = []
    with tempfile.TemporaryDirectory(prefix="omnirt-bench-") as scratch:
        root = Path(scratch)
        for model_id in models:
            folder = make_tiny(model_id, root / "models" / model_id)
            warm_engine = Engine(output_dir=root / "out")
            warm_engine.run(_request(model_id, folder, 0))  # the one load the warm path pays
            reload_ms, warm_ms = [], []
            for index in range(1, repeats + 1):
                started = time.perf_counter()
                Engine(output_dir=root / "out").run(_request(model_id, folder, index))
                reload_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                warm_engine.run(_request(model_id, folder, index))
                warm_ms.append((time.perf_counter() - started) * 1000)
            reload_median, warm_median = statistics.median(reload_ms), statistics.median(warm_ms)
            rows.append(
                {
                    "model": model_id,
                    "repeats": repeats,
                    "reload_median_ms": round(reload_median, 1),
                    "warm_median_ms": round(warm_median, 1),
                    "reload_over_warm": round(reload_median / warm_median, 2),
                }
            )
    return rows
