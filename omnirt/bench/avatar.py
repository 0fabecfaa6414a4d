"""``omnirt bench avatar``: realtime avatar figures for one avatar model on an embedded server in this process.

``--model`` picks the model (default the photoreal avatar), ``--device`` the backend, ``--weights`` a weights folder
(default: ``omnirt make-tiny`` output in a temporary folder, which for Wav2Lip is the real-size network with random
weights), ``--sessions`` the most concurrent sessions tried. Sessions use the bundled portrait as their avatar.

- TTFF: ``init`` sent until the first ``VIDX`` arrives (FlashTalk protocol, first chunk sent as soon as ``init_ok``
  arrives), fresh session each round, warm model, the portrait prepared once in the warm-up round; ``ttff_native``
  is the same on the native protocol (``session.create`` .. first ``VIDX``);
- open: ``init`` (with the portrait, already prepared) sent until ``init_ok`` arrives;
- per-chunk latency: ``AUDI`` sent until its ``VIDX`` arrives, against the chunk's duration (FlashTalk defaults:
  28 frames of 416x704 at 25 fps, 1.12 s of audio);
- concurrent sessions: N clients each sending chunks at real-time pace; N keeps real time when every chunk of every
  session comes back within its own duration. N goes up until one does not, or to ``max_sessions``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import replace
from typing import Any

from omnirt.bench.dispatch import summary
from omnirt.settings import Settings

CHUNK_SECONDS = 28 / 25


def _speech_like(samples: int) -> bytes:
    import numpy as np

    t = np.arange(samples) / 16000
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (np.sin(2 * np.pi * 180 * t) * envelope * 12000).astype("<i2").tobytes()


def _portrait_b64() -> str:
    import base64

    import cv2

    from omnirt.avatars.store import default_portrait

    return base64.b64encode(cv2.imencode(".png", cv2.cvtColor(default_portrait(), cv2.COLOR_RGB2BGR))[1]).decode()


def _weights(model: str, weights: str | None, root: Any) -> None:
    """Point the models dir at ``weights`` for ``model`` (or at a fresh make-tiny copy)."""
    from omnirt.registry.registry import get_model

    if get_model(model, "audio2video").weightless:
        return
    models = root / "models"
    models.mkdir()
    if weights:
        (models / model).symlink_to(os.path.abspath(weights))
    else:
        from omnirt.models.tiny_common import make_tiny

        make_tiny(model, models / model)
    os.environ.update(Settings.as_environment({"models_dir": models}))


def run(
    rounds: int = 10,
    chunks: int = 10,
    max_sessions: int = 8,
    pace_chunks: int = 5,
    *,
    model: str = "photoreal-avatar",
    device: str = "auto",
    weights: str | None = None,
) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    from simple_websocket import Client
    from werkzeug.serving import make_server

    from omnirt.api import create_app
    from omnirt.registry.registry import ensure_models_loaded

    if not Settings.is_set("session_capacity"):  # the operator's OMNIRT_SESSION_CAPACITY wins
        os.environ.update(Settings.as_environment({"session_capacity": max_sessions}))
    if device != "auto":
        os.environ.update(Settings.as_environment({"backend": device}))

    ensure_models_loaded()
    root = Path(tempfile.mkdtemp())
    _weights(model, weights, root)
    portrait = _portrait_b64()
    settings = replace(Settings.from_env(), artifact_dir=root / "outputs")
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"ws://127.0.0.1:{server.server_port}"
    audio = _speech_like(17920)

    def open_native() -> tuple[Any, float]:
        ws = Client.connect(f"{base}/v1/avatar/realtime", max_message_size=2**26)
        started = time.perf_counter()
        ws.send(json.dumps({"type": "session.create", "model": model, "inputs": {"image_b64": portrait}}))
        created = json.loads(ws.receive(timeout=300))
        if created.get("type") != "session.created":
            raise RuntimeError(created)
        ws.send(b"AUDI" + audio)
        json.loads(ws.receive(timeout=60))  # metrics
        ws.receive(timeout=60)  # VIDX
        return ws, (time.perf_counter() - started) * 1000

    opened: list[float] = []  # init .. init_ok, the avatar already prepared after the first

    def open_flashtalk() -> tuple[Any, float]:
        ws = Client.connect(f"{base}/v1/audio2video/{model}", max_message_size=2**26)
        started = time.perf_counter()
        ws.send(json.dumps({"type": "init", "ref_image": portrait}))
        answer = json.loads(ws.receive(timeout=300))
        if answer.get("type") != "init_ok":
            ws.close()  # the server's socket thread ends with it, so the process can exit
            raise RuntimeError(answer)
        opened.append((time.perf_counter() - started) * 1000)
        ws.send(b"AUDI" + audio)
        ws.receive(timeout=60)  # VIDX
        return ws, (time.perf_counter() - started) * 1000

    def first_frames(opener: Any) -> list[float]:
        warm, _ = opener()  # loads the model and prepares the portrait
        warm.close()
        times = []
        for _ in range(rounds):
            ws, elapsed = opener()
            times.append(elapsed)
            ws.close()
        return times

    ttff, ttff_native = first_frames(open_flashtalk), first_frames(open_native)

    ws, _ = open_native()
    chunk_ms = []
    for _ in range(chunks):
        started = time.perf_counter()
        ws.send(b"AUDI" + audio)
        json.loads(ws.receive(timeout=60))
        ws.receive(timeout=60)
        chunk_ms.append((time.perf_counter() - started) * 1000)
    ws.close()

    concurrency: dict[int, float] = {}
    for sessions in range(1, max_sessions + 1):
        worst = _paced(base, audio, sessions, pace_chunks, model, portrait)
        concurrency[sessions] = round(worst, 1)
        if worst > CHUNK_SECONDS * 1000:
            break
    server.shutdown()
    chunk_summary = summary(chunk_ms)
    real_time = [n for n, worst in concurrency.items() if worst <= CHUNK_SECONDS * 1000]
    return {
        "ttff": summary(ttff),
        "ttff_native": summary(ttff_native),
        "open_prepared_session": summary(opened[1:]),
        "chunk_latency": chunk_summary,
        "chunk_duration_ms": round(CHUNK_SECONDS * 1000, 1),
        "chunk_work_over_duration_p50": round(chunk_summary["p50_ms"] / (CHUNK_SECONDS * 1000), 4),
        "worst_chunk_ms_by_sessions": concurrency,
        "max_real_time_sessions": max(real_time) if real_time else 0,
        "max_sessions_tried": max(concurrency),
        "frame": {"width": 416, "height": 704, "frames_per_chunk": 28, "fps": 25},
        "model": model,
        "device": device,
        "weights": weights or "make-tiny (random)",
        "torch_threads": settings.torch_threads,
        "frame_lanes": settings.lanes(),
    }


def _paced(base: str, audio: bytes, sessions: int, chunks: int, model: str, portrait: str) -> float:
    """Worst AUDI -> VIDX latency over ``sessions`` concurrent real-time clients (ms)."""
    from simple_websocket import Client

    worst = [0.0] * sessions
    ready = threading.Barrier(sessions)

    def client(index: int) -> None:
        ws = Client.connect(f"{base}/v1/audio2video/{model}", max_message_size=2**26)
        ws.send(json.dumps({"type": "init", "ref_image": portrait}))
        json.loads(ws.receive(timeout=300))
        ready.wait(timeout=60)
        next_send = time.perf_counter()
        for _ in range(chunks):
            time.sleep(max(0.0, next_send - time.perf_counter()))
            started = time.perf_counter()
            ws.send(b"AUDI" + audio)
            ws.receive(timeout=60)
            worst[index] = max(worst[index], (time.perf_counter() - started) * 1000)
            next_send += CHUNK_SECONDS
        ws.send(json.dumps({"type": "close"}))
        ws.receive(timeout=30)
        ws.close()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return max(worst)
