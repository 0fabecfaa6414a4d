"""The per-worker frame scheduler: shared batches, fairness, lanes, measured admission, failures.

The network here is a small deterministic one written for the test (the scheduler's contract is the
``LipSyncNetwork`` interface): each output crop carries the frame index it was asked for and the avatar row it
was given, so every test can check that each session got exactly its own frames, in order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch

from omnirt.avatars.lipsync import LipSyncNetwork
from omnirt.avatars.scheduler import FrameScheduler

SIZE = 4


class EchoNetwork(LipSyncNetwork):
    """Crop pixel (0, 0) = frame index % 256, pixel (0, 1) = avatar row; records each call's batch size."""

    face_size = SIZE
    audio_context_s = (0.0, 0.0)

    def __init__(self, *, batch_cap: int = 16, delay_s: float = 0.0, fail_on: int | None = None) -> None:
        self.batch_cap = batch_cap
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.calls: list[int] = []
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def prepare_frames(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        return {"rows": np.arange(len(crops), dtype=np.int64)}

    def audio_features(self, audio: np.ndarray, start_sample: int, frames: Sequence[int], fps: int) -> Any:
        return torch.tensor(list(frames), dtype=torch.int64)

    def render(self, features: Any, frame_inputs: dict[str, np.ndarray]) -> np.ndarray:
        with self._lock:
            self.calls.append(len(features))
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if self.delay_s:
                time.sleep(self.delay_s * len(features))
            if self.fail_on is not None and self.fail_on in features.tolist():
                raise RuntimeError(f"frame {self.fail_on} broke the batch")
            crops = np.zeros((len(features), SIZE, SIZE, 3), np.uint8)
            crops[:, 0, 0, 0] = features.numpy() % 256
            crops[:, 0, 1, 0] = frame_inputs["rows"]
            return crops
        finally:
            with self._lock:
                self.active -= 1


def ask(scheduler: FrameScheduler, owner: int, frames: Sequence[int], row: int = 0) -> list[np.ndarray]:
    rows = np.arange(8, dtype=np.int64)
    return scheduler.render(
        owner,
        audio=np.zeros(16000, np.float32),
        start_sample=0,
        frames=list(frames),
        rows=[row] * len(frames),
        inputs={"rows": rows},
        fps=25,
    )


def frames_of(crops: list[np.ndarray]) -> list[int]:
    return [int(crop[0, 0, 0]) for crop in crops]


def concurrently(*work: Any) -> list[Any]:
    results: list[Any] = [None] * len(work)

    def run(index: int) -> None:
        results[index] = work[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_sessions_waiting_together_share_model_calls() -> None:
    network = EchoNetwork(delay_s=0.01)
    scheduler = FrameScheduler(network)
    # A first request keeps the scheduler busy while four sessions queue up behind it.
    blocker = threading.Thread(target=ask, args=(scheduler, 99, range(10)))
    blocker.start()
    time.sleep(0.02)
    results = concurrently(
        *[lambda owner=owner: ask(scheduler, owner, range(owner * 10, owner * 10 + 3), owner) for owner in range(4)]
    )
    blocker.join()
    for owner, crops in enumerate(results):
        assert frames_of(crops) == [owner * 10, owner * 10 + 1, owner * 10 + 2]
        assert [int(crop[0, 1, 0]) for crop in crops] == [owner] * 3
    # 10 frames, then the 12 waiting frames of four sessions in one call.
    assert network.calls == [10, 12]
    assert scheduler.describe()["frames"] == 22


def test_a_long_backlog_does_not_hold_back_a_short_request() -> None:
    network = EchoNetwork(batch_cap=4, delay_s=0.005)
    scheduler = FrameScheduler(network)
    blocker = threading.Thread(target=ask, args=(scheduler, 9, [0]))
    blocker.start()
    time.sleep(0.002)
    finished: dict[str, float] = {}

    def long() -> None:
        ask(scheduler, 1, range(100, 140))
        finished["long"] = time.perf_counter()

    def short() -> None:
        time.sleep(0.001)
        ask(scheduler, 2, [7, 8])
        finished["short"] = time.perf_counter()

    concurrently(long, short)
    blocker.join()
    assert finished["short"] < finished["long"]
    # The short request was served within the first two batches after the blocker, not after ten.
    assert len(network.calls) >= 11
    assert max(network.calls) <= 4


def test_lanes_render_one_chunk_on_every_lane_at_once() -> None:
    network = EchoNetwork(delay_s=0.01)
    scheduler = FrameScheduler(network, lanes=2)
    crops = ask(scheduler, 1, range(28))
    assert frames_of(crops) == list(range(28))
    assert sorted(network.calls) == [14, 14]
    assert network.most_active == 2
    assert scheduler.describe()["lanes"] == 2


def test_admission_follows_measured_capacity() -> None:
    network = EchoNetwork(delay_s=0.01)  # 10 ms per frame: about 100 frames/s on one lane
    scheduler = FrameScheduler(network)
    assert scheduler.capacity_fps() is None and scheduler.admits(25)  # nothing measured yet
    ask(scheduler, 1, range(8))
    capacity = scheduler.capacity_fps()
    assert capacity is not None and 50 < capacity <= 100
    scheduler.attach(1, 25)
    scheduler.attach(2, 25)
    assert scheduler.admits(25)
    scheduler.attach(3, 25)
    assert not scheduler.admits(25)  # 100 frames/s would not cover a fourth session at 25
    scheduler.detach(3)
    assert scheduler.admits(25)
    two_lanes = FrameScheduler(EchoNetwork(delay_s=0.01), lanes=2)
    ask(two_lanes, 1, range(8))
    assert two_lanes.capacity_fps() == pytest.approx(2 / two_lanes.render_s_per_frame)


def test_a_failed_batch_fails_its_sessions_and_the_scheduler_goes_on() -> None:
    network = EchoNetwork(fail_on=5)
    scheduler = FrameScheduler(network)
    with pytest.raises(RuntimeError, match="frame 5 broke the batch"):
        ask(scheduler, 1, range(3, 7))
    assert frames_of(ask(scheduler, 1, range(10, 12))) == [10, 11]
