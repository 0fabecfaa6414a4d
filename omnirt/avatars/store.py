"""Prepared avatars and their store: a portrait or a short idle video, its face boxes, and per-model caches.

An avatar is stored once, keyed by the hash of its content (and of the ``face_box`` a client gave), in a folder the
whole fleet reads (``OMNIRT_AVATAR_DIR``, beside the artifacts), so it survives restarts and any worker can serve
it:

    <root>/<avatar id>/meta.json              name, kind, size, fps, face box per template frame
    <root>/<avatar id>/frames/000000.jpg ...  template frames (long edge at most MAX_SIDE)
    <root>/<avatar id>/preview.jpg            the first template frame
    <root>/<avatar id>/prepared/<key>.npz     a model's per-frame inputs at one session size

The index (:func:`omnirt.keys.avatars` in the job store's Redis, or memory embedded) lists the avatars; the folder is
the source of truth, so an embedded process rebuilds its index from disk. Storing finds the face in every template
frame with the offline detector; a frame where none is found borrows the nearest frame's box.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omnirt import keys
from omnirt.avatars.errors import AvatarInputError, AvatarNotFoundError, AvatarTooLargeError, NoFaceDetectedError

MAX_SIDE = 1280  # template frames are scaled down to this long edge when stored
MAX_VIDEO_FRAMES = 250  # 10 s at 25 fps


@dataclass
class Avatar:
    """What the store knows about one avatar."""

    id: str
    name: str
    kind: str  # "image" | "video"
    width: int
    height: int
    frames: int
    fps: float
    face_boxes: list[list[int]]
    created_ms: int
    face_box_given: bool = False
    prepared: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def public(self) -> dict[str, Any]:
        """The fields the API shows (face boxes of the first frame only)."""
        data = {key: value for key, value in self.to_dict().items() if key != "face_boxes"}
        data["face_box"] = self.face_boxes[0] if self.face_boxes else None
        return data

    def template_index(self, frame: int) -> int:
        """The template frame behind video frame ``frame``: forward, then backward, then forward again."""
        if self.frames <= 1:
            return 0
        period = 2 * self.frames - 2
        position = frame % period
        return position if position < self.frames else period - position


def avatar_id_for(data: bytes, face_box: list[int] | None) -> str:
    digest = hashlib.sha256(data)
    if face_box is not None:
        digest.update(json.dumps([int(value) for value in face_box]).encode())
    return "av_" + digest.hexdigest()[:24]


def default_portrait() -> np.ndarray:
    """The portrait used when a request names none: scikit-image's bundled astronaut photograph (public domain)."""
    try:
        from skimage import data
    except ImportError as exc:
        from omnirt.contracts.errors import DependencyUnavailableError

        raise DependencyUnavailableError("scikit-image is not installed; send an image instead.") from exc
    return data.astronaut()


def decode_image(data: bytes) -> np.ndarray:
    """RGB pixels of a PNG/JPEG/WebP/BMP; ``bad_image`` when unreadable."""
    from omnirt.avatars.face import require_cv2

    cv2 = require_cv2()
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if decoded is None:
        raise AvatarInputError("The image is not a readable PNG, JPEG, WebP or BMP picture.", code="bad_image")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def decode_video(data: bytes, *, max_frames: int = MAX_VIDEO_FRAMES) -> tuple[list[np.ndarray], float]:
    """RGB frames (at most ``max_frames``) and the frame rate of a video; ``bad_video`` when unreadable."""
    import io

    import av

    frames: list[np.ndarray] = []
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.video:
                raise AvatarInputError("The video has no video stream.", code="bad_video")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 25)
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) >= max_frames:
                    break
    except AvatarInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds for a corrupt container
        raise AvatarInputError(f"The video cannot be decoded: {exc}", code="bad_video") from None
    if not frames:
        raise AvatarInputError("The video holds no frames.", code="bad_video")
    return frames, fps


