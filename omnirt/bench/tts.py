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


def run(
    model: str = "hibari-tts", rounds: int = 20, redis_url: str | None = None, *, backend: str = "cpu"
) -> dict[str, Any]:
    """Embedded API in this process, or (with ``redis_url``) a fleet: ``omnirt serve`` plus one worker process.

    ``backend`` is the engine-alone path's device (the API path runs where the server places the model)."""
    import tempfile
    from pathlib import Path

    import requests

    from omnirt.workers.engine import get_default_engine

    pipeline = get_default_engine().pipeline_for(model, backend=backend)
    scratch = Path(tempfile.mkdtemp(prefix="omnirt-bench-tts-"))
    stop = _start_api(scratch, redis_url)
    url = f"{stop.base}/v1/text2audio/stream"
    session = requests.Session()
    for text in TEXTS:  # warm both paths
        list(pipeline.synthesize(text, {}, {}))
        session.post(url, json={"text": text, "model": model}, timeout=120).raise_for_status()

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
    stop()
    engine_s, api_s = summary(engine_first), summary(api_first)
    return {
        "model": model,
        "mode": "fleet" if redis_url else "embedded",
        "engine_first_packet": engine_s,
        "api_first_packet": api_s,
        "api_over_engine_p50_ms": round(api_s["p50_ms"] - engine_s["p50_ms"], 3),
        "engine_rtf_mean": round(sum(engine_rtf) / len(engine_rtf), 4),
        "api_rtf_mean": round(sum(api_rtf) / len(api_rtf), 4),
        "rounds": rounds,
    }


def _start_api(scratch: Any, redis_url: str | None) -> Any:
    """Start the API (and, for a fleet, a worker); returns a stop() callable with a ``base`` URL."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import threading

    if redis_url is None:
        from werkzeug.serving import make_server

        from omnirt.api import create_app
        from omnirt.settings import Settings

        server = make_server("127.0.0.1", 0, create_app(Settings(artifact_dir=scratch)), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()

        def stop_embedded() -> None:
            server.shutdown()

        stop_embedded.base = f"http://127.0.0.1:{server.server_port}"  # type: ignore[attr-defined]
        return stop_embedded

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OMNIRT_REDIS_URL": redis_url, "OMNIRT_ARTIFACT_DIR": str(scratch), "OMP_NUM_THREADS": "1"}
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "omnirt.cli", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "omnirt",
                "worker",
                "-Q",
                "omnirt.core.cpu",
                "-c",
                "1",
                "-n",
                f"bench-tts-{port}@%h",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "WARNING",
            ],
            env={**env, "OMNIRT_PRELOAD": "hibari-tts"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        ),
    ]
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)

    def stop_fleet() -> None:
        for child in children:
            os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            child.wait(timeout=30)

    stop_fleet.base = base  # type: ignore[attr-defined]
    return stop_fleet
