"""The MP4 an upstream script wrote: what it holds (size, frames, frame rate, audio track), and muxing the request's
audio into it when the script left the video silent (PyAV; the video stream is copied, not re-encoded)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from omnirt.runtime.export import add_mono_aac, mux_mono_audio
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

    with av.open(str(source)) as inp, av.open(str(target), mode="w") as out:
        video_in = inp.streams.video[0]
        video_out = out.add_stream_from_template(video_in)
        audio_out = add_mono_aac(out, sample_rate)
        for packet in inp.demux(video_in):
            if packet.dts is None:
                continue
            packet.stream = video_out
            out.mux(packet)
        mux_mono_audio(out, audio_out, samples, sample_rate)
