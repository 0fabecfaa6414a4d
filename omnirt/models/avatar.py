"""What every audio-driven avatar shares: the session shape, the ``VIDX`` wire format, and the batch audio2video job.

A realtime avatar model implements ``open_session(spec)`` returning an :class:`AvatarSession`, whose ``render``
turns one chunk of 16 kHz PCM into exactly ``slice_len`` JPEG frames. The same session renders batch
``audio2video`` jobs (image + audio in, H.264 MP4 with the audio track out) through :class:`AvatarPipeline`.
"""

from __future__ import annotations

import abc
from typing import Any

from omnirt.avatars.media import SAMPLE_RATE, AvatarSession, SessionSpec, pack_vidx, unpack_vidx
from omnirt.contracts.types import Artifact
from omnirt.models.base import BasePipeline, RunContext

__all__ = ["SAMPLE_RATE", "AvatarPipeline", "AvatarSession", "SessionSpec", "pack_vidx", "unpack_vidx"]


class AvatarPipeline(BasePipeline):
    """Batch audio2video for a realtime avatar model: the audio is rendered chunk by chunk, then muxed to MP4."""

    #: Whether sessions take audio in any size (else each chunk must be exactly ``chunk_samples``).
    streams_any_size: bool = False

    @abc.abstractmethod
    def open_session(self, spec: SessionSpec, image: bytes | None, avatars: Any = None) -> AvatarSession:
        """A rendering session for ``spec``: the prepared avatar ``spec.avatar_id`` from the store ``avatars``, or
        the portrait ``image``, or (neither) the model's own."""

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
            chunked=not self.streams_any_size,
            config={key: config[key] for key in ("face_box",) if config.get(key) is not None},
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
            if spec.chunked:
                chunk = np.pad(chunk, (0, size - len(chunk)))
            frames += session.render(np.frombuffer(pcm16(chunk), "<i2"))
            ctx.step(index, total)
        frames += session.flush()
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
