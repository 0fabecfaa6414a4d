"""``LipSyncPipeline``: the registered audio2video pipeline of a lip-sync family (Wav2Lip, MuseTalk).

A family subclass only loads its network (:class:`omnirt.avatars.lipsync.LipSyncNetwork`) from the resolved
weights location. Realtime sessions and batch ``audio2video`` jobs then run through the avatar domain: the avatar is
prepared once (face boxes, crops, the network's per-frame inputs), audio becomes per-frame features with the context
the network declares, frames from many sessions are rendered in shared batches, and the faces are pasted back with a
feathered mask.

Each family is also registered for the ``avatar_prepare`` task (:data:`PREPARE_CAPABILITIES`): a job that prepares a
stored avatar for the model at a session size on a worker that serves the model, with progress per batch of template
frames, so that sessions naming the avatar open without preparing (:class:`AvatarPreparation`).
"""

from __future__ import annotations

import abc
import hashlib
import json
from typing import Any

from omnirt.avatars.errors import AvatarNotFoundError
from omnirt.avatars.lipsync import LipSyncNetwork
from omnirt.avatars.media import AvatarSession, SessionSpec
from omnirt.avatars.scheduler import scheduler_for
from omnirt.avatars.session import LipSyncSession, SessionAvatar
from omnirt.avatars.store import AvatarStore, decode_image, default_portrait, face_boxes
from omnirt.contracts.types import Artifact, GenerateResult
from omnirt.models.avatar import AvatarPipeline
from omnirt.models.base import BasePipeline, RunContext, RunReport
from omnirt.runtime.backends import Backend

PREPARE_TASK = "avatar_prepare"

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
    "supports_batching": False,  # sessions batch frames in the avatar scheduler, not jobs
    "backend_status": {"cpu": "supported", "cuda": "supported", "ascend": "supported"},
}

#: Registry fields of a family's ``avatar_prepare`` entry (its loading, defaults and weights are the family's).
PREPARE_CAPABILITIES: dict[str, Any] = {
    **LIPSYNC_CAPABILITIES,
    "task": PREPARE_TASK,
    "required_inputs": ("avatar_id",),
    "optional_inputs": (),
    "supported_config": ("width", "height", "batch_size", "dtype", "model_path"),
    "artifact_kind": "text",
    "realtime": False,
    "streaming": False,
    "supports_batching": False,
    "service_adapter": "",
}


def prepare_entry(family: dict[str, Any]) -> dict[str, Any]:
    """``register_model`` fields of a family's ``avatar_prepare`` entry, from the family's own fields."""
    supported = PREPARE_CAPABILITIES["supported_config"]
    defaults = {key: value for key, value in family.get("default_config", {}).items() if key in supported}
    return {**family, **PREPARE_CAPABILITIES, "default_config": defaults}


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

    def run(self, ctx: RunContext, report: RunReport) -> GenerateResult:
        if ctx.request.task == PREPARE_TASK:
            return AvatarPreparation(self).run(ctx, report)
        return super().run(ctx, report)

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


class AvatarPreparation(BasePipeline):
    """``avatar_prepare``: the prepared inputs of stored avatar ``inputs.avatar_id`` for a lip-sync model at
    ``config.width`` x ``config.height``, computed on the worker that runs the job and saved in the avatar store.

    Stages: read the avatar (``prepare_conditions``), read its template frames (``prepare_latents``), run the
    network's preparation batch by batch with progress (``denoise_loop``), and write ``prepared.json`` describing
    the result (``export``). An avatar prepared before is a cache hit and costs one read.
    """

    def __init__(self, pipeline: LipSyncPipeline) -> None:
        super().__init__(spec=pipeline.spec, backend=pipeline.backend, dtype=pipeline.dtype)
        self.pipeline = pipeline

    def prepare_conditions(self, ctx: RunContext) -> dict[str, Any]:
        store: AvatarStore | None = ctx.avatars
        avatar_id = str(ctx.request.inputs["avatar_id"])
        if store is None:
            raise AvatarNotFoundError(avatar_id)
        avatar = store.get(avatar_id)
        config = ctx.config
        spec = SessionSpec(
            model=self.spec.id,
            width=int(config.get("width", 416)),
            height=int(config.get("height", 704)),
            avatar_id=avatar.id,
        )
        return {"store": store, "avatar": avatar, "spec": spec, "key": self.pipeline.prepared_key(spec)}

    def prepare_latents(self, ctx: RunContext, conditions: dict[str, Any]) -> Any:
        return conditions["store"].frames(conditions["avatar"])

    def denoise_loop(self, ctx: RunContext, frames: Any, conditions: dict[str, Any]) -> dict[str, Any]:
        store, avatar, spec, key = (conditions[name] for name in ("store", "avatar", "spec", "key"))
        layout = SessionAvatar.build(
            self.pipeline.network,
            frames,
            avatar.face_boxes,
            spec.width,
            spec.height,
            avatar=avatar,
            cached=lambda compute: store.prepared(avatar, key, compute),
            progress=ctx.step,
        )
        return self.summary(conditions, frames=len(layout.frames), cache_hit=layout.cache_hit)

    def summary(self, conditions: dict[str, Any], *, frames: int, cache_hit: bool) -> dict[str, Any]:
        """What ``prepared.json`` says of a preparation: avatar, model, store key, size, frames, cache hit."""
        spec = conditions["spec"]
        return {
            "avatar_id": conditions["avatar"].id,
            "model": self.spec.id,
            "key": conditions["key"],
            "width": spec.width,
            "height": spec.height,
            "frames": frames,
            "cache_hit": cache_hit,
        }

    def decode(self, ctx: RunContext, raw: Any) -> dict[str, Any]:
        return raw

    def export(self, ctx: RunContext, decoded: dict[str, Any]) -> list[Artifact]:
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        path = ctx.output_dir / "prepared.json"
        path.write_text(json.dumps(decoded, indent=2))
        return [
            Artifact(
                kind="text",
                path=str(path),
                mime="application/json",
                width=decoded["width"],
                height=decoded["height"],
                num_frames=decoded["frames"],
                bytes=path.stat().st_size,
            )
        ]
