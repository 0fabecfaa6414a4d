"""The MP4 an upstream script wrote: what it holds (size, frames, frame rate, audio track), and muxing the request's
audio into it when the script left the video silent (PyAV; the video stream is copied, not re-encoded)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from omnirt.contracts.types import Artifact
from omnirt.runtime.launcher import ScriptFailedError


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    num_frames: int
    fps: float
    duration_s: float
    has_audio: bool
    sample_rate: int | None


def probe(path: Path) -> VideoInfo:
    """Read ``path``'s streams; :class:`ScriptFailedError` when it is not a playable video."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ScriptFailedError(f"{path.name} holds no video stream.")
            stream = container.streams.video[0]
            frames = sum(1 for packet in container.demux(stream) if packet.size)
            rate = stream.average_rate or stream.guessed_rate or Fraction(0)
            audio = container.streams.audio[0] if container.streams.audio else None
            return VideoInfo(
                width=int(stream.codec_context.width),
                height=int(stream.codec_context.height),
                num_frames=frames,
                fps=round(float(rate), 3),
                duration_s=round(frames / float(rate), 6) if rate else 0.0,
                has_audio=audio is not None,
                sample_rate=int(audio.rate) if audio is not None else None,
            )
    except ScriptFailedError:
        raise
    except Exception as exc:  # whatever PyAV raises, the script output is unusable
        raise ScriptFailedError(f"{path.name} is not a readable video ({type(exc).__name__}: {exc}).") from exc


def mux_audio(source: Path, target: Path, samples: Any, sample_rate: int) -> None:
    """Write ``target``: ``source``'s video stream (copied) with ``samples`` (mono float) as an AAC track."""
    import av
    import numpy as np

    pcm = (np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767.0).astype(np.int16).reshape(1, -1)
    with av.open(str(source)) as inp, av.open(str(target), mode="w") as out:
        video_in = inp.streams.video[0]
        video_out = out.add_stream_from_template(video_in)
        audio_out = out.add_stream("aac", rate=int(sample_rate))
        audio_out.layout = "mono"
        for packet in inp.demux(video_in):
            if packet.dts is None:
                continue
            packet.stream = video_out
            out.mux(packet)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = int(sample_rate)
        for packet in audio_out.encode(frame):
            out.mux(packet)
        for packet in audio_out.encode():
            out.mux(packet)


def finished(artifact: Artifact) -> Artifact:
    """``artifact`` with its file's size and sha256 filled in."""
    path = Path(artifact.path)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    artifact.sha256, artifact.bytes = digest.hexdigest(), path.stat().st_size
    return artifact
