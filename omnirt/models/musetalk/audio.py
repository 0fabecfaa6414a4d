"""MuseTalk's audio path: Whisper encoder states at 50 Hz, one 10-step window per video frame, positional encoding.

This module owns the audio-to-``encoder_hidden_states`` arithmetic, shared by the whole-file helper
``audio_prompts`` and the streaming :meth:`MuseTalkNetwork.audio_features
<omnirt.models.musetalk.network.MuseTalkNetwork.audio_features>`:

1. 16 kHz mono audio is cut into Whisper's 30 s segments; each becomes a log-mel spectrogram (the checkpoint's own
   feature extractor, which pads the last segment to 30 s) and goes through the Whisper encoder with
   ``output_hidden_states=True``. The 5 hidden states (the embedding and the 4 layers of whisper-tiny) are stacked:
   ``(steps, 5, d)`` at 50 steps a second; step ``k`` is centred on sample ``320 k``. The segments are concatenated
   and the result is trimmed to ``floor(seconds * 50)`` steps.
2. Video frame ``i`` at ``fps`` reads the 10 steps starting at ``floor(i * 50 / fps) - 4``: at 25 fps, steps
   ``[2i - 4, 2i + 6)``, i.e. 80 ms before the frame's time to 120 ms after it. Steps before the stream's start or
   past its end are zeros (upstream pads the stacked states with 4 zero steps on the left and 12 on the right).
   The window ``(10, 5, d)`` is flattened step-major to ``(50, d)``.
3. ``positional_encoding`` adds the fixed sinusoidal encoding over those 50 positions; the result is the UNet's
   ``encoder_hidden_states``.

Two deliberate differences from upstream's ``AudioProcessor``: upstream counts ``floor(seconds) * fps`` frames
(whole seconds only, dropping up to a second of tail) where this counts ``floor(seconds * fps)``, the frames the
audio actually covers; and upstream's left padding is ``2 * floor(50 / fps)`` steps, which equals 4 only at 25 fps,
where this keeps the 4-step (80 ms) lead the model was trained with at every frame rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

SAMPLE_RATE = 16000
STEPS_PER_SECOND = 50
SAMPLES_PER_STEP = SAMPLE_RATE // STEPS_PER_SECOND  # 320
SEGMENT_SAMPLES = 30 * SAMPLE_RATE
#: Whisper segments encoded in one batch.
SEGMENTS_PER_BATCH = 8
#: The embedding output plus whisper-tiny's 4 encoder layers.
HIDDEN_STATES = 5
WINDOW_STEPS = 10
#: How many steps before a frame's own step its window starts (upstream: 2 x 2 zero steps of left padding).
LEAD_STEPS = 4
#: Rows of one frame's ``encoder_hidden_states``.
TOKENS = WINDOW_STEPS * HIDDEN_STATES  # 50


def frame_step(frame: int, fps: float) -> int:
    """The 50 Hz step at video frame ``frame``'s time: ``floor(frame * 50 / fps)``, exact for integer rates."""
    if isinstance(fps, int) and not isinstance(fps, bool):
        return frame * STEPS_PER_SECOND // fps
    return math.floor(frame * STEPS_PER_SECOND / fps)


def covered_frames(samples: int, fps: float) -> int:
    """How many video frames ``samples`` of 16 kHz audio cover: ``floor(seconds * fps)``."""
    if isinstance(fps, int) and not isinstance(fps, bool):
        return samples * fps // SAMPLE_RATE
    return math.floor(samples * fps / SAMPLE_RATE)


