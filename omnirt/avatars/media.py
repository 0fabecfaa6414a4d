"""The media contract of a realtime avatar session, defined once for the API side and the worker side.

Defaults follow FlashTalk and OpenTalking: 16 kHz mono int16 audio in, 25 fps JPEG frames at 416x704 out, 28 frames
per audio chunk (17920 samples, 1.12 s). ``MessageKind`` names what travels on a session's channels; ``VIDX`` is the
binary framing of a chunk of frames.
"""

from __future__ import annotations

import abc
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

SAMPLE_RATE = 16000
FPS = 25
WIDTH = 416
HEIGHT = 704
SLICE_LEN = 28
JPEG_QUALITY = 80
MAX_AUDIO_MESSAGE_S = 10.0  # the longest AUDI message the native protocol takes


class MessageKind:
    """Kinds of the messages on a session's channels (API -> worker ``in``, worker -> API ``out``)."""

    # in
    AUDIO = "audio"
    FLUSH = "flush"
    CONFIG = "config"
    CANCEL = "cancel"
    CLOSE = "close"
    # out
    READY = "ready"
    VIDEO = "video"
    CONFIG_OK = "config_ok"
    CANCELLED = "cancelled"
    CLOSED = "closed"
    ERROR = "error"


@dataclass
class SessionSpec:
    """The media contract of one avatar session.

    ``chunked`` sessions (the FlashTalk protocol) answer each audio chunk with exactly its ``slice_len`` frames;
    otherwise (the native protocol) audio may come in any size and frames go out as soon as their audio context is
    there. ``avatar_id`` names a prepared avatar in the store (lip-sync models).
    """

    model: str
    fps: int = FPS
    width: int = WIDTH
    height: int = HEIGHT
    slice_len: int = SLICE_LEN
    frame_num: int = SLICE_LEN + 1
    motion_frames_num: int = 1
    sample_rate: int = SAMPLE_RATE
    seed: int = 9999
    prompt: str = ""
    jpeg_quality: int = JPEG_QUALITY
    chunked: bool = True
    avatar_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def chunk_samples(self) -> int:
        return self.slice_len * self.sample_rate // self.fps

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "chunk_samples": self.chunk_samples}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionSpec:
        return cls(**{key: value for key, value in data.items() if key != "chunk_samples"})


class AvatarSession(abc.ABC):
    """A rendering session on a worker: audio in, JPEG frames out."""

    @abc.abstractmethod
    def render(self, pcm: Any) -> list[bytes]:
        """JPEG frames for int16 mono PCM at ``spec.sample_rate``: exactly ``slice_len`` per chunk when chunked,
        else the frames whose audio context is complete."""

    def flush(self) -> list[bytes]:
        """The frames still owed for the audio received so far (the audio stopped)."""
        return []

    def update(self, config: dict[str, Any]) -> dict[str, Any]:
        """Apply live settings; returns the ones accepted."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the session holds."""

    def describe(self) -> dict[str, Any]:
        """What the session runs with, for ``init_ok`` / ``session.created`` (lookahead, prepared avatar)."""
        return {}


def pack_vidx(frames: list[bytes]) -> bytes:
    """``VIDX`` + uint32 count + (uint32 length + JPEG) per frame, little-endian."""
    parts = [b"VIDX", struct.pack("<I", len(frames))]
    for frame in frames:
        parts += [struct.pack("<I", len(frame)), frame]
    return b"".join(parts)


def unpack_vidx(message: bytes) -> list[bytes]:
    if message[:4] != b"VIDX":
        raise ValueError("not a VIDX message")
    (count,) = struct.unpack_from("<I", message, 4)
    offset, frames = 8, []
    for _ in range(count):
        (length,) = struct.unpack_from("<I", message, offset)
        frames.append(message[offset + 4 : offset + 4 + length])
        offset += 4 + length
    if offset != len(message):
        raise ValueError("trailing bytes after the VIDX frames")
    return frames
