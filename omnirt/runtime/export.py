"""Writing outputs to files: PNG images, H.264 MP4 video (with an AAC track when there is audio) and WAV audio.

Each writer returns an :class:`~omnirt.contracts.types.Artifact` with its size and sha256.
"""

from __future__ import annotations

import hashlib
import wave
from fractions import Fraction
from pathlib import Path
from typing import Any

from omnirt.contracts.types import Artifact


def finished(artifact: Artifact) -> Artifact:
    """``artifact`` with its file's size and sha256 filled in."""
    path = Path(artifact.path)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    artifact.sha256 = digest.hexdigest()
    artifact.bytes = path.stat().st_size
    return artifact


def write_png(image: Any, path: Path) -> Artifact:
    """Save a PIL image as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert("RGB").save(path, format="PNG")
    return finished(Artifact(kind="image", path=str(path), mime="image/png", width=image.width, height=image.height))


def write_text(text: str, path: Path) -> Artifact:
    """Save a transcript (UTF-8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return finished(Artifact(kind="text", path=str(path), mime="text/plain"))


def write_wav(samples: Any, sample_rate: int, path: Path) -> Artifact:
    """Save mono float samples in [-1, 1] (or int16) as 16-bit PCM WAV."""
    import numpy as np

    pcm = _to_int16(np.asarray(samples))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(int(sample_rate))
        handle.writeframes(pcm.tobytes())
    return finished(
        Artifact(
            kind="audio",
            path=str(path),
            mime="audio/wav",
            sample_rate=int(sample_rate),
            duration_s=round(len(pcm) / sample_rate, 6),
        )
    )


def _to_int16(samples: Any) -> Any:
    import numpy as np

    if samples.dtype == np.int16:
        return samples.reshape(-1)
    clipped = np.clip(samples.astype(np.float32).reshape(-1), -1.0, 1.0)
    return (clipped * 32767.0).astype(np.int16)


def add_mono_aac(container: Any, sample_rate: int) -> Any:
    """A mono AAC stream at ``sample_rate`` added to the PyAV output ``container``."""
    stream = container.add_stream("aac", rate=int(sample_rate))
    stream.layout = "mono"
    return stream


def mux_mono_audio(container: Any, stream: Any, samples: Any, sample_rate: int) -> None:
    """Encode mono ``samples`` (float in [-1, 1], or int16) into ``stream`` and mux them, flushing the encoder."""
    import av
    import numpy as np

    frame = av.AudioFrame.from_ndarray(_to_int16(np.asarray(samples)).reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = int(sample_rate)
    for packet in [*stream.encode(frame), *stream.encode()]:
        container.mux(packet)


def write_mp4(
    frames: list[Any],
    path: Path,
    *,
    fps: float,
    audio: Any | None = None,
    sample_rate: int | None = None,
    crf: int = 18,
) -> Artifact:
    """Encode PIL frames as H.264 (yuv420p) MP4; mux mono audio as AAC when given. Odd sizes are padded to even."""
    import av
    import numpy as np

    if not frames:
        raise ValueError("cannot write a video with no frames")
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = frames[0].size
    even_width, even_height = width + width % 2, height + height % 2
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = even_width, even_height, "yuv420p"
        video.options = {"crf": str(crf), "preset": "veryfast"}
        audio_stream = None
        if audio is not None and sample_rate:
            audio_stream = add_mono_aac(container, sample_rate)
        for image in frames:
            array = np.asarray(image.convert("RGB"))
            if (even_width, even_height) != (width, height):
                array = np.pad(array, ((0, even_height - height), (0, even_width - width), (0, 0)), mode="edge")
            for packet in video.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio_stream is not None:
            mux_mono_audio(container, audio_stream, audio, sample_rate)
    return finished(
        Artifact(
            kind="video",
            path=str(path),
            mime="video/mp4",
            width=width,
            height=height,
            num_frames=len(frames),
            fps=float(fps),
            duration_s=round(len(frames) / float(fps), 6),
            sample_rate=int(sample_rate) if audio is not None and sample_rate else None,
        )
    )
