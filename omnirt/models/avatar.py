"""What every audio-driven avatar shares: the session shape, the ``VIDX`` wire format, and the batch audio2video job.

A realtime avatar model implements ``open_session(spec)`` returning an :class:`AvatarSession`, whose ``render``
turns one chunk of 16 kHz PCM into exactly ``slice_len`` JPEG frames. The same session renders batch
``audio2video`` jobs (image + audio in, H.264 MP4 with the audio track out) through :class:`AvatarPipeline`.
"""

from __future__ import annotations

import abc
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

from omnirt.contracts.types import Artifact
from omnirt.models.base import BasePipeline, RunContext

SAMPLE_RATE = 16000


@dataclass
class SessionSpec:
    """The media contract of one avatar session (FlashTalk defaults: 25 fps, 416x704, 28 frames per chunk)."""

    model: str
    fps: int = 25
    width: int = 416
    height: int = 704
    slice_len: int = 28
    frame_num: int = 29
    motion_frames_num: int = 1
    sample_rate: int = SAMPLE_RATE
    seed: int = 9999
    prompt: str = ""
    jpeg_quality: int = 80
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def chunk_samples(self) -> int:
        return self.slice_len * self.sample_rate // self.fps

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "chunk_samples": self.chunk_samples}


class AvatarSession(abc.ABC):
    @abc.abstractmethod
    def render(self, pcm: Any) -> list[bytes]:
        """``slice_len`` JPEG frames for one chunk of int16 mono PCM at ``spec.sample_rate``."""

    def update(self, config: dict[str, Any]) -> dict[str, Any]:
        """Apply live settings; returns the ones accepted."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the session holds."""


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


class AvatarPipeline(BasePipeline):
    """Batch audio2video for a realtime avatar model: the audio is rendered chunk by chunk, then muxed to MP4."""

    @abc.abstractmethod
    def open_session(self, spec: SessionSpec, image: bytes | None) -> AvatarSession:
        """A rendering session for ``spec`` with the portrait ``image`` (None: the model's own)."""

    def prepare_conditions(self, ctx: RunContext) -> dict[str, Any]:
        from omnirt.runtime.audio import load_audio

        config = ctx.config
        spec = SessionSpec(
            model=self.spec.id,
            fps=int(config.get("fps", 25)),
            width=int(config.get("width", 416)),
            height=int(config.get("height", 704)),
            slice_len=int(config.get("slice_len", 28)),
            seed=int(config.get("seed", 9999)),
        )
        image = ctx.request.inputs.get("image")
        portrait = _read_bytes(image) if image is not None else None
        audio = load_audio(ctx.request.inputs["audio"], sample_rate=spec.sample_rate)
        return {"spec": spec, "image": portrait, "audio": audio}

    def prepare_latents(self, ctx: RunContext, conditions: dict[str, Any]) -> AvatarSession:
        return self.open_session(conditions["spec"], conditions["image"])

    def denoise_loop(self, ctx: RunContext, session: AvatarSession, conditions: dict[str, Any]) -> list[bytes]:
        import numpy as np

        from omnirt.runtime.audio import pcm16

        spec, audio = conditions["spec"], conditions["audio"]
        size = spec.chunk_samples
        total = max(1, -(-len(audio) // size))
        frames: list[bytes] = []
        for index in range(total):
            chunk = audio[index * size : (index + 1) * size]
            chunk = np.pad(chunk, (0, size - len(chunk)))
            frames += session.render(np.frombuffer(pcm16(chunk), "<i2"))
            ctx.step(index, total)
        session.close()
        return frames

    def decode(self, ctx: RunContext, raw: list[bytes]) -> list[Any]:
        import io

        from PIL import Image

        return [Image.open(io.BytesIO(frame)).convert("RGB") for frame in raw]

    def export(self, ctx: RunContext, decoded: list[Any]) -> list[Artifact]:
        from omnirt.runtime.audio import load_audio
        from omnirt.runtime.export import write_mp4

        audio = load_audio(ctx.request.inputs["audio"], sample_rate=SAMPLE_RATE)
        fps = float(ctx.config.get("fps", 25))
        return [
            write_mp4(decoded, ctx.output_dir / f"{self.spec.id}.mp4", fps=fps, audio=audio, sample_rate=SAMPLE_RATE)
        ]


def _read_bytes(value: Any) -> bytes:
    import base64
    from pathlib import Path

    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str) and value.startswith("data:"):
        return base64.b64decode(value.partition(",")[2])
    return Path(str(value)).expanduser().read_bytes()
