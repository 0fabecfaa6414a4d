"""``omnirt bench lipsync``: the lip-sync figures of one model, side by side in one run.

- **network**: ms per frame of the network at batch 16 with the bundled portrait, plain fp32 eager (upstream's way)
  beside OmniRT's path on the same weights (bf16 autocast where the CPU has it, channels_last, inference mode);
- **batching**: frames/s of N = 1, 2, 4, 8 concurrent streaming sessions (40 ms audio pieces) on one core, through
  one shared frame scheduler, beside the same N sessions each calling the model alone (one scheduler per session,
  as before the shared scheduler);
- **prepare**: storing a 512x512 portrait as an avatar and preparing it for the model, then opening a session on
  the prepared avatar.

Weights: ``--weights`` (a folder or file), else ``omnirt make-tiny`` output (Wav2Lip at real size, random weights).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

BATCH = 16


def _timed(work: Any, seconds: float) -> float:
    """Seconds per call of ``work``, over at least ``seconds`` (after one warm-up call)."""
    work()
    calls, started = 0, time.perf_counter()
    while True:
        work()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and calls >= 3:
            return elapsed / calls


def _portrait(side: int = 512) -> np.ndarray:
    import cv2

    from omnirt.avatars.store import default_portrait

    return cv2.resize(default_portrait(), (side, side), interpolation=cv2.INTER_AREA)


def _eager_fp32(model: str, weights: str, features: Any, inputs: dict[str, np.ndarray]) -> Any:
    """Wav2Lip as upstream runs it: the published module in fp32, eager, under ``no_grad``; None for other models."""
    if not model.startswith("wav2lip"):
        return None
    import torch

    from omnirt.models.wav2lip import load_network

    module = load_network(weights).eval()
    faces = torch.from_numpy(np.ascontiguousarray(inputs["faces"])).permute(0, 3, 1, 2).float() / 255.0
    masked = faces.clone()
    masked[:, :, faces.shape[2] // 2 :] = 0.0
    stacked = torch.cat((masked, faces), dim=1)
    mels = features.float()

    def render() -> Any:
        with torch.no_grad():
            return module(mels, stacked)

    return render


def run(*, model: str = "wav2lip", device: str = "cpu", weights: str | None = None, seconds: float = 3.0) -> dict:
    import torch

    from omnirt.avatars.media import SessionSpec
    from omnirt.avatars.scheduler import FrameScheduler
    from omnirt.avatars.session import LipSyncSession, SessionAvatar
    from omnirt.avatars.store import AvatarIndex, AvatarStore, face_boxes
    from omnirt.registry.registry import ensure_models_loaded
    from omnirt.workers.engine import Engine

    ensure_models_loaded()
    root = Path(tempfile.mkdtemp())
    if weights is None:
        from omnirt.models.tiny_common import make_tiny

        weights = str(make_tiny(model, root / "models" / model))
    pipeline = Engine(models_dir=root / "models").pipeline_for(model, backend=device, model_path=weights)
    network = pipeline.network
    spec = SessionSpec(model=model, chunked=True)
    portrait = _portrait()
    layout = SessionAvatar.build(network, [portrait], face_boxes([portrait], None, "the portrait"), 416, 704)
    rows = [0] * BATCH
    audio = np.random.default_rng(0).normal(0, 0.1, 16000 * 2).astype(np.float32)
    frames = list(range(10, 10 + BATCH))
    features = network.audio_features(audio, 0, frames, 25)
    inputs = {name: array[rows] for name, array in layout.inputs.items()}
    result: dict[str, Any] = {"model": model, "device": device, "weights": weights, "network": network.describe()}

    # -- network: fp32 eager beside OmniRT's path ----------------------------------------------------------------
    omnirt_s = _timed(lambda: network.render(features, inputs), seconds) / BATCH
    baseline = _eager_fp32(model, weights, features, inputs)
    figures: dict[str, Any] = {"batch": BATCH, "omnirt_ms_per_frame": round(omnirt_s * 1000, 2)}
    if baseline is not None:
        eager_s = _timed(baseline, seconds) / BATCH
        figures["fp32_eager_ms_per_frame"] = round(eager_s * 1000, 2)
        figures["speedup"] = round(eager_s / omnirt_s, 2)
    figures["torch_threads"] = torch.get_num_threads()
    result["network"] = {**result["network"], **figures}

    # -- batching: N streaming sessions on one core, batched together beside each calling the model alone ------
    # Sessions stream 40 ms of audio at a time (the native protocol with a streaming voice), so each one has about
    # a frame to render per call. The process is pinned to one core for this part: one worker process's share.
    piece = (np.random.default_rng(1).normal(0, 0.2, spec.sample_rate // spec.fps) * 32767 * 0.3).astype(np.int16)
    streaming = SessionSpec(model=model, chunked=False)

    def sessions_fps(count: int, shared: bool) -> tuple[float, float | None]:
        """(frames/s of all sessions together, mean frames per model call of the shared scheduler)"""
        scheduler = FrameScheduler(network) if shared else None
        done = [0] * count
        stop = time.perf_counter() + seconds

        def one(index: int) -> None:
            session = LipSyncSession(streaming, network, scheduler or FrameScheduler(network), layout)
            while time.perf_counter() < stop:
                done[index] += len(session.render(piece))
            session.close()

        started = time.perf_counter()
        threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        fps = sum(done) / (time.perf_counter() - started)
        return fps, scheduler.describe()["mean_batch"] if scheduler else None

    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    batching: dict[str, Any] = {"audio_piece_ms": 1000 // spec.fps, "cores": 1}
    try:
        for count in (1, 2, 4, 8):
            (alone, _), (shared, mean_batch) = sessions_fps(count, False), sessions_fps(count, True)
            batching[str(count)] = {
                "separate_fps": round(alone, 1),
                "batched_fps": round(shared, 1),
                "ratio": round(shared / alone, 2),
                "mean_batch": mean_batch,
            }
    finally:
        os.sched_setaffinity(0, cores)
    result["batching"] = batching

    # -- prepare: store and prepare a 512x512 portrait; open a session on it --------------------------------------
    import cv2

    store = AvatarStore(root / "avatars", AvatarIndex(), max_video_bytes=2**26)
    png = cv2.imencode(".png", cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))[1].tobytes()
    started = time.perf_counter()
    avatar, _ = store.add(png, kind="image")
    stored = time.perf_counter()
    session_spec = SessionSpec(model=model, avatar_id=avatar.id)
    pipeline.open_session(session_spec, None, store).close()
    prepared = time.perf_counter()
    opens = []
    for _ in range(5):
        began = time.perf_counter()
        pipeline.open_session(session_spec, None, store).close()
        opens.append((time.perf_counter() - began) * 1000)
    result["prepare"] = {
        "store_ms": round((stored - started) * 1000, 1),
        "prepare_total_ms": round((prepared - started) * 1000, 1),
        "open_prepared_session_ms_p50": round(sorted(opens)[len(opens) // 2], 1),
    }
    result["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    return result
