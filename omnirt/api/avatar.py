"""Realtime avatar routes: the FlashTalk-compatible WebSocket protocol OpenTalking speaks, the native
``realtime-avatar.ws.v1`` protocol, discovery and preload.

The API never renders. A session is a lease on a worker that holds the model (DESIGN.md): the API records the
session, asks a worker to take it, waits (admission deadline) for the worker's ``ready``, then relays audio chunks
in and ``VIDX`` video out through the session's channels. Names OpenTalking uses (``flashtalk``, ``wav2lip``, ...)
map to a registered avatar model of that name, or to the reference avatar standing in for it; discovery says which.
"""

from __future__ import annotations

import abc
import base64
import binascii
import json
import os
import time
import uuid
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from omnirt.api.sock import sock
from omnirt.contracts.errors import ModelNotRegisteredError, OmniRTError
from omnirt.events.channels import Message
from omnirt.models.avatar import SessionSpec
from omnirt.registry.registry import get_model
from omnirt.tasks.routing import candidate_queues, choose_queue

bp = Blueprint("avatar", __name__)

REFERENCE = "reference-avatar"
OPENTALKING_NAMES = ("flashtalk", "wav2lip", "quicktalk", "musetalk", "fasterliveportrait")
STAND_IN_FOR = {*OPENTALKING_NAMES, "soulx-flashtalk-14b", "soulx-flashhead-1.3b", "soulx-liveact-14b"}
FLASHTALK_PROMPT = "A person is talking. Only the foreground characters are moving, the background remains static."


