"""``omnirt bench tts``: first-packet latency and real-time factor of a streaming voice, engine alone and through
the API, measured round by round in the same process.

- engine: the warm pipeline's ``synthesize`` generator, time to its first segment;
- API: ``POST /v1/text2audio/stream`` on an embedded server in this process (job, worker thread, events, relay,
  chunked HTTP), time to the first PCM byte at the client.

RTF is synthesis time over audio duration (lower is faster; < 1 is faster than real time).
"""

from __future__ import annotations

import time
from typing import Any

from omnirt.bench.dispatch import summary

TEXTS = (
    "Hello from OmniRT.",
    "Please call me back tomorrow morning at nine.",
    "Open the window and let some fresh air in.",
    "The quick brown fox jumps over the lazy dog.",
)


def run(model: str = "hibari-tts", rounds: int = 20) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    import requests
    from werkzeug.serving import make_server

    from omnirt.api import create_app
    from omnirt.runtime.engine import get_default_engine
    from omnirt.settings import Settings

    engine = get_default_engine()
    engine.preload(model, backend="cpu")
    pipeline = next(
        entry
        for key in engine.cache.keys()
        if key[0] == model and (entry := engine.cache.get_or_load(key, lambda: None)[0].pipeline)
    )
    server = make_server("127.0.0.1", 0, create_app(Settings(artifact_dir=Path(tempfile.mkdtemp()))), threaded=True)
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/v1/text2audio/stream"
    session = requests.Session()
    for text in TEXTS:  # warm both paths
        list(pipeline.synthesize(text, {}, {}))
        session.post(url, json={"text": text, "model": model}, timeout=60).raise_for_status()

    engine_first, api_first, engine_rtf, api_rtf = [], [], [], []
    for index in range(rounds):
        text = TEXTS[index % len(TEXTS)]
        started = time.perf_counter()
        segments = pipeline.synthesize(text, {}, {})
        first = next(segments)
        engine_first.append((time.perf_counter() - started) * 1000)
        samples = len(first) + sum(len(segment) for segment in segments)
        engine_rtf.append((time.perf_counter() - started) / (samples / pipeline.sample_rate))

        started = time.perf_counter()
        with session.post(url, json={"text": text, "model": model}, stream=True, timeout=60) as response:
            received = 0
            for chunk in response.iter_content(chunk_size=None):
                if received == 0:
                    api_first.append((time.perf_counter() - started) * 1000)
                received += len(chunk)
        rate = int(response.headers["x-audio-sample-rate"])
        api_rtf.append((time.perf_counter() - started) / (received / 2 / rate))
    server.shutdown()
    engine_s, api_s = summary(engine_first), summary(api_first)
    return {
        "model": model,
        "engine_first_packet": engine_s,
        "api_first_packet": api_s,
        "api_over_engine_p50_ms": round(api_s["p50_ms"] - engine_s["p50_ms"], 3),
        "engine_rtf_mean": round(sum(engine_rtf) / len(engine_rtf), 4),
        "api_rtf_mean": round(sum(api_rtf) / len(api_rtf), 4),
        "rounds": rounds,
    }