def shrink(frame: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    from omnirt.avatars.face import require_cv2

    height, width = frame.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return frame
    cv2 = require_cv2()
    return cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)


def face_boxes(frames: list[np.ndarray], given: list[int] | None, what: str) -> list[list[int]]:
    """A face box per frame: the given one everywhere, else detected (gaps filled from the nearest detection)."""
    if given is not None:
        x, y, w, h = (int(value) for value in given)
        height, width = frames[0].shape[:2]
        if w < 8 or h < 8 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise AvatarInputError(
                f"face_box {list(given)} must be [x, y, width, height] inside the {width}x{height} picture.",
                code="bad_face_box",
            )
        return [[x, y, w, h] for _ in frames]
    from omnirt.avatars.face import detect_face

    found = [detect_face(frame) for frame in frames]
    known = [index for index, box in enumerate(found) if box is not None]
    if not known:
        raise NoFaceDetectedError(what)
    return [list(found[min(known, key=lambda k: abs(k - index))]) for index in range(len(frames))]


class AvatarIndex:
    """The avatar list in Redis (one hash) or in memory."""

    def __init__(self, redis_client: Any = None) -> None:
        self.redis = redis_client
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()

    def put(self, avatar: Avatar) -> None:
        payload = json.dumps(avatar.to_dict())
        if self.redis is not None:
            self.redis.hset(keys.avatars(), avatar.id, payload)
        else:
            with self._lock:
                self._memory[avatar.id] = payload

    def get(self, avatar_id: str) -> Avatar | None:
        raw = self.redis.hget(keys.avatars(), avatar_id) if self.redis is not None else self._memory.get(avatar_id)
        return Avatar(**json.loads(raw)) if raw else None

    def remove(self, avatar_id: str) -> bool:
        if self.redis is not None:
            return bool(self.redis.hdel(keys.avatars(), avatar_id))
        with self._lock:
            return self._memory.pop(avatar_id, None) is not None

    def all(self) -> list[Avatar]:
        values = self.redis.hvals(keys.avatars()) if self.redis is not None else list(self._memory.values())
        return sorted((Avatar(**json.loads(value)) for value in values), key=lambda avatar: avatar.created_ms)