class SessionError(Exception):
    def __init__(self, code: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.code, self.message, self.fatal = code, message, fatal


def admit_deadline_s() -> float:
    return float(os.environ.get("OMNIRT_SESSION_ADMIT_S", "10"))


def max_image_bytes() -> int:
    return int(os.environ.get("OMNIRT_MAX_IMAGE_BYTES", str(10 * 2**20)))


# OpenTalking's names for models OmniRT registers under their full ids.
REGISTERED_AS = {"flashtalk": "soulx-flashtalk-14b"}


def serving(model: str) -> bool:
    """Whether ``model`` can run here: embedded, its runtime is configured; in a fleet, a live worker serves it."""
    plane = backplane()
    if plane.settings.embedded:
        if model == "soulx-flashtalk-14b":
            return bool(os.environ.get("OMNIRT_FLASHTALK_UPSTREAM") or os.environ.get("OMNIRT_FLASHTALK_COMMAND"))
        return True
    return bool(plane.live_queues().intersection(candidate_queues(get_model(model, "audio2video"))))


def resolve_avatar(name: str) -> tuple[str, bool]:
    """(registered model that serves ``name``, whether it is the reference avatar standing in)."""
    target = REGISTERED_AS.get(name, name)
    try:
        spec = get_model(target, "audio2video")
        if spec.capabilities.realtime and (spec.id == REFERENCE or serving(spec.id)):
            return spec.id, False
    except ModelNotRegisteredError:
        pass
    if name in STAND_IN_FOR or name == REFERENCE:
        return REFERENCE, name != REFERENCE
    raise SessionError("unknown_model", f"Unknown avatar model '{name}'.")


def build_spec(model: str, fields: dict[str, Any]) -> SessionSpec:
    def number(key: str, default: int, low: int, high: int) -> int:
        value = fields.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise SessionError("bad_config", f"{key} must be an integer in [{low}, {high}].")
        return value

    width, height = number("width", 416, 64, 2048), number("height", 704, 64, 2048)
    if width % 2 or height % 2:
        raise SessionError("bad_config", "width and height must be even.")
    fps = number("fps", 25, 1, 60)
    slice_len = number("slice_len", 28, 1, 120)
    chunk_samples = fields.get("chunk_samples")
    if chunk_samples is not None and chunk_samples != slice_len * 16000 // fps:
        raise SessionError("bad_config", f"chunk_samples must be slice_len*16000/fps = {slice_len * 16000 // fps}.")
    config = fields.get("config") if isinstance(fields.get("config"), dict) else {}
    return SessionSpec(
        model=model,
        fps=fps,
        width=width,
        height=height,
        slice_len=slice_len,
        frame_num=number("frame_num", slice_len + 1, 1, 240),
        motion_frames_num=number("motion_frames_num", 1, 0, 120),
        seed=number("seed", 9999, 0, 2**31),
        prompt=str(fields.get("prompt") or ""),
        config={**config, **{key: fields[key] for key in ("mouth_open_multiplier",) if key in fields}},
    )


def decode_image(value: Any) -> bytes | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise SessionError("bad_image", "The reference image must be base64 text.")
    if len(value) > max_image_bytes() * 4 // 3 + 4:
        raise SessionError("bad_image", f"The reference image is larger than {max_image_bytes()} bytes.")
    try:
        return base64.b64decode(value.partition(",")[2] if value.startswith("data:") else value, validate=True)
    except (binascii.Error, ValueError):
        raise SessionError("bad_image", "The reference image is not valid base64.") from None


class Lease:
    """The API side of one session: open it on a worker, push input, read output, notice a dead worker."""

    def __init__(self, backplane: Any, spec: SessionSpec, image: bytes | None) -> None:
        self.backplane, self.spec = backplane, spec
        self.id = f"avt_{uuid.uuid4().hex}"
        self.trace_id = f"trace_{uuid.uuid4().hex}"
        self.worker_id: str | None = None
        self.reader = backplane.sessions.reader(self.id, "out")
        settings = backplane.settings
        if settings.embedded:
            queue_name = "embedded"
        else:
            queue_name, _ = choose_queue(
                get_model(spec.model, "audio2video"),
                "auto",
                live_queues=backplane.live_queues(),
                default_device=settings.default_device,
            )
        contract = {key: value for key, value in spec.to_dict().items() if key != "chunk_samples"}
        backplane.sessions.create(
            self.id,
            {
                "spec": json.dumps(contract),
                "image": base64.b64encode(image).decode() if image else "",
                "model": spec.model,
                "created_ms": str(time.time() * 1000),
            },
        )
        backplane.dispatcher.start_session(self.id, spec.model, queue_name)
        deadline = time.monotonic() + admit_deadline_s()
        while True:
            message = self.reader.get(timeout=0.2)
            if message is not None:
                if message.kind == "ready":
                    self.worker_id = message.meta.get("worker_id")
                    return
                if message.kind == "error":
                    raise SessionError(message.meta.get("code", "runtime_error"), message.meta.get("message", ""))
            if time.monotonic() > deadline and backplane.sessions.abandon(self.id):
                raise SessionError(
                    "no_capacity", "No avatar worker took the session in time; try again later.", fatal=True
                )

    def send(self, kind: str, data: bytes = b"", **meta: Any) -> None:
        self.backplane.sessions.send(self.id, "in", Message(kind, meta, data))

    def receive(self, timeout: float = 120.0) -> Message:
        """The next output message; raises when the worker is gone or nothing comes in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.reader.get(timeout=1.0)
            if message is not None:
                if message.kind == "error" and message.meta.get("code") == "idle_timeout":
                    raise SessionError("idle_timeout", message.meta.get("message", ""), fatal=True)
                return message
            if self.worker_id and not self.backplane.workers.alive(self.worker_id):
                raise SessionError("worker_lost", "The worker running this session stopped.", fatal=True)
        raise SessionError("timeout", "The worker did not answer in time.", fatal=True)

    def close(self) -> None:
        try:
            self.send("close")
        except Exception:  # noqa: BLE001 - the session may be gone already
            pass


def backplane() -> Any:
    return current_app.extensions["omnirt"]


def _error(ws: Any, code: str | None, message: str) -> None:
    payload = {"type": "error", "message": message}
    if code:
        payload["code"] = code
    ws.send(json.dumps(payload))


def _audio(lease: Lease, message: bytes) -> Message:
    if message[:4] != b"AUDI":
        raise SessionError("bad_audio_magic", "Binary messages must start with AUDI.")
    if len(message) - 4 != lease.spec.chunk_samples * 2:
        raise SessionError("bad_chunk", f"Each AUDI chunk must hold exactly {lease.spec.chunk_samples} int16 samples.")
    lease.send("audio", message[4:])
    reply = lease.receive()
    if reply.kind == "error":
        raise SessionError(reply.meta.get("code", "runtime_error"), reply.meta.get("message", ""))
    return reply


class SocketSession(abc.ABC):
    """One client socket: read messages until it closes, hand text and binary to the protocol, report coded errors
    (a fatal one ends the socket), and always release the session's lease."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.plane = backplane()
        self.lease: Lease | None = None

    def run(self) -> None:
        try:
            while True:
                message = self.ws.receive()
                if message is None:
                    continue
                try:
                    if isinstance(message, (bytes, bytearray)):
                        self.on_binary(bytes(message))
                    else:
                        self.on_text(message)
                except SessionError as exc:
                    _error(self.ws, exc.code, exc.message)
                    if exc.fatal:
                        return
                except OmniRTError as exc:
                    _error(self.ws, exc.code, exc.message)
        finally:
            self.end_lease()
            _close_quietly(self.ws)

    def send(self, payload: dict[str, Any]) -> None:
        self.ws.send(json.dumps(payload))

    def open_lease(self, spec: SessionSpec, image: bytes | None) -> Lease:
        self.end_lease()
        self.lease = Lease(self.plane, spec, image)
        return self.lease

    def end_lease(self) -> str | None:
        lease, self.lease = self.lease, None
        if lease is not None:
            lease.close()
            return lease.id
        return None

    @abc.abstractmethod
    def on_binary(self, message: bytes) -> None:
        """A binary frame from the client (AUDI audio)."""

    @abc.abstractmethod
    def on_text(self, message: str) -> None:
        """A text frame from the client (JSON control)."""


class FlashTalkSocket(SocketSession):
    """FlashTalk protocol: init -> init_ok; each AUDI chunk -> exactly one VIDX; config_update; close."""

    def __init__(self, ws: Any, name: str) -> None:
        super().__init__(ws)
        self.name = name

    def on_binary(self, message: bytes) -> None:
        if self.lease is None:
            _error(self.ws, None, "No active session. Send 'init' first.")
            return
        self.ws.send(_audio(self.lease, message).data)

    def on_text(self, message: str) -> None:
        try:
            payload = json.loads(message)
        except ValueError:
            _error(self.ws, None, "Invalid JSON")
            return
        kind = payload.get("type")
        if kind == "init":
            model, stand_in = resolve_avatar(self.name)
            spec = build_spec(model, payload)
            lease = self.open_lease(spec, decode_image(payload.get("ref_image")))
            self.send(
                {
                    "type": "init_ok",
                    "model": self.name,
                    "backing_model": model,
                    "stand_in": stand_in,
                    "wav2lip_postprocess_mode": "easy_improved",
                    "frame_num": spec.frame_num,
                    "motion_frames_num": spec.motion_frames_num,
                    "slice_len": spec.slice_len,
                    "fps": spec.fps,
                    "height": spec.height,
                    "width": spec.width,
                    "chunk_samples": spec.chunk_samples,
                    "reference_mode": "image",
                    "template_mode": "image",
                    "preprocessed": False,
                    "lookahead_chunks": 0,
                    "preload": None,
                    "session_id": lease.id,
                }
            )
        elif kind == "config_update":
            if self.lease is None:
                _error(self.ws, None, "No active session. Send 'init' first.")
            elif not isinstance(payload.get("config"), dict):
                _error(self.ws, "bad_config", "config must be an object")
            else:
                self.lease.send("config", config=payload["config"])
                self.send({"type": "config_ok", "updated": self.lease.receive().meta.get("updated", {})})
        elif kind == "close":
            self.end_lease()
            self.send({"type": "close_ok"})
        else:
            _error(self.ws, None, f"Unknown message type: {kind}")


class NativeSocket(SocketSession):
    """realtime-avatar.ws.v1: session.create -> session.created; AUDI -> metrics then VIDX; cancel; close; ping."""

    def __init__(self, ws: Any) -> None:
        super().__init__(ws)
        self.created_at = 0.0
        self.first_sent = False

    def on_binary(self, message: bytes) -> None:
        if self.lease is None:
            raise SessionError("session_required", "Create a session before sending audio.")
        reply = _audio(self.lease, message)
        metrics = {
            "type": "metrics",
            "session_id": self.lease.id,
            "trace_id": self.lease.trace_id,
            **{key: reply.meta[key] for key in ("chunk_index", "infer_ms", "encode_ms")},
        }
        if not self.first_sent:
            metrics["ttff_ms"] = round((time.monotonic() - self.created_at) * 1000, 3)
            self.first_sent = True
        self.send(metrics)
        self.ws.send(reply.data)

    def on_text(self, message: str) -> None:
        try:
            payload = json.loads(message)
        except ValueError:
            raise SessionError("bad_json", "Messages must be JSON text or AUDI binary.") from None
        kind = payload.get("type")
        if kind == "session.create":
            self.created_at, self.first_sent = time.monotonic(), False
            model, stand_in = resolve_avatar(str(payload.get("model") or REFERENCE))
            inputs = payload.get("inputs") if isinstance(payload.get("inputs"), dict) else {}
            spec = build_spec(model, {**(payload.get("config") or {}), "prompt": inputs.get("prompt")})
            lease = self.open_lease(spec, decode_image(inputs.get("image_b64")))
            self.send(
                {
                    "type": "session.created",
                    "session_id": lease.id,
                    "trace_id": lease.trace_id,
                    "model": model,
                    "stand_in": stand_in,
                    "audio": {
                        "format": "pcm_s16le",
                        "sample_rate": 16000,
                        "channels": 1,
                        "chunk_samples": spec.chunk_samples,
                    },
                    "video": {
                        "encoding": "jpeg-seq",
                        "wire_magic": "VIDX",
                        "fps": spec.fps,
                        "width": spec.width,
                        "height": spec.height,
                        "frame_count": spec.slice_len,
                    },
                    "reference_mode": "image",
                    "template_mode": "image",
                    "preprocessed": False,
                    "lookahead_chunks": 0,
                    "runtime_config": spec.config,
                }
            )
        elif kind == "session.cancel":
            if self.lease is None:
                raise SessionError("session_required", "No session to cancel.")
            self.lease.send("cancel")
            self.lease.receive()
            self.send({"type": "session.cancelled", "session_id": self.lease.id})
        elif kind == "session.close":
            session_id = self.end_lease()
            if session_id is None:
                raise SessionError("session_required", "No session to close.")
            self.send({"type": "session.closed", "session_id": session_id})
        elif kind == "ping":
            self.send({"type": "pong"})
        else:
            raise SessionError("unsupported_message", f"Unsupported message type: {kind}")


@sock.route("/", bp=bp)
def flashtalk_root(ws: Any) -> None:
    FlashTalkSocket(ws, "flashtalk").run()


@sock.route("/v1/audio2video/<model>", bp=bp)
def flashtalk_audio2video(ws: Any, model: str) -> None:
    FlashTalkSocket(ws, model).run()


@sock.route("/v1/avatar/realtime", bp=bp)
def native_realtime(ws: Any) -> None:
    NativeSocket(ws).run()


@sock.route("/v1/avatar/<model>", bp=bp)
def flashtalk_avatar(ws: Any, model: str) -> None:
    FlashTalkSocket(ws, model).run()


def _close_quietly(ws: Any) -> None:
    try:
        ws.close()
    except Exception:  # noqa: BLE001 - the client may have gone already
        pass


def avatar_statuses() -> list[dict[str, Any]]:
    plane = backplane()
    live = plane.live_queues()
    statuses = []
    for name in (*OPENTALKING_NAMES, REFERENCE):
        model, stand_in = resolve_avatar(name)
        connected = plane.settings.embedded or bool(
            live.intersection(candidate_queues(get_model(model, "audio2video")))
        )
        statuses.append(
            {
                "id": name,
                "model": model,
                "connected": connected,
                "stand_in": stand_in,
                "reason": ("reference_stand_in" if stand_in else "model") if connected else "no_live_worker",
            }
        )
    return statuses


@bp.get("/v1/audio2video/models")
@bp.get("/v1/avatar/models")
def avatar_models() -> Any:
    """Realtime avatar discovery (OpenTalking reads `models`, then `statuses[].connected`).
    ---
    get:
      responses: {200: {description: "{models, statuses: [{id, model, connected, stand_in, reason}]}"}}
    """
    statuses = avatar_statuses()
    return jsonify({"models": [status["id"] for status in statuses if status["connected"]], "statuses": statuses})


@bp.post("/v1/audio2video/<model>/preload")
@bp.post("/v1/avatar/<model>/preload")
def avatar_preload(model: str) -> Any:
    """Load the avatar model (embedded); fleet workers preload with `omnirt worker --preload`.
    ---
    post:
      responses: {200: {description: "{type: preload_result | preload_skipped | error, ...}"}}
    """
    try:
        backing, _ = resolve_avatar(model)
    except SessionError as exc:
        return jsonify({"type": "error", "code": exc.code, "message": exc.message})
    if not backplane().settings.embedded:
        return jsonify(
            {
                "type": "preload_skipped",
                "model": backing,
                "reason": "fleet workers load models at start: omnirt worker --preload " + backing,
            }
        )
    from omnirt.runtime.engine import get_default_engine

    started = time.perf_counter()
    engine = get_default_engine()
    warm = any(key[0] == backing for key in engine.cache.keys())
    engine.preload(backing)
    body = request.get_json(force=True, silent=True) or {}
    return jsonify(
        {
            "type": "preload_result",
            "model": backing,
            "cache_hit": warm,
            "frames": body.get("frames"),
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
        }
    )
