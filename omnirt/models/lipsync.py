"""``LipSyncPipeline``: the registered audio2video pipeline of a lip-sync family (Wav2Lip, MuseTalk).

A family subclass only loads its network (:class:`omnirt.avatars.lipsync.LipSyncNetwork`) from the resolved
weights location. Realtime sessions and batch ``audio2video`` jobs then run through the avatar domain: the avatar is
prepared once (face boxes, crops, the network's per-frame inputs), audio becomes per-frame features with the context
the network declares, frames from many sessions are rendered in shared batches, and the faces are pasted back with a
feathered mask.
"""

from __future__ import annotations

import abc
import hashlib
from typing import Any

from omnirt.avatars.errors import AvatarNotFoundError
from omnirt.avatars.lipsync import LipSyncNetwork
from omnirt.avatars.media import AvatarSession, SessionSpec
from omnirt.avatars.scheduler import scheduler_for
from omnirt.avatars.session import LipSyncSession, SessionAvatar
from omnirt.avatars.store import AvatarStore, decode_image, default_portrait, face_boxes
from omnirt.models.avatar import AvatarPipeline
from omnirt.runtime.backends import Backend

#: Registry fields every lip-sync family shares; a family adds its id, weights hints, defaults and summary.
LIPSYNC_CAPABILITIES: dict[str, Any] = {
    "task": "audio2video",
    "required_inputs": ("audio",),
    "optional_inputs": ("image", "prompt"),
    "supported_config": (
        "fps",
        "width",
        "height",
        "slice_len",
        "seed",
        "output_dir",
        "face_box",
        "batch_size",
        "dtype",
        "model_path",
    ),
    "artifact_kind": "video",
    "tier": "core",
    "maturity": "beta",
    "realtime": True,
    "streaming": True,
    "service_adapter": "realtime-avatar.ws.v1",
    "prepared_avatars": True,
    "backend_status": {"cpu": "supported", "cuda": "supported", "ascend": "supported"},
}


class LipSyncPipeline(AvatarPipeline):
    """An avatar model whose frames come from a :class:`LipSyncNetwork`."""

    def __init__(
        self, *, spec: Any, source: Any, backend: Backend, dtype: str, config: dict[str, Any] | None = None, **_: Any
    ) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)
        self.config = dict(config or {})
        self.weights_location = source.location
        self.network = self.load_network(source.location, backend=backend, dtype=dtype, config=self.config)

    @abc.abstractmethod
    def load_network(self, location: str, *, backend: Backend, dtype: str, config: dict[str, Any]) -> LipSyncNetwork:
        """Load the family's network from ``location`` (a weights file or folder) onto ``backend``."""

    streams_any_size = True

    def prepared_key(self, spec: SessionSpec) -> str:
        """The store key of this network's inputs for an avatar at the session's size."""
        weights = hashlib.sha256(self.weights_location.encode()).hexdigest()[:12]
        return f"{self.spec.id}-{self.network.face_size}-{spec.width}x{spec.height}-{weights}"

    def open_session(self, spec: SessionSpec, image: bytes | None, avatars: AvatarStore | None = None) -> AvatarSession:
        scheduler = scheduler_for(self.network, self.spec.id)
        face_box = spec.config.get("face_box")
        if spec.avatar_id:
            if avatars is None:
                raise AvatarNotFoundError(spec.avatar_id)
            avatar = avatars.get(spec.avatar_id)
            key = self.prepared_key(spec)
            layout = SessionAvatar.build(
                self.network,
                avatars.frames(avatar),
                avatar.face_boxes,
                spec.width,
                spec.height,
                avatar=avatar,
                cached=lambda compute: avatars.prepared(avatar, key, compute),
            )
        else:
            portrait = decode_image(image) if image else default_portrait()
            boxes = face_boxes([portrait], face_box, "the picture")
            layout = SessionAvatar.build(self.network, [portrait], boxes, spec.width, spec.height)
        return LipSyncSession(spec, self.network, scheduler, layout)
