"""Audio in and out: decode any file or ``data:`` URL to mono float32 at a chosen rate (PyAV), and 16-bit PCM.

Streaming responses carry raw little-endian int16 mono PCM (``audio/L16``), or a WAV header with an open length
followed by the same PCM.
"""

from __future__ import annotations

import base64
import io
import struct
from pathlib import Path
from typing import Any

from omnirt.contracts.errors import InvalidInputError

MIN_SAMPLE_RATE = 4000  # Hz: below this no speech model has anything to hear
MAX_AUDIO_S = 600.0  # one request's audio: ten minutes


def load_audio(value: Any, *, sample_rate: int, field: str = "audio") -> Any:
    """Mono float32 samples in [-1, 1] at ``sample_rate`` from a path, a ``data:`` URL, bytes or an array."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.astype(np.float32).reshape(-1)
    if isinstance(value, str) and value.startswith("data:"):
        value = base64.b64decode(value.partition(",")[2])
    source: Any = io.BytesIO(value) if isinstance(value, (bytes, bytearray)) else str(Path(value).expanduser())
    try:
        samples = _decode(source, sample_rate, field)
    except InvalidInputError:
        raise
    except Exception as exc:
        raise InvalidInputError(f"Input '{field}' is not readable audio ({type(exc).__name__}).") from exc
    if len(samples) == 0:
        raise InvalidInputError(f"Input '{field}' holds no audio samples.")
    return samples


def _decode(source: Any, sample_rate: int, field: str) -> Any:
    import av
    import numpy as np

    chunks = []
    limit = int(MAX_AUDIO_S * sample_rate)
    with av.open(source) as container:
        stream = container.streams.audio[0]
        if not stream.rate or stream.rate < MIN_SAMPLE_RATE:
            raise InvalidInputError(
                f"Input '{field}' has a sample rate of {stream.rate} Hz; audio needs at least {MIN_SAMPLE_RATE} Hz."
            )
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        total = 0
        for frame in container.decode(stream):
            for converted in resampler.resample(frame):
                chunks.append(converted.to_ndarray().reshape(-1))
                total += len(chunks[-1])
            if total > limit:
                raise InvalidInputError(f"Input '{field}' is longer than {MAX_AUDIO_S:g} s.")
        for converted in resampler.resample(None):
            chunks.append(converted.to_ndarray().reshape(-1))
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def resample(samples: Any, source_rate: int, target_rate: int) -> Any:
    """Resample mono float32 samples (linear interpolation; for rate changes between engines and clients)."""
    import numpy as np

    if source_rate == target_rate or len(samples) == 0:
        return samples.astype(np.float32)
    duration = len(samples) / source_rate
    count = max(1, round(duration * target_rate))
    positions = np.linspace(0, len(samples) - 1, count)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def pcm16(samples: Any) -> bytes:
    """Little-endian int16 bytes from float samples in [-1, 1]."""
    import numpy as np

    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def streaming_wav_header(sample_rate: int) -> bytes:
    """A 44-byte WAV header for 16-bit mono PCM of unknown length (sizes set to the maximum, as streams do)."""
    unknown = 0xFFFFFFFF
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", unknown)
    )
