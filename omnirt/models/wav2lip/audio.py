"""Wav2Lip's mel features, in numpy: the whole-signal spectrogram and the per-frame windows a session needs.

This module owns the audio recipe Wav2Lip was trained with (upstream ``audio.py`` + ``hparams.py``, librosa 0.7):
16 kHz mono float in [-1, 1]; pre-emphasis ``y[n] = x[n] - 0.97 x[n-1]``; STFT with n_fft 800, hop 200 (80 columns a
second) and a periodic Hann window of 800, frames centred on sample ``200 * j`` (reflect padding of 400 at both ends
of a whole signal); magnitude; an 80-band Slaney-scale, Slaney-normalised mel filterbank from 55 to 7600 Hz;
``20 * log10(max(1e-5, m)) - 20`` dB; then ``clip(8 * (dB + 100) / 100 - 4, -4, 4)``.

Video frame ``i`` at ``fps`` reads the 16 columns starting at ``int(80 * i / fps)``.

* :func:`mel_spectrogram` computes the ``(80, T)`` spectrogram of a whole signal, as upstream does for a file.
* :func:`frame_mels` computes only the columns some video frames need from a window of a stream (absolute sample
  offsets), without centre padding: the caller supplies :data:`AUDIO_CONTEXT_S` of audio around every frame, so each
  column sees exactly the samples it would see in the whole-signal spectrogram. In the interior of a signal both
  give the same numbers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 800
HOP = 200
WIN = 800
N_MELS = 80
FMIN = 55.0
FMAX = 7600.0
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS_VALUE = 4.0
COLUMNS_PER_SECOND = SAMPLE_RATE // HOP  # 80
MEL_STEP = 16  # columns per video frame


def exact_audio_context_samples() -> tuple[int, int]:
    """Samples a frame's window reaches before and after the frame's own time ``16000 * i / fps``.

    Frame ``i`` starts at column ``c0 = floor(80 i / fps)``, up to one hop (less one sample) before the frame's time.
    Column ``j`` reads samples ``[200 j - 400, 200 j + 400)`` plus one more on the left for the pre-emphasis, so the
    first column reaches ``400 + 1 + 199`` samples back. The last column, ``c0 + 15``, ends at ``200 c0 + 3400``, never
    after the frame's time plus 3400 samples.
    """
    before = N_FFT // 2 + 1 + (HOP - 1)
    after = HOP * (MEL_STEP - 1) + N_FFT // 2
    return before, after


def audio_context_s() -> tuple[float, float]:
    """Seconds of audio a frame needs before and after its time: the exact reach, rounded up to 10 ms."""
    before, after = exact_audio_context_samples()
    return math.ceil(before / SAMPLE_RATE * 100) / 100, math.ceil(after / SAMPLE_RATE * 100) / 100


#: (before, after) seconds: (0.04, 0.22) for the exact (600, 3400) samples.
AUDIO_CONTEXT_S = audio_context_s()


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic (27 mels per octave of 6.4) above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_step = math.log(6.4) / 27.0
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / log_step
    return np.where(hz >= 1000.0, logarithmic, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    log_step = math.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(log_step * (mel - 15.0)), mel * (200.0 / 3))


@functools.lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """``(80, 401)`` triangular filters over the rfft bins, each scaled by 2 / its bandwidth (Slaney norm)."""
    bins = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), N_MELS + 2))
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - left) / (centre - left)
    falling = (right - bins[None, :]) / (right - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (right - left))
    weights.setflags(write=False)
    return weights


@functools.lru_cache(maxsize=1)
def hann_window() -> np.ndarray:
    """Periodic Hann window of 800 (``scipy.signal.get_window('hann', 800, fftbins=True)``)."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(WIN) / WIN)
    window.setflags(write=False)
    return window


def _frames_to_columns(frames: np.ndarray) -> np.ndarray:
    """``(n, 800)`` pre-emphasised sample frames -> ``(n, 80)`` normalised mel columns."""
    magnitude = np.abs(np.fft.rfft(frames * hann_window(), n=N_FFT, axis=-1))
    mel = magnitude @ mel_filterbank().T
    decibels = 20.0 * np.log10(np.maximum(1e-5, mel)) - REF_LEVEL_DB
    scaled = 2 * MAX_ABS_VALUE * ((decibels - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MAX_ABS_VALUE
    return np.clip(scaled, -MAX_ABS_VALUE, MAX_ABS_VALUE)


def _as_signal(samples: np.ndarray) -> np.ndarray:
    signal = np.asarray(samples, dtype=np.float64)
    if signal.ndim != 1:
        signal = np.squeeze(signal)
    if signal.ndim != 1:
        raise ValueError(f"audio must be mono (one axis of samples), got shape {np.shape(samples)}")
    return signal


def mel_spectrogram(samples: np.ndarray) -> np.ndarray:
    """The ``(80, 1 + len // 200)`` float32 mel spectrogram of a whole 16 kHz signal, Wav2Lip's recipe."""
    signal = _as_signal(samples)
    if signal.size == 0:
        signal = np.zeros(1)
    emphasised = signal.copy()
    emphasised[1:] -= PREEMPHASIS * signal[:-1]
    padded = np.pad(emphasised, N_FFT // 2, mode="reflect" if emphasised.size > 1 else "constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    return _frames_to_columns(frames).T.astype(np.float32)


def first_columns(frames: Sequence[int] | np.ndarray, fps: float) -> np.ndarray:
    """The first mel column of each video frame: ``int(80 * i / fps)``."""
    indices = np.asarray(frames, dtype=np.int64)
    if float(fps) == int(fps):
        return (COLUMNS_PER_SECOND * indices) // int(fps)
    return np.floor(COLUMNS_PER_SECOND * indices / float(fps)).astype(np.int64)


def frame_mels(audio: np.ndarray, start_sample: int, frames: Sequence[int], fps: float) -> np.ndarray:
    """``(len(frames), 80, 16)`` float32 mel windows of video frames ``frames`` (absolute indices at ``fps``).

    ``audio[0]`` is absolute sample ``start_sample`` of the stream; samples outside the window count as silence.
    Each needed column ``j`` is computed once, from samples ``[200 j - 401, 200 j + 400)`` of the window: the frame
    the whole-signal STFT centres on ``200 j``, plus the sample before it for the pre-emphasis.
    """
    signal = _as_signal(audio)
    starts = first_columns(list(frames), fps)
    if starts.size == 0:
        return np.zeros((0, N_MELS, MEL_STEP), np.float32)
    wanted = starts[:, None] + np.arange(MEL_STEP)
    columns = np.unique(wanted)
    positions = (HOP * columns - N_FFT // 2 - 1 - int(start_sample))[:, None] + np.arange(N_FFT + 1)
    inside = (positions >= 0) & (positions < signal.size)
    if signal.size:
        raw = np.where(inside, signal[np.clip(positions, 0, signal.size - 1)], 0.0)
    else:
        raw = np.zeros(positions.shape)
    emphasised = raw[:, 1:] - PREEMPHASIS * raw[:, :-1]
    table = _frames_to_columns(emphasised)  # (columns, 80)
    picked = table[np.searchsorted(columns, wanted)]  # (frames, 16, 80)
    return np.ascontiguousarray(picked.transpose(0, 2, 1), dtype=np.float32)
