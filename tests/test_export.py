"""Artifact writers: PNG, WAV, and H.264 MP4 with and without an AAC audio track, read back with PyAV."""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import numpy as np
from PIL import Image

from omnirt.runtime.export import write_mp4, write_png, write_wav


def frames(count: int, width: int, height: int) -> list[Image.Image]:
    return [Image.fromarray(np.full((height, width, 3), index * 20 % 255, np.uint8)) for index in range(count)]


def test_png_artifact_describes_the_file(tmp_path: Path) -> None:
    artifact = write_png(frames(1, 24, 16)[0], tmp_path / "a.png")
    data = Path(artifact.path).read_bytes()
    assert (artifact.width, artifact.height, artifact.mime) == (24, 16, "image/png")
    assert artifact.bytes == len(data) and artifact.sha256 == hashlib.sha256(data).hexdigest()


def test_wav_round_trip(tmp_path: Path) -> None:
    samples = np.sin(np.linspace(0, 440 * 2 * np.pi, 16000)).astype(np.float32)
    artifact = write_wav(samples, 16000, tmp_path / "a.wav")
    with wave.open(artifact.path) as handle:
        assert (handle.getframerate(), handle.getnchannels(), handle.getsampwidth()) == (16000, 1, 2)
        assert handle.getnframes() == 16000
    assert artifact.duration_s == 1.0 and artifact.mime == "audio/wav"


def test_mp4_with_audio_track_decodes(tmp_path: Path) -> None:
    import av

    audio = (np.sin(np.linspace(0, 300 * 2 * np.pi, 24000)) * 0.3).astype(np.float32)
    artifact = write_mp4(frames(25, 33, 17), tmp_path / "a.mp4", fps=25, audio=audio, sample_rate=24000)
    assert (artifact.width, artifact.height, artifact.num_frames, artifact.sample_rate) == (33, 17, 25, 24000)
    with av.open(artifact.path) as container:
        video, sound = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and sound.codec_context.name == "aac"
        decoded = list(container.decode(video=0))
    assert len(decoded) == 25 and (decoded[0].width, decoded[0].height) == (34, 18)  # padded to even
