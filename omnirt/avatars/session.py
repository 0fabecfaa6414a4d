"""A lip-sync session: streaming audio in, frames of a prepared avatar out, rendered through the frame scheduler.

The session keeps the audio it has received (trimmed to the left context the network needs), and knows which
video frame comes next. Frame ``i`` shows the audio at ``i / fps`` seconds; it can be rendered once the audio
reaches ``audio_context_s[1]`` seconds past it (the lookahead), or when the stream is flushed, in which case the
missing right context is silence. Chunked sessions (the FlashTalk protocol) flush after every chunk, so each chunk
is answered with exactly its own frames.

Rendered crops are pasted into the avatar's template frame (forward then backward through an idle video) with a
feathered mask and JPEG-encoded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from omnirt.avatars.face import BlendMask, Box, crop_box, cut, paste, require_cv2
from omnirt.avatars.lipsync import SAMPLE_RATE, LipSyncNetwork
from omnirt.avatars.media import AvatarSession, SessionSpec
from omnirt.avatars.scheduler import FrameScheduler
from omnirt.avatars.store import Avatar

PREPARE_BATCH = 16  # template frames prepared per network call


def fit_frame(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float, int, int]:
    """Scale to cover ``width`` x ``height`` and crop (centred across, the upper part kept down).

    Returns (frame, scale, left, top), the crop offsets in scaled pixels."""
    cv2 = require_cv2()
    scale = max(width / frame.shape[1], height / frame.shape[0])
    size = (max(width, round(frame.shape[1] * scale)), max(height, round(frame.shape[0] * scale)))
    resized = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    left = (resized.shape[1] - width) // 2
    top = min((resized.shape[0] - height) // 3, resized.shape[0] - height)
    return resized[top : top + height, left : left + width].copy(), scale, left, top


@dataclass
class SessionAvatar:
    """An avatar laid out for one session size and one network: frames, crop boxes, the network's inputs."""

    avatar: Avatar | None
    frames: list[np.ndarray]
    boxes: list[Box]
    inputs: dict[str, np.ndarray]
    cache_hit: bool

    def template(self, frame: int) -> int:
        if self.avatar is not None:
            return self.avatar.template_index(frame)
        return 0

    @classmethod
    def layout(
        cls, frames: list[np.ndarray], face_boxes: list[list[int]], width: int, height: int
    ) -> tuple[list[np.ndarray], list[Box]]:
        """Frames fitted to the session size and the crop box of each, in session pixels."""
        fitted, boxes = [], []
        for frame, (x, y, w, h) in zip(frames, face_boxes, strict=True):
            image, scale, left, top = fit_frame(frame, width, height)
            face = (round(x * scale) - left, round(y * scale) - top, round(w * scale), round(h * scale))
            fitted.append(image)
            boxes.append(crop_box(face, width, height))
        return fitted, boxes

    @classmethod
    def build(
        cls,
        network: LipSyncNetwork,
        frames: list[np.ndarray],
        face_boxes: list[list[int]],
        width: int,
        height: int,
        *,
        avatar: Avatar | None = None,
        cached: Any = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> SessionAvatar:
        """Lay the avatar out; the network's inputs come from ``cached(compute)`` (the store) or are computed,
        ``PREPARE_BATCH`` template frames at a time, each batch reported to ``progress(index, total)``."""
        fitted, boxes = cls.layout(frames, face_boxes, width, height)

        def compute() -> dict[str, np.ndarray]:
            crops = np.stack([cut(frame, box, network.face_size) for frame, box in zip(fitted, boxes, strict=True)])
            starts = range(0, len(crops), PREPARE_BATCH)
            parts = []
            for index, start in enumerate(starts):
                parts.append(network.prepare_frames(crops[start : start + PREPARE_BATCH]))
                if progress is not None:
                    progress(index, len(starts))
            return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

        if cached is not None:
            inputs, hit = cached(compute)
        else:
            inputs, hit = compute(), False
        return cls(avatar, fitted, boxes, inputs, hit)


class LipSyncSession(AvatarSession):
    """One realtime session on a lip-sync network (see the module docstring)."""

    def __init__(self, spec: SessionSpec, network: LipSyncNetwork, scheduler: FrameScheduler, avatar: SessionAvatar):
        self.spec, self.network, self.scheduler, self.avatar = spec, network, scheduler, avatar
        self.samples_per_frame = spec.sample_rate / spec.fps
        left_s, right_s = network.audio_context_s
        self.left = math.ceil(left_s * SAMPLE_RATE)
        self.right = math.ceil(right_s * SAMPLE_RATE)
        self.audio = np.zeros(0, np.float32)
        self.audio_start = 0  # absolute index of self.audio[0]
        self.received = 0  # absolute samples received
        self.next_frame = 0
        self.masks: dict[int, BlendMask] = {}
        self.scheduler.attach(id(self), spec.fps)

    @property
    def lookahead_frames(self) -> int:
        return 0 if self.spec.chunked else math.ceil(self.right / self.samples_per_frame)

    def render(self, pcm: np.ndarray) -> list[bytes]:
        """Take int16 PCM; return the JPEG frames that are now complete (all covered frames when chunked)."""
        self._append(np.asarray(pcm, dtype=np.int16).astype(np.float32) / 32768.0)
        if self.spec.chunked:
            return self._emit(int(self.received // self.samples_per_frame))
        ready = int((self.received - self.right) // self.samples_per_frame) + 1
        return self._emit(min(ready, int(self.received // self.samples_per_frame)))

    def flush(self) -> list[bytes]:
        """Every frame the audio received so far covers (the last one padded with silence)."""
        last = math.ceil(self.received / self.samples_per_frame)
        frames = self._emit(last)
        boundary = round(last * self.samples_per_frame)
        if boundary > self.received:  # keep audio and video aligned: the rest of that frame is silence
            self._append(np.zeros(boundary - self.received, np.float32))
        return frames

    def _append(self, samples: np.ndarray) -> None:
        self.audio = np.concatenate([self.audio, samples])
        self.received += len(samples)

    def _window(self, first: int, last: int) -> tuple[np.ndarray, int]:
        """Audio covering frames ``first..last`` with the network's context; silence outside what was received."""
        start = math.floor(first * self.samples_per_frame) - self.left - 1
        end = math.ceil(last * self.samples_per_frame) + self.right + 1
        window = np.zeros(end - start, np.float32)
        lo, hi = max(start, self.audio_start), min(end, self.received)
        if hi > lo:
            window[lo - start : hi - start] = self.audio[lo - self.audio_start : hi - self.audio_start]
        return window, start

    def _emit(self, until: int) -> list[bytes]:
        if until <= self.next_frame:
            return []
        frames = list(range(self.next_frame, until))
        window, start = self._window(frames[0], frames[-1])
        templates = [self.avatar.template(frame) for frame in frames]
        crops = self.scheduler.render(
            id(self),
            audio=window,
            start_sample=start,
            frames=frames,
            rows=templates,
            inputs=self.avatar.inputs,
            fps=self.spec.fps,
        )
        started = time.perf_counter()
        jpegs = [self._compose(template, crop) for template, crop in zip(templates, crops, strict=True)]
        self.scheduler.note_post(time.perf_counter() - started, len(jpegs))
        self.next_frame = until
        keep_from = math.floor(until * self.samples_per_frame) - self.left - 2
        if keep_from > self.audio_start:
            self.audio = self.audio[keep_from - self.audio_start :]
            self.audio_start = keep_from
        return jpegs

    def _compose(self, template: int, crop: np.ndarray) -> bytes:
        cv2 = require_cv2()
        box = self.avatar.boxes[template]
        mask = self.masks.get(box[2])
        if mask is None:
            mask = self.masks[box[2]] = BlendMask.for_side(box[2])
        frame = self.avatar.frames[template].copy()
        paste(frame, crop, box, mask)
        _ok, encoded = cv2.imencode(
            ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.spec.jpeg_quality]
        )
        return encoded.tobytes()

    def describe(self) -> dict[str, Any]:
        return {
            "lookahead_frames": self.lookahead_frames,
            "lookahead_ms": round(self.lookahead_frames * 1000 / self.spec.fps),
            "preprocessed": self.avatar.cache_hit,
            "avatar_id": self.avatar.avatar.id if self.avatar.avatar else None,
            "template_frames": len(self.avatar.frames),
        }

    def close(self) -> None:
        self.scheduler.detach(id(self))