def encoder_states(samples: np.ndarray, whisper_encoder: Any, feature_extractor: Any) -> torch.Tensor:
    """The stacked hidden states ``(floor(len(samples) / 320), 5, d)`` in float32 on the encoder's device.

    ``samples`` is float32 mono at 16 kHz; step 0 is centred on ``samples[0]``. Runs under the caller's grad mode
    and autocast (wrap it in ``torch.inference_mode()``).
    """
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    steps = len(samples) // SAMPLES_PER_STEP
    parameter = next(whisper_encoder.parameters())
    width = int(whisper_encoder.config.d_model)
    if steps == 0:
        return torch.zeros((0, HIDDEN_STATES, width), dtype=torch.float32, device=parameter.device)
    segments = [samples[start : start + SEGMENT_SAMPLES] for start in range(0, len(samples), SEGMENT_SAMPLES)]
    stacked: list[torch.Tensor] = []
    for first in range(0, len(segments), SEGMENTS_PER_BATCH):
        batch = segments[first : first + SEGMENTS_PER_BATCH]
        # The extractor computes its STFT with torch on the CPU: keep a caller's bf16 autocast away from it.
        with torch.autocast("cpu", enabled=False):
            features = feature_extractor(batch, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        features = features.to(device=parameter.device, dtype=parameter.dtype)
        hidden = whisper_encoder(features, output_hidden_states=True).hidden_states
        if len(hidden) != HIDDEN_STATES:
            raise ValueError(
                f"MuseTalk reads {HIDDEN_STATES} Whisper hidden states (the embedding and 4 encoder layers, as in "
                f"whisper-tiny); this encoder gives {len(hidden)}."
            )
        states = torch.stack([state.float() for state in hidden], dim=2)  # (batch, positions, 5, d)
        stacked.extend(states.unbind(0))
    return torch.cat(stacked, dim=0)[:steps]


def select_windows(states: torch.Tensor, first_step: int, starts: Sequence[int]) -> torch.Tensor:
    """Each frame's window ``(len(starts), 50, d)`` from ``states`` (step ``first_step`` at row 0).

    ``starts`` are absolute first steps (a frame's step minus ``LEAD_STEPS``). Steps before the stream's start
    (negative) and past the end of ``states`` are zeros, as upstream's padding gives; a non-negative step before
    ``first_step`` means the audio window does not reach back far enough, which is the caller's error.
    """
    count, width = len(starts), states.shape[-1]
    if count == 0:
        return states.new_zeros((0, TOKENS, width))
    absolute = torch.as_tensor(list(starts), dtype=torch.long)[:, None] + torch.arange(WINDOW_STEPS)[None, :]
    local = absolute - int(first_step)
    short = (absolute >= 0) & (local < 0)
    if bool(short.any()):
        raise ValueError(
            f"the audio window starts at step {first_step} but a frame needs step {int(absolute[short].min())}: "
            "the caller must give the left context the network declares"
        )
    inside = (absolute >= 0) & (local < states.shape[0])
    windows = states.new_zeros((count, WINDOW_STEPS, HIDDEN_STATES, width))
    windows[inside.to(states.device)] = states[local[inside].to(states.device)]
    return windows.reshape(count, TOKENS, width)


def sinusoid_table(positions: int, width: int) -> torch.Tensor:
    """``(positions, width)`` float32: ``pe[:, 0::2] = sin(pos * exp(-ln(10000) * 2k / width))``, cos on 1::2."""
    position = torch.arange(positions, dtype=torch.float32)[:, None]
    rates = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(positions, width, dtype=torch.float32)
    table[:, 0::2] = torch.sin(position * rates)
    table[:, 1::2] = torch.cos(position * rates[: width // 2])
    return table


def positional_encoding(x: torch.Tensor) -> torch.Tensor:
    """``x (..., positions, d)`` plus the fixed sinusoidal encoding over its positions, in ``x``'s dtype."""
    table = sinusoid_table(x.shape[-2], x.shape[-1]).to(x.device)
    return (x.float() + table).to(x.dtype)


def audio_prompts(samples: np.ndarray, whisper_encoder: Any, feature_extractor: Any, fps: int = 25) -> torch.Tensor:
    """The windows of every frame a whole clip covers: ``(floor(seconds * fps), 50, d)``, without the positional
    encoding (add it with :func:`positional_encoding`), float32 on the encoder's device."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    frames = covered_frames(len(samples), fps)
    with torch.inference_mode():
        states = encoder_states(samples, whisper_encoder, feature_extractor)
        return select_windows(states, 0, [frame_step(frame, fps) - LEAD_STEPS for frame in range(frames)])
