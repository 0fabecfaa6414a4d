"""The per-worker frame scheduler: one model call per step for all the sessions a process serves.

Each session asks for the frames it needs next (its audio window, the frame indices, the rows of its avatar's
prepared inputs) and waits. A scheduler thread (a *lane*) takes frames round-robin across the waiting sessions, one
frame from each in turn, up to the network's batch cap, so a session with a long backlog never holds back one that
needs a few frames. It computes each session's audio features, stacks everything into one batch, runs ``render``
once and hands every session its crops.

A process may run several lanes (``OMNIRT_FRAME_LANES``, see :func:`set_frame_lanes`): each makes its own model
calls on its own core, and the waiting frames are shared out between the idle lanes, so one session's chunk is
rendered on every lane at once. Small convolutions scale far better this way than with more threads inside one call.

It also measures what it sustains: seconds of model time per frame (from real batches) plus the seconds the
sessions spend pasting and encoding each frame. Admission asks it whether one more session at ``fps`` still fits.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omnirt.avatars.lipsync import LipSyncNetwork

log = logging.getLogger(__name__)

EWMA = 0.2  # weight of the newest measurement


@dataclass
class FrameRequest:
    """Frames one session needs now."""

    owner: int
    audio: np.ndarray
    start_sample: int
    frames: list[int]
    rows: list[int]
    inputs: dict[str, np.ndarray]
    fps: int
    crops: list[np.ndarray | None] = field(default_factory=list)
    taken: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.crops = [None] * len(self.frames)


class FrameScheduler:
    """Batches frame requests for one network across every session of this process."""

    def __init__(self, network: LipSyncNetwork, *, batch_cap: int | None = None, lanes: int = 1) -> None:
        self.network = network
        self.batch_cap = max(1, int(batch_cap or network.batch_cap))
        self.lanes = max(1, int(lanes))
        self._idle_lanes = self.lanes
        self._pending: deque[FrameRequest] = deque()
        self._wake = threading.Condition()
        self._sessions: dict[int, float] = {}  # owner -> fps
        self.render_s_per_frame: float | None = None
        self.post_s_per_frame: float | None = None
        self.batches = 0
        self.frames_rendered = 0
        self.batch_sizes: deque[int] = deque(maxlen=256)
        self._threads = [
            threading.Thread(target=self._loop, name=f"omnirt-frame-lane-{lane}", daemon=True)
            for lane in range(self.lanes)
        ]
        for thread in self._threads:
            thread.start()

    # -- sessions ----------------------------------------------------------------------------------------------
    def attach(self, owner: int, fps: float) -> None:
        with self._wake:
            self._sessions[owner] = fps

    def detach(self, owner: int) -> None:
        with self._wake:
            self._sessions.pop(owner, None)

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    def load_fps(self) -> float:
        return float(sum(self._sessions.values()))

    def capacity_fps(self) -> float | None:
        """Frames per second this process sustains, once measured: model time plus paste and encode per frame,
        spread over the lanes (each lane is one core's worth of work)."""
        if self.render_s_per_frame is None:
            return None
        return self.lanes / (self.render_s_per_frame + (self.post_s_per_frame or 0.0))

    def admits(self, fps: float) -> bool:
        """Whether one more session at ``fps`` fits beside the ones attached (the first always does)."""
        capacity = self.capacity_fps()
        if capacity is None or not self._sessions:
            return True
        return self.load_fps() + fps <= capacity

    def note_post(self, seconds: float, frames: int) -> None:
        if frames:
            self.post_s_per_frame = _ewma(self.post_s_per_frame, seconds / frames)

    # -- rendering ---------------------------------------------------------------------------------------------
    def render(
        self,
        owner: int,
        *,
        audio: np.ndarray,
        start_sample: int,
        frames: Sequence[int],
        rows: Sequence[int],
        inputs: dict[str, np.ndarray],
        fps: int,
    ) -> list[np.ndarray]:
        """Face crops (S, S, 3) uint8 RGB for ``frames``, rendered in shared batches; blocks until done."""
        if not frames:
            return []
        request = FrameRequest(owner, audio, start_sample, list(frames), list(rows), inputs, fps)
        with self._wake:
            self._pending.append(request)
            self._wake.notify()
        request.done.wait()
        if request.error is not None:
            raise request.error
        return [crop for crop in request.crops if crop is not None]

    def _next_batch(self) -> list[tuple[FrameRequest, list[int]]]:
        """Round-robin: one frame from each waiting request in turn, up to the batch cap, and no more than this
        lane's share of the waiting frames when other lanes are idle."""
        picks: dict[int, tuple[FrameRequest, list[int]]] = {}
        waiting = sum(len(request.frames) - request.taken for request in self._pending)
        budget = min(self.batch_cap, -(-waiting // max(1, self._idle_lanes)))
        while budget and self._pending:
            progressed = False
            for request in list(self._pending):
                if not budget:
                    break
                if request.taken < len(request.frames):
                    picks.setdefault(id(request), (request, []))[1].append(request.taken)
                    request.taken += 1
                    budget -= 1
                    progressed = True
                if request.taken >= len(request.frames):
                    self._pending.remove(request)
            if not progressed:
                break
        # Rotate, so that the request served first this time is not first next time.
        if self._pending:
            self._pending.rotate(-1)
        return list(picks.values())

    def _loop(self) -> None:
        import torch

        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                batch = self._next_batch()
                self._idle_lanes -= 1
                if self._pending:
                    self._wake.notify()  # frames are left: another idle lane takes them
            started = time.perf_counter()
            try:
                features, inputs = [], []
                for request, positions in batch:
                    frames = [request.frames[position] for position in positions]
                    features.append(
                        self.network.audio_features(request.audio, request.start_sample, frames, request.fps)
                    )
                    rows = [request.rows[position] for position in positions]
                    inputs.append({name: array[rows] for name, array in request.inputs.items()})
                stacked = {name: np.concatenate([part[name] for part in inputs]) for name in inputs[0]}
                crops = self.network.render(torch.cat(features) if len(features) > 1 else features[0], stacked)
            except BaseException as exc:
                log.exception("frame batch failed")
                with self._wake:
                    self._idle_lanes += 1
                    for request, _ in batch:
                        request.error = exc
                        request.done.set()
                continue
            count = sum(len(positions) for _, positions in batch)
            with self._wake:
                self._idle_lanes += 1
                self.render_s_per_frame = _ewma(self.render_s_per_frame, (time.perf_counter() - started) / count)
                self.batches += 1
                self.frames_rendered += count
                self.batch_sizes.append(count)
                offset = 0
                for request, positions in batch:
                    for position in positions:
                        request.crops[position] = crops[offset]
                        offset += 1
                    if all(crop is not None for crop in request.crops):
                        request.done.set()

    def describe(self) -> dict[str, Any]:
        capacity = self.capacity_fps()
        return {
            "sessions": self.sessions,
            "load_fps": round(self.load_fps(), 2),
            "capacity_fps": round(capacity, 2) if capacity is not None else None,
            "batch_cap": self.batch_cap,
            "lanes": self.lanes,
            "batches": self.batches,
            "frames": self.frames_rendered,
            "mean_batch": round(sum(self.batch_sizes) / len(self.batch_sizes), 2) if self.batch_sizes else None,
        }


def _ewma(previous: float | None, value: float) -> float:
    return value if previous is None else previous + (value - previous) * EWMA


_SCHEDULERS: weakref.WeakKeyDictionary[LipSyncNetwork, FrameScheduler] = weakref.WeakKeyDictionary()
_MODELS: dict[str, weakref.ReferenceType[FrameScheduler]] = {}
_LOCK = threading.Lock()
_LANES = [1]


def set_frame_lanes(lanes: int) -> None:
    """How many lanes the schedulers this process creates from now on run (the worker sets it at start)."""
    with _LOCK:
        _LANES[0] = max(1, int(lanes))


def scheduler_for(network: LipSyncNetwork, model: str) -> FrameScheduler:
    """This process's scheduler for ``network`` (one per loaded network)."""
    with _LOCK:
        scheduler = _SCHEDULERS.get(network)
        if scheduler is None:
            scheduler = _SCHEDULERS[network] = FrameScheduler(network, lanes=_LANES[0])
        _MODELS[model] = weakref.ref(scheduler)
        return scheduler


def scheduler_of(model: str) -> FrameScheduler | None:
    """The scheduler serving ``model`` in this process, if it has loaded it."""
    with _LOCK:
        reference = _MODELS.get(model)
    return reference() if reference is not None else None


def describe_schedulers() -> dict[str, dict[str, Any]]:
    with _LOCK:
        models = dict(_MODELS)
    return {model: scheduler.describe() for model, ref in models.items() if (scheduler := ref()) is not None}
