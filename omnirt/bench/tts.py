"""``omnirt bench tts``: first-packet latency and real-time factor of a streaming voice, engine alone and through
the API, measured round by round in the same process.

- engine: the warm pipeline's ``synthesize`` generator, time to its first segment;
- API: ``POST /v1/text2audio/stream`` on an embedded server in this process (job, worker thread, events, relay,
  chunked HTTP), time to the first PCM byte at the client.

RTF is synthesis time over audio duration (lower is faster; < 1 is faster than real time).

``compare`` (``omnirt bench tts --compare``) runs the speech packets as they were (one ``audio_chunk`` per
synthesised segment, a whole sentence for hibari, no leading phrase) against today's (packets of at most 40 ms, the
first sentence started as a short leading phrase), alternating round by round on the same warm voice and embedded
server: first packet at the client, when its voice is heard (the first sample above -40 dBFS, for a client that plays
from the first packet on: it must have arrived and playback must have reached it), the engine's first segment, and
the largest HTTP write.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from omnirt.bench.dispatch import summary

TEXTS = (
    "Hello from OmniRT.",
    "Please call me back tomorrow morning at nine.",
    "Open the window and let some fresh air in.",
    "The quick brown fox jumps over the lazy dog.",
)
#: Longer replies, as an assistant speaks them, for ``compare`` (beside :data:`TEXTS`).
REPLIES = (
    "Please call me back tomorrow morning at nine, because the meeting has moved to the afternoon. Thank you.",
    "The children played in the garden until it was dark, and then they came inside for dinner.",
    "We need to finish the report before the end of the day, so let us start with the summary.",
    "Sure. I can book the table for four people at seven tonight, near the window if you like.",
)
VOICED = 328  # -40 dBFS in int16: the first packet a listener hears


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
        list(pipeline.synthesize(text, {"stream": True}, {}))
        session.post(url, json={"text": text, "model": model}, timeout=120).raise_for_status()

    engine_first, api_first, engine_rtf, api_rtf = [], [], [], []
    for index in range(rounds):
        text = TEXTS[index % len(TEXTS)]
        started = time.perf_counter()
        segments = pipeline.synthesize(text, {"stream": True}, {})
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


@contextmanager
def old_packets(pipeline: Any, old: bool) -> Iterator[None]:
    """With ``old``, the voice streams as before packets existed: one ``audio_chunk`` per synthesised segment and no
    leading phrase. Set on the voice's class, so every warm instance in this process (the bench's and the embedded
    server's) follows; restored after."""
    kind = type(pipeline)
    names = [name for name in ("packet_ms", "leading_phrase") if hasattr(kind, name)] if old else []
    saved = {name: kind.__dict__[name] for name in names if name in kind.__dict__}
    for name in names:
        setattr(kind, name, 0 if name == "packet_ms" else False)
    try:
        yield
    finally:
        for name in names:
            if name in saved:
                setattr(kind, name, saved[name])
            else:
                delattr(kind, name)


def compare(model: str = "hibari-tts", rounds: int = 40, *, backend: str = "cpu") -> dict[str, Any]:
    """Old and new speech packets side by side (see the module doc), embedded, in this process."""
    import tempfile
    from pathlib import Path

    import numpy as np
    import requests

    from omnirt.workers.engine import get_default_engine

    pipeline = get_default_engine().pipeline_for(model, backend=backend)
    stop = _start_api(Path(tempfile.mkdtemp(prefix="omnirt-bench-tts-")), None)
    url = f"{stop.base}/v1/text2audio/stream"
    session = requests.Session()
    texts = TEXTS + REPLIES
    arms: dict[str, dict[str, list[float]]] = {
        arm: {"engine": [], "first": [], "voice": [], "largest": [], "writes": []} for arm in ("old", "new")
    }
    rate = pipeline.sample_rate

    def one(arm: str, text: str, record: bool) -> None:
        with old_packets(pipeline, arm == "old"):
            started = time.perf_counter()
            segments = pipeline.synthesize(text, {"stream": True}, {})
            next(segments)
            engine_ms = (time.perf_counter() - started) * 1000
            for _ in segments:
                pass
            started = time.perf_counter()
            first = voice = None
            largest = writes = 0
            with session.post(url, json={"text": text, "model": model}, stream=True, timeout=60) as response:
                response.raise_for_status()
                received = 0  # samples before this chunk
                for chunk in response.raw.read_chunked(decode_content=False):
                    now = (time.perf_counter() - started) * 1000
                    first = now if first is None else first
                    loud = np.flatnonzero(np.abs(np.frombuffer(chunk, "<i2")) > VOICED) if voice is None else []
                    if len(loud):  # heard when it has arrived and playback (from the first packet) reaches it
                        voice = max(now, first + (received + int(loud[0])) / rate * 1000)
                    largest, writes = max(largest, len(chunk)), writes + 1
                    received += len(chunk) // 2
        if record:
            values = arms[arm]
            values["engine"].append(engine_ms)
            values["first"].append(first or 0.0)
            values["voice"].append(voice or first or 0.0)
            values["largest"].append(largest / 2 / rate * 1000)
            values["writes"].append(writes)

    for text in texts:  # warm both arms
        one("old", text, False)
        one("new", text, False)
    for index in range(rounds):
        text = texts[index % len(texts)]
        for arm in ("old", "new") if index % 2 == 0 else ("new", "old"):
            one(arm, text, True)
    stop()
    result: dict[str, Any] = {"model": model, "mode": "embedded", "rounds": rounds, "texts": len(texts)}
    for arm, values in arms.items():
        result[arm] = {
            "engine_first_segment": summary(values["engine"]),
            "api_first_packet": summary(values["first"]),
            "api_voice_heard": summary(values["voice"]),
            "packet_max_ms": round(max(values["largest"]), 1),
            "http_writes_mean": round(sum(values["writes"]) / len(values["writes"]), 1),
        }
    for measure in ("api_first_packet", "api_voice_heard", "engine_first_segment"):
        old, new = result["old"][measure]["p50_ms"], result["new"][measure]["p50_ms"]
        result[f"{measure}_p50_new_over_old"] = round(new / old, 3) if old else None
    result["packet_max_new_over_old"] = round(result["new"]["packet_max_ms"] / result["old"]["packet_max_ms"], 4)
    return result


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
