"""``omnirt bench photoreal``: what one frame of the photoreal avatar costs on one core, JPEG encoding included,
beside the removed ellipse avatar's renderer as the baseline, both run here in the same process on the same portrait.

The baseline is the renderer ``reference-avatar`` used until the photoreal avatar replaced it: the fitted portrait
copied, a dark ellipse drawn over the mouth with an outline, JPEG-encoded. It lives here only as the yardstick.

Both render the same speech-like audio (a voiced tone with a 3 Hz syllable envelope) chunk by chunk at the session
size (default 416x704, 25 fps, 28-frame chunks), pinned to one torch/OpenCV thread; rounds alternate between the two
so that drift on the machine falls on both. Reported: ms per frame (p50 over rounds) for each, their ratio, and the
frames per second one core sustains (how many 25 fps sessions one core carries at most).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from omnirt.avatars.face import detect_face, require_cv2
from omnirt.avatars.media import SessionSpec
from omnirt.avatars.session import fit_frame
from omnirt.avatars.store import default_portrait


class EllipseBaseline:
    """The removed ``reference-avatar`` renderer: an ellipse drawn over the mouth, opened by the loudness."""

    def __init__(self, spec: SessionSpec, portrait: np.ndarray) -> None:
        cv2 = require_cv2()
        self.spec = spec
        self.base = fit_frame(portrait, spec.width, spec.height)[0]
        x, y, w, h = detect_face(self.base) or (spec.width // 4, spec.height // 4, spec.width // 2, spec.width // 2)
        self.center = (x + w // 2, y + int(h * 0.8))
        self.half_width, self.max_open = max(4, int(w * 0.2)), max(3, int(h * 0.12))
        self.params = [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality]

    def render(self, pcm: np.ndarray) -> list[bytes]:
        cv2 = require_cv2()
        frames = []
        per_frame = len(pcm) // self.spec.slice_len
        for index in range(self.spec.slice_len):
            window = pcm[index * per_frame : (index + 1) * per_frame].astype(np.float32) / 32768
            level = float(np.clip((20 * np.log10(max(float(np.sqrt(np.mean(window**2))), 1e-6)) + 45) / 33, 0, 1))
            frame = self.base.copy()
            opening = max(1, int(self.max_open * level))
            cv2.ellipse(frame, self.center, (self.half_width, opening), 0, 0, 360, (40, 15, 20), -1, cv2.LINE_AA)
            cv2.ellipse(frame, self.center, (self.half_width, max(2, opening)), 0, 0, 360, (120, 70, 70), 3)
            frames.append(cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), self.params)[1].tobytes())
        return frames


def _speech(samples: int) -> np.ndarray:
    t = np.arange(samples) / 16000
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (np.sin(2 * np.pi * 180 * t) * envelope * 12000).astype(np.int16)


def _ms_per_frame(session: Any, audio: np.ndarray, chunks: int, size: int) -> float:
    frames = 0
    started = time.perf_counter()
    for index in range(chunks):
        frames += len(session.render(audio[index * size : (index + 1) * size]))
    return (time.perf_counter() - started) * 1000 / frames


def run(*, width: int = 416, height: int = 704, rounds: int = 5, chunks: int = 4) -> dict[str, Any]:
    import torch

    from omnirt.avatars.photoreal import PhotorealSession, portrait_landmarks

    cv2 = require_cv2()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    spec = SessionSpec(model="photoreal-avatar", width=width, height=height)
    portrait = default_portrait()
    started = time.perf_counter()
    points = portrait_landmarks(portrait)["points"]
    prepare_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    PhotorealSession(spec, portrait, points)
    open_ms = (time.perf_counter() - started) * 1000
    audio = _speech(spec.chunk_samples * chunks)
    timings: dict[str, list[float]] = {"photoreal": [], "ellipse": []}
    for _ in range(rounds):
        for name, session in (
            ("photoreal", PhotorealSession(spec, portrait, points)),
            ("ellipse", EllipseBaseline(spec, portrait)),
        ):
            timings[name].append(_ms_per_frame(session, audio, chunks, spec.chunk_samples))
    photoreal, ellipse = (statistics.median(timings[name]) for name in ("photoreal", "ellipse"))
    return {
        "size": f"{width}x{height}",
        "fps": spec.fps,
        "threads": 1,
        "frames_per_round": chunks * spec.slice_len,
        "rounds": rounds,
        "photoreal_ms_per_frame": round(photoreal, 3),
        "ellipse_ms_per_frame": round(ellipse, 3),
        "photoreal_vs_ellipse": round(photoreal / ellipse, 2),
        "photoreal_sessions_per_core": int(1000 / (photoreal * spec.fps)),
        "prepare_ms": round(prepare_ms, 1),
        "open_prepared_ms": round(open_ms, 1),
    }