class AvatarStore:
    """Adds, finds, lists and deletes avatars; loads their frames and per-model caches."""

    def __init__(self, root: Path, index: AvatarIndex, *, max_video_bytes: int) -> None:
        self.root = Path(root)
        self.index = index
        self.max_video_bytes = max_video_bytes
        self._lock = threading.Lock()
        if index.redis is None:
            self._load_index_from_disk()

    def _load_index_from_disk(self) -> None:
        if not self.root.is_dir():
            return
        for meta in self.root.glob("av_*/meta.json"):
            try:
                self.index.put(Avatar(**json.loads(meta.read_text())))
            except (OSError, ValueError, TypeError):
                continue

    def folder(self, avatar_id: str) -> Path:
        if not avatar_id.startswith("av_") or not avatar_id[3:].isalnum():
            raise AvatarNotFoundError(avatar_id)
        return self.root / avatar_id

    # -- adding ------------------------------------------------------------------------------------------------
    def add(self, data: bytes, *, kind: str, name: str = "", face_box: list[int] | None = None) -> tuple[Avatar, bool]:
        """Store an image or video avatar; returns (avatar, created). The same content twice is stored once."""
        if kind == "video" and len(data) > self.max_video_bytes:
            raise AvatarTooLargeError(f"The video is larger than {self.max_video_bytes} bytes.")
        avatar_id = avatar_id_for(data, face_box)
        existing = self.find(avatar_id)
        if existing is not None:
            return existing, False
        if kind == "video":
            frames, fps = decode_video(data)
        else:
            frames, fps = [decode_image(data)], 25.0
        frames = [shrink(frame) for frame in frames]
        boxes = face_boxes(frames, face_box, "the picture" if kind == "image" else "any frame of the video")
        height, width = frames[0].shape[:2]
        avatar = Avatar(
            id=avatar_id,
            name=name or avatar_id,
            kind=kind,
            width=width,
            height=height,
            frames=len(frames),
            fps=fps,
            face_boxes=boxes,
            created_ms=int(time.time() * 1000),
            face_box_given=face_box is not None,
        )
        self._write(avatar, frames)
        return avatar, True

    def _write(self, avatar: Avatar, frames: list[np.ndarray]) -> None:
        from omnirt.avatars.face import require_cv2

        cv2 = require_cv2()
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{avatar.id}.", dir=self.root))
        (staging / "frames").mkdir()
        (staging / "prepared").mkdir()
        for index, frame in enumerate(frames):
            bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(staging / "frames" / f"{index:06d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        shutil.copyfile(staging / "frames" / "000000.jpg", staging / "preview.jpg")
        (staging / "meta.json").write_text(json.dumps(avatar.to_dict()))
        target = self.folder(avatar.id)
        with self._lock:
            if target.exists():
                shutil.rmtree(staging, ignore_errors=True)
            else:
                staging.rename(target)
        self.index.put(avatar)

    # -- reading -----------------------------------------------------------------------------------------------
    def find(self, avatar_id: str) -> Avatar | None:
        try:
            folder = self.folder(avatar_id)
        except AvatarNotFoundError:
            return None
        avatar = self.index.get(avatar_id)
        if avatar is None and (folder / "meta.json").is_file():
            avatar = Avatar(**json.loads((folder / "meta.json").read_text()))
            self.index.put(avatar)
        if avatar is not None and not folder.is_dir():
            self.index.remove(avatar_id)
            return None
        return avatar

    def get(self, avatar_id: str) -> Avatar:
        avatar = self.find(avatar_id)
        if avatar is None:
            raise AvatarNotFoundError(avatar_id)
        return avatar

    def list(self) -> list[Avatar]:
        return self.index.all()

    def frames(self, avatar: Avatar) -> list[np.ndarray]:
        """The avatar's template frames, RGB."""
        from omnirt.avatars.face import require_cv2

        cv2 = require_cv2()
        folder = self.folder(avatar.id) / "frames"
        frames = []
        for index in range(avatar.frames):
            bgr = cv2.imread(str(folder / f"{index:06d}.jpg"), cv2.IMREAD_COLOR)
            if bgr is None:
                raise AvatarNotFoundError(avatar.id)
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        return frames

    def preview_path(self, avatar_id: str) -> Path:
        path = self.folder(self.get(avatar_id).id) / "preview.jpg"
        if not path.is_file():
            raise AvatarNotFoundError(avatar_id)
        return path

    def delete(self, avatar_id: str) -> None:
        avatar = self.get(avatar_id)
        folder = self.folder(avatar.id)
        self.index.remove(avatar.id)
        shutil.rmtree(folder, ignore_errors=True)

    # -- per-model caches --------------------------------------------------------------------------------------
    def prepared(
        self, avatar: Avatar, key: str, compute: Callable[[], dict[str, np.ndarray]]
    ) -> tuple[dict[str, np.ndarray], bool]:
        """A model's cached inputs for ``avatar`` under ``key``; computed and saved when missing.

        Returns (arrays, cache_hit)."""
        path = self.folder(avatar.id) / "prepared" / f"{key}.npz"
        if path.is_file():
            try:
                with np.load(path) as archive:
                    return {name: archive[name] for name in archive.files}, True
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
        arrays = compute()
        if not self.folder(avatar.id).is_dir():
            raise AvatarNotFoundError(avatar.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{threading.get_ident()}.tmp.npz")
        np.savez(partial, **arrays)
        partial.replace(path)
        current = self.find(avatar.id)
        if current is not None and key not in current.prepared:
            current.prepared.append(key)
            (self.folder(avatar.id) / "meta.json").write_text(json.dumps(current.to_dict()))
            self.index.put(current)
        return arrays, False
