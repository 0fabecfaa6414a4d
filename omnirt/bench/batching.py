"""``omnirt bench batching``: throughput of compatible requests run as one batched call versus one after another.

For each model, one warm engine serves ``requests`` compatible requests (same size and steps, each its own prompt and
seed) in two ways, alternating within the same process and the same minute:

* ``serial``: one :meth:`Engine.run` per request, as a worker without dynamic batching runs them;
* ``batched``: one :meth:`Engine.run_batch` for all of them, the call a worker with ``OMNIRT_MAX_BATCH_SIZE`` makes.

The figures are median wall times per round and the throughput they give (requests per second). On the CPU the models
are tiny random-weight copies (``omnirt make-tiny``); with ``--device cuda`` the engine takes real weights from the
models dir (or the Hugging Face cache) and runs them on the GPU, with ``--steps``/``--width``/``--height`` as given.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from omnirt.contracts.types import GenerateRequest

DEFAULT_MODELS = ("sd15", "wan2.1-t2v-14b")


def _requests(
    model_id: str, count: int, round_index: int, config: dict[str, Any], device: str
) -> list[GenerateRequest]:
    from omnirt.registry.registry import get_model

    spec = get_model(model_id)
    return [
        GenerateRequest(
            task=spec.task,
            model=model_id,
            backend=device,
            inputs={"prompt": f"a cat, request {index}"},
            config={**config, "seed": 1000 * round_index + index},
        )
        for index in range(count)
    ]


def measure(
    models: tuple[str, ...] = DEFAULT_MODELS,
    *,
    requests: int = 4,
    repeats: int = 3,
    device: str = "cpu",
    models_dir: Path | None = None,
    config: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One row per model: median ms per round of ``requests`` requests, serial and batched, and the throughputs."""
    from omnirt.models.batching import BatchRequest
    from omnirt.models.tiny_common import make_tiny
    from omnirt.workers.engine import Engine

    rows = []
    with tempfile.TemporaryDirectory(prefix="omnirt-bench-batching-") as scratch:
        root = Path(scratch)
        for model_id in models:
            settings = dict(config or {})
            if device == "cpu":
                settings["model_path"] = str(make_tiny(model_id, root / "models" / model_id))
            engine = Engine(output_dir=root / "out", models_dir=models_dir)
            warm_up = _requests(model_id, requests, 0, settings, device)
            engine.run(warm_up[0])  # the load, outside the figures
            engine.run_batch([BatchRequest(request=request) for request in warm_up])  # a first batched call
            serial_ms, batched_ms = [], []
            for round_index in range(1, repeats + 1):
                batch = _requests(model_id, requests, round_index, settings, device)
                started = time.perf_counter()
                for request in batch:
                    engine.run(request)
                serial_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                results = engine.run_batch([BatchRequest(request=request) for request in batch])
                batched_ms.append((time.perf_counter() - started) * 1000)
                assert all(result is not None and result.metadata.batch_size == requests for result in results)
            serial, batched = statistics.median(serial_ms), statistics.median(batched_ms)
            rows.append(
                {
                    "model": model_id,
                    "device": device,
                    "requests": requests,
                    "repeats": repeats,
                    "serial_ms": round(serial, 1),
                    "batched_ms": round(batched, 1),
                    "serial_rps": round(requests / serial * 1000, 2),
                    "batched_rps": round(requests / batched * 1000, 2),
                    "speedup": round(serial / batched, 2),
                }
            )
    return rows
