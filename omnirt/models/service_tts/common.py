"""What the service-backed voices share: the server address comes from the server's environment, never from a
request (no client-chosen URLs), and PCM arriving in arbitrary byte chunks becomes float32 segments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from omnirt.contracts.errors import OmniRTError
from omnirt.settings import Settings

SERVICE_CONFIG = ("temperature", "top_k", "top_p", "repetition_penalty", "timeout")


class ServiceUnavailableError(OmniRTError):
    code = "service_unavailable"
    http_status = 503


def service_url(option: str) -> str:
    """The server address of setting ``option`` (an ``OMNIRT_*_URL`` declared in :mod:`omnirt.settings`)."""
    return str(Settings.value(option)).rstrip("/")


def pcm_segments(chunks: Iterator[bytes], min_bytes: int = 3200) -> Iterator[Any]:
    """float32 segments from a stream of little-endian int16 bytes (odd splits carried over)."""
    import numpy as np

    pending = b""
    for chunk in chunks:
        pending += chunk
        if len(pending) >= min_bytes:
            usable = len(pending) - len(pending) % 2
            yield np.frombuffer(pending[:usable], "<i2").astype(np.float32) / 32768.0
            pending = pending[usable:]
    if len(pending) >= 2:
        usable = len(pending) - len(pending) % 2
        yield np.frombuffer(pending[:usable], "<i2").astype(np.float32) / 32768.0


def wav_samples(data: bytes) -> tuple[Any, int]:
    """(float32 mono samples, sample rate) of a 16-bit WAV."""
    import io
    import wave

    import numpy as np

    with wave.open(io.BytesIO(data)) as handle:
        rate, channels = handle.getframerate(), handle.getnchannels()
        samples = np.frombuffer(handle.readframes(handle.getnframes()), "<i2").astype(np.float32) / 32768.0
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate


def reference_wav(value: Any) -> bytes:
    """A reference voice as 16-bit mono WAV bytes (from any readable audio input)."""
    import io

    from omnirt.runtime.audio import load_audio
    from omnirt.runtime.export import _to_int16

    samples = load_audio(value, sample_rate=16000, field="audio")
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(_to_int16(samples).tobytes())
    return buffer.getvalue()
