"""What a lip-sync network offers the session scheduler and the batch job: ``LipSyncNetwork``.

A lip-sync family (Wav2Lip, MuseTalk) loads its weights into one object of this shape. The avatar domain drives it:

1. Once per prepared avatar, ``prepare_frames`` turns the avatar's face crops into whatever the network reads for
   each template frame (Wav2Lip: the crops themselves; MuseTalk: 8-channel VAE latents). The result is stored with
   the prepared avatar, so a session with a prepared avatar never computes it again.
2. Per scheduler step, for each session, ``audio_features`` computes the features of the video frames that session
   needs next from a window of its audio. The caller guarantees the window covers ``audio_context_s`` around every
   requested frame (silence where the stream had not started, or past a flush).
3. ``render`` runs one batch of frames, possibly from many sessions and avatars, through the network and returns the
   face crops with the mouth redrawn.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

SAMPLE_RATE = 16000


class LipSyncNetwork(abc.ABC):
    """A loaded lip-sync model, ready to run on its device."""

    #: Side in pixels of the square face crop the network reads and writes (Wav2Lip 96 or 256, MuseTalk 256).
    face_size: int
    #: Seconds of audio a frame's features need before and after the frame's own time ``index / fps``.
    audio_context_s: tuple[float, float]
    #: The most frames ``render`` takes in one call.
    batch_cap: int = 16

    @abc.abstractmethod
    def prepare_frames(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """Per-template-frame inputs from face crops ``(N, S, S, 3)`` uint8 RGB.

        Returns arrays that each have ``N`` on their first axis; they are saved with the prepared avatar (npz).
        """

    @abc.abstractmethod
    def audio_features(self, audio: np.ndarray, start_sample: int, frames: Sequence[int], fps: int) -> Any:
        """Features for the video frames ``frames`` (absolute indices at ``fps``).

        ``audio`` is float32 mono at 16 kHz in [-1, 1]; ``audio[0]`` is absolute sample ``start_sample`` of the
        stream (which may be negative: those samples are silence). Returns a tensor with ``len(frames)`` rows, on
        the network's device, in the layout ``render`` takes.
        """

    @abc.abstractmethod
    def render(self, features: Any, frame_inputs: dict[str, np.ndarray]) -> np.ndarray:
        """One batch: ``features`` stacked from ``audio_features`` rows, ``frame_inputs`` the matching rows of
        ``prepare_frames``' arrays stacked on axis 0. Returns ``(B, S, S, 3)`` uint8 RGB face crops."""

    def describe(self) -> dict[str, Any]:
        """What the network runs as (device, dtype, channels_last, compiled), for reports and the benchmark."""
        return {}
