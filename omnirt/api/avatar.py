"""Realtime avatar routes: the FlashTalk-compatible WebSocket protocol OpenTalking speaks, the native
``realtime-avatar.ws.v1`` protocol, discovery, preload and the avatar store's HTTP routes.

The API never renders and never decides which model serves a name: the avatar domain (:mod:`omnirt.avatars`) does.
A session is a lease on a worker that holds the model (DESIGN.md): the API records the session, asks a worker to take
it, waits (admission deadline) for the worker's ``ready``, then relays audio in and ``VIDX`` video out through the
session's channels. Lip-sync models render prepared avatars: a session names one by id, or sends a picture, which is
stored (once per content) and named from then on.

Hostile or broken clients get a coded error frame, never silence: every field of ``init`` / ``session.create`` /
``config_update`` is type-checked here, at the door (``bad_config``, ``bad_face_box``, ``bad_image``, ...), and a
message that is not a JSON object is ``bad_message``. No thread outlives its client: while waiting on the client the
socket loop watches the worker's heartbeat (an idle session hears ``worker_lost`` as fast as a streaming one), every
wait on the worker also watches the client, and a lease let go (client gone, error, close) closes the worker's
session and ends its channels.
"""

from __future__ import annotations

import abc
import base64
import binascii
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Collection
from typing import Any

from flask import Blueprint, jsonify, request, send_file
from marshmallow import Schema, validate
from marshmallow import fields as schema_fields  # `fields` names the client's session fields below
from simple_websocket import ConnectionClosed

from omnirt.api.errors import ApiError, json_object
from omnirt.api.presenters import job_to_dict
from omnirt.api.services import backplane
from omnirt.api.sock import sock
from omnirt.api.submission import submit
from omnirt.avatars import names
from omnirt.avatars.media import MAX_AUDIO_MESSAGE_S, SAMPLE_RATE, SessionSpec
from omnirt.avatars.media import MessageKind as Kind
from omnirt.contracts.errors import OmniRTError
from omnirt.contracts.types import GenerateRequest
from omnirt.events.channels import Message
from omnirt.registry.aliases import alias_map
from omnirt.registry.registry import get_model
from omnirt.tasks.routing import candidate_queues, choose_queue
from omnirt.telemetry import realtime as realtime_metrics

bp = Blueprint("avatar", __name__)
log = logging.getLogger(__name__)

REFERENCE = names.REFERENCE
POLL_S = 0.25  # how often a wait on the worker looks at the client, and a wait on the client at the worker
LIVENESS_EVERY_S = 0.5  # the least time between two looks at the worker's heartbeat
MOUTH_OPEN_RANGE = (0.0, 10.0)


class SessionError(Exception):
    def __init__(self, code: str, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.code, self.message, self.fatal = code, message, fatal


class ClientGone(Exception):
    """The client's socket closed while the server waited on the worker for it."""


def max_image_bytes() -> int:
    return int(backplane().settings.max_image_bytes)


def readiness(model: str) -> str:
    """``ready``, or why ``model`` cannot run: embedded, this process decides; in a fleet, the live workers."""
    plane = backplane()
    spec = get_model(model, "audio2video")
    if plane.settings.embedded:
        return names.local_readiness(spec)
    return plane.cached(
        f"readiness:{model}", lambda: names.fleet_readiness(spec, plane.workers.workers(), candidate_queues)
    )


def resolve_avatar(name: str) -> str:
    """The registered model that serves ``name``; refused (clearly) when none does or it cannot run here."""
    resolved = names.resolve(name, alias_map(backplane().settings))
    if resolved.model is None:
        realtime_metrics.session_rejected(name, "unknown_model")
        raise SessionError("unknown_model", f"No avatar model serves '{name}' on this server.", fatal=True)
    reason = readiness(resolved.model)
    if reason != names.READY:
        realtime_metrics.session_rejected(resolved.model, "model_unavailable")
        raise SessionError(
            "model_unavailable",
            f"Avatar model '{resolved.model}' cannot run here: {reason.replace('_', ' ')}.",
            fatal=False,
        )
    return resolved.model


def build_spec(model: str, fields: dict[str, Any], *, chunked: bool) -> SessionSpec:
    """The session's media contract from the client's fields (FlashTalk's ``init``, the native ``config``, a preload
    body), every field type-checked: ``bad_config`` (``bad_face_box`` for the face box) names the first bad one."""
    if not isinstance(fields, dict):
        raise SessionError("bad_config", "The session settings must be a JSON object.")

    def number(key: str, default: int, low: int, high: int) -> int:
        value = fields.get(key, default)
        if not _is_int(value) or not low <= value <= high:
            raise SessionError("bad_config", f"{key} must be an integer in [{low}, {high}].")
        return value

    width, height = number("width", 416, 64, 2048), number("height", 704, 64, 2048)
    if width % 2 or height % 2:
        raise SessionError("bad_config", "width and height must be even.")
    fps = number("fps", 25, 1, 60)
    slice_len = number("slice_len", 28, 1, 120)
    chunk_samples = fields.get("chunk_samples")
    if chunk_samples is not None and (not _is_int(chunk_samples) or chunk_samples != slice_len * SAMPLE_RATE // fps):
        raise SessionError("bad_config", f"chunk_samples must be slice_len*16000/fps = {slice_len * 16000 // fps}.")
    config = optional_object(fields.get("config"), "config")
    config = {**config, **{key: fields[key] for key in ("mouth_open_multiplier", "face_box") if key in fields}}
    return SessionSpec(
        model=model,
        fps=fps,
        width=width,
        height=height,
        slice_len=slice_len,
        frame_num=number("frame_num", slice_len + 1, 1, 240),
        motion_frames_num=number("motion_frames_num", 1, 0, 120),
        seed=number("seed", 9999, 0, 2**31),
        prompt=optional_text(fields.get("prompt"), "prompt"),
        chunked=chunked,
        config=check_config(config),
    )


def check_config(config: Any) -> dict[str, Any]:
    """A session's live settings (``config``, FlashTalk's ``config_update``), checked: an object, a finite
    ``mouth_open_multiplier`` in ``MOUTH_OPEN_RANGE``, a ``face_box`` of four pixel integers. Returns it."""
    if not isinstance(config, dict):
        raise SessionError("bad_config", "config must be a JSON object.")
    if "mouth_open_multiplier" in config:
        value, (low, high) = config["mouth_open_multiplier"], MOUTH_OPEN_RANGE
        if not _is_number(value) or not low <= value <= high:
            raise SessionError("bad_config", f"mouth_open_multiplier must be a number in [{low:g}, {high:g}].")
    if "face_box" in config and not _is_box(config["face_box"]):
        raise SessionError("bad_face_box", "face_box must be [x, y, width, height] in pixels.")
    return config


def optional_object(value: Any, name: str) -> dict[str, Any]:
    """``value`` when it is a JSON object, ``{}`` when absent (null); ``bad_config`` otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SessionError("bad_config", f"{name} must be a JSON object.")
    return value


def optional_text(value: Any, name: str) -> str:
    """``value`` when it is a string, ``""`` when absent (null); ``bad_config`` otherwise."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SessionError("bad_config", f"{name} must be a string.")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_box(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 4 and all(_is_int(item) and item >= 0 for item in value)


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


def attach_avatar(spec: SessionSpec, avatar_id: Any, image: bytes | None) -> bytes | None:
    """For models that render prepared avatars: name the stored avatar (storing the picture once). Returns the image
    the worker still needs (models without prepared avatars take the picture itself)."""
    if avatar_id is not None and not isinstance(avatar_id, str):
        raise SessionError("bad_avatar", "avatar_id must be a string.")
    if not get_model(spec.model, "audio2video").capabilities.prepared_avatars:
        return image
    store = backplane().avatars
    if avatar_id:
        spec.avatar_id = store.get(avatar_id).id
    elif image is not None:
        box = spec.config.get("face_box")
        spec.avatar_id = store.add(image, kind="image", face_box=box)[0].id
    return None


class Lease:
    """The API side of one session: open it on a worker, push input, read output, notice a dead worker or a client
    that left (``abort``), and let it go (:meth:`close`) so that the worker's session ends too."""

    def __init__(
        self,
        backplane: Any,
        spec: SessionSpec,
        image: bytes | None,
        *,
        abort: Callable[[], bool] | None = None,
        protocol: str = "preload",
    ) -> None:
        self.backplane, self.spec, self.abort, self.protocol = backplane, spec, abort, protocol
        self.opened_at = time.monotonic()
        self._asked_at: float | None = None  # when the audio now being rendered was sent
        self._first_frame = True
        self.id = f"avt_{uuid.uuid4().hex}"
        self.trace_id = f"trace_{uuid.uuid4().hex}"
        self.worker_id: str | None = None
        self.session_info: dict[str, Any] = {}
        self.closed = False
        self._liveness_at = 0.0
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
        self.reader = backplane.sessions.reader(self.id, "out")
        try:
            backplane.dispatcher.start_session(self.id, spec.model, queue_name)
            self._admit()
        except SessionError as exc:
            realtime_metrics.session_rejected(spec.model, exc.code)
            self.close()
            raise
        except BaseException:
            self.close()
            raise
        realtime_metrics.session_opened(spec.model, protocol)

    def _admit(self) -> None:
        """Wait for a worker's ``ready``: ``no_capacity`` when none claims the session by the admission deadline;
        once one has, as long as it lives (opening may load a model) and the client stays."""
        sessions = self.backplane.sessions
        deadline = time.monotonic() + self.backplane.settings.session_admit_s
        while True:
            self._check_client()
            message = self.reader.get(timeout=POLL_S)
            if message is not None:
                if message.kind == Kind.READY:
                    self.worker_id = message.meta.get("worker_id")
                    self.session_info = message.meta.get("session") or {}
                    return
                if message.kind == Kind.ERROR:
                    raise SessionError(message.meta.get("code", "runtime_error"), message.meta.get("message", ""))
                continue
            if time.monotonic() <= deadline:
                continue
            if sessions.abandon(self.id):
                raise SessionError(
                    "no_capacity", "No avatar worker took the session in time; try again later.", fatal=True
                )
            holder = (sessions.record(self.id) or {}).get("worker_id")
            if holder is None or not self.backplane.workers.alive(holder):
                raise SessionError("worker_lost", "The worker opening this session stopped.", fatal=True)

    def send(self, kind: str, data: bytes = b"", **meta: Any) -> None:
        if kind in (Kind.AUDIO, Kind.FLUSH) and self._asked_at is None:
            self._asked_at = time.monotonic()
        self.backplane.sessions.send(self.id, "in", Message(kind, meta, data))

    def _relayed(self, message: Message) -> None:
        """Metrics of a chunk of video on its way to the client: TTFF, latency since its audio was sent, frames."""
        now = time.monotonic()
        frames = int(message.meta.get("frames", 0))
        asked, self._asked_at = self._asked_at, None
        realtime_metrics.chunk(self.spec.model, self.protocol, None if asked is None else now - asked, frames)
        if frames and self._first_frame:
            self._first_frame = False
            realtime_metrics.first_frame(self.spec.model, self.protocol, now - self.opened_at)

    def receive(self, timeout: float = 120.0) -> Message:
        """The next output message; raises when the worker is gone, the client left, or nothing comes in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_client()
            message = self.reader.get(timeout=POLL_S)
            if message is not None:
                if message.kind == Kind.ERROR and message.meta.get("code") == "idle_timeout":
                    raise SessionError("idle_timeout", message.meta.get("message", ""), fatal=True)
                if message.kind == Kind.VIDEO:
                    self._relayed(message)
                return message
            self.check_worker()
        raise SessionError("timeout", "The worker did not answer in time.", fatal=True)

    def check_worker(self) -> None:
        """``worker_lost`` (fatal) when the worker holding the session has no heartbeat; looks at most every
        ``LIVENESS_EVERY_S``."""
        now = time.monotonic()
        if not self.worker_id or now - self._liveness_at < LIVENESS_EVERY_S:
            return
        self._liveness_at = now
        if not self.backplane.workers.alive(self.worker_id):
            raise SessionError("worker_lost", "The worker running this session stopped.", fatal=True)

    def _check_client(self) -> None:
        if self.abort is not None and self.abort():
            raise ClientGone(self.id)

    def close(self) -> None:
        """Let the session go: abandoned if no worker took it yet, else asked to close; then its channels end.
        Idempotent, and quiet when the session or the backplane is gone already."""
        if self.closed:
            return
        self.closed = True
        sessions = self.backplane.sessions
        try:
            if self.worker_id is not None or not sessions.abandon(self.id):
                self.send(Kind.CLOSE)
            sessions.end(self.id)
        except Exception:  # letting go must not fail the socket; the keys expire anyway
            log.warning("session %s: could not close the lease", self.id, exc_info=True)


def _error(ws: Any, code: str | None, message: str) -> None:
    payload = {"type": "error", "message": message}
    if code:
        payload["code"] = code
    ws.send(json.dumps(payload))


def _check_audio(spec: SessionSpec, message: bytes) -> bytes:
    """The PCM of one AUDI message. The FlashTalk protocol takes exactly ``chunk_samples``; the native one any whole
    number of samples up to ``MAX_AUDIO_MESSAGE_S``."""
    if message[:4] != b"AUDI":
        raise SessionError("bad_audio_magic", "Binary messages must start with AUDI.")
    size = len(message) - 4
    if spec.chunked and size != spec.chunk_samples * 2:
        raise SessionError("bad_chunk", f"Each AUDI chunk must hold exactly {spec.chunk_samples} int16 samples.")
    if not spec.chunked and (size % 2 or size > MAX_AUDIO_MESSAGE_S * SAMPLE_RATE * 2):
        raise SessionError(
            "bad_chunk", f"AUDI must carry whole int16 samples, at most {MAX_AUDIO_MESSAGE_S:g} s of 16 kHz audio."
        )
    return message[4:]


def _json_object(message: str, code: str, text: str) -> dict[str, Any]:
    """A client's text message as a JSON object: ``code`` when it is not JSON, ``bad_message`` when it is JSON but
    not an object or its ``type`` is not a string."""
    try:
        payload = json.loads(message)
    except ValueError:
        raise SessionError(code, text) from None
    if not isinstance(payload, dict):
        raise SessionError("bad_message", "Messages must be JSON objects with a 'type'.")
    if not isinstance(payload.get("type"), str):
        raise SessionError("bad_message", "The message's 'type' must be a string.")
    return payload


class SocketSession(abc.ABC):
    """One client socket: read messages until it closes, hand text and binary to the protocol, report coded errors
    (a fatal one ends the socket), watch the worker while the client is quiet, and always release the lease."""

    protocol = "websocket"  # the metrics' label

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.plane = backplane()
        self.lease: Lease | None = None

    def run(self) -> None:
        try:
            while True:
                try:
                    message = self.ws.receive(timeout=POLL_S)
                except ConnectionClosed:
                    return
                try:
                    if message is None:
                        if self.lease is not None:
                            self.lease.check_worker()
                    elif isinstance(message, (bytes, bytearray)):
                        self.on_binary(bytes(message))
                    else:
                        self.on_text(message)
                except SessionError as exc:
                    self.error(exc.code, exc.message)
                    if exc.fatal:
                        return
                except OmniRTError as exc:
                    self.error(exc.code, exc.message)
        except (ClientGone, ConnectionClosed):
            return
        except Exception:  # a bug must not end the socket silently: say so, then close
            log.exception("avatar socket failed")
            try:
                self.error("internal_error", "The server failed handling the message; the session is closed.")
            except ConnectionClosed:
                pass
        finally:
            self.end_lease()
            _close_quietly(self.ws)

    def send(self, payload: dict[str, Any]) -> None:
        self.ws.send(json.dumps(payload))

    def error(self, code: str | None, message: str) -> None:
        _error(self.ws, code, message)

    def open_lease(self, spec: SessionSpec, image: bytes | None) -> Lease:
        self.end_lease()
        self.lease = Lease(self.plane, spec, image, abort=lambda: not self.ws.connected, protocol=self.protocol)
        return self.lease

    def end_lease(self) -> str | None:
        lease, self.lease = self.lease, None
        if lease is not None:
            lease.close()
            return lease.id
        return None

    def request(self, kind: str, data: bytes = b"", *, expect: Collection[str], **meta: Any) -> Message:
        """Send one message to the worker and return its answer, one of the ``expect`` kinds; an ``error`` answer
        raises it, and other messages met on the way go to :meth:`on_unasked`."""
        assert self.lease is not None
        self.lease.send(kind, data, **meta)
        while True:
            reply = self.lease.receive()
            if reply.kind == Kind.ERROR:
                raise SessionError(reply.meta.get("code", "runtime_error"), reply.meta.get("message", ""))
            if reply.kind in expect:
                return reply
            self.on_unasked(reply)

    def on_unasked(self, message: Message) -> None:
        """A worker message that answers nothing the socket is waiting for (a late answer): dropped."""
        log.info("session %s: dropped an unasked %s message", self.lease.id if self.lease else "-", message.kind)

    @abc.abstractmethod
    def on_binary(self, message: bytes) -> None:
        """A binary frame from the client (AUDI audio)."""

    @abc.abstractmethod
    def on_text(self, message: str) -> None:
        """A text frame from the client (JSON control)."""


class FlashTalkSocket(SocketSession):
    """FlashTalk protocol: init -> init_ok; each AUDI chunk -> exactly one VIDX; config_update; close."""

    protocol = "flashtalk"

    def __init__(self, ws: Any, name: str) -> None:
        super().__init__(ws)
        self.name = name

    def on_binary(self, message: bytes) -> None:
        if self.lease is None:
            _error(self.ws, None, "No active session. Send 'init' first.")
            return
        pcm = _check_audio(self.lease.spec, message)
        self.ws.send(self.request(Kind.AUDIO, pcm, expect=(Kind.VIDEO,)).data)

    def on_text(self, message: str) -> None:
        payload = _json_object(message, "bad_json", "Invalid JSON")
        kind = payload["type"]
        if kind == "init":
            model = resolve_avatar(self.name)
            spec = build_spec(model, payload, chunked=True)
            image = attach_avatar(spec, payload.get("avatar_id"), decode_image(payload.get("ref_image")))
            lease = self.open_lease(spec, image)
            info = lease.session_info
            self.send(
                {
                    "type": "init_ok",
                    "model": self.name,
                    "backing_model": model,
                    "wav2lip_postprocess_mode": "easy_improved",
                    "frame_num": spec.frame_num,
                    "motion_frames_num": spec.motion_frames_num,
                    "slice_len": spec.slice_len,
                    "fps": spec.fps,
                    "height": spec.height,
                    "width": spec.width,
                    "chunk_samples": spec.chunk_samples,
                    "reference_mode": "image",
                    "template_mode": _template_mode(info),
                    "preprocessed": bool(info.get("preprocessed", False)),
                    "lookahead_chunks": 0,
                    "preload": None,
                    "avatar_id": spec.avatar_id or None,
                    "session_id": lease.id,
                }
            )
        elif kind == "config_update":
            if self.lease is None:
                _error(self.ws, None, "No active session. Send 'init' first.")
                return
            config = check_config(payload.get("config"))
            reply = self.request(Kind.CONFIG, config=config, expect=(Kind.CONFIG_OK,))
            self.send({"type": "config_ok", "updated": reply.meta.get("updated", {})})
        elif kind == "close":
            self.end_lease()
            self.send({"type": "close_ok"})
        else:
            _error(self.ws, "unsupported_message", f"Unknown message type: {kind}")


class NativeSocket(SocketSession):
    """realtime-avatar.ws.v1: session.create -> session.created; AUDI -> metrics then VIDX; cancel; close; ping."""

    protocol = "native"

    def __init__(self, ws: Any) -> None:
        super().__init__(ws)
        self.created_at = 0.0
        self.first_sent = False

    def on_binary(self, message: bytes) -> None:
        if self.lease is None:
            raise SessionError("session_required", "Create a session before sending audio.")
        pcm = _check_audio(self.lease.spec, message)
        self.relay_video(self.request(Kind.AUDIO, pcm, expect=(Kind.VIDEO,)))

    def on_unasked(self, message: Message) -> None:
        """Frames the worker flushed on its own (the audio paused) reach the client as any other chunk."""
        if message.kind == Kind.VIDEO:
            self.relay_video(message)
        else:
            super().on_unasked(message)

    def relay_video(self, reply: Message) -> None:
        """``metrics`` then the ``VIDX`` (which may hold no frame while the lookahead fills)."""
        assert self.lease is not None
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
        payload = _json_object(message, "bad_json", "Messages must be JSON text or AUDI binary.")
        kind = payload["type"]
        if kind == "session.create":
            self.created_at, self.first_sent = time.monotonic(), False
            model = resolve_avatar(optional_text(payload.get("model"), "model") or REFERENCE)
            inputs = optional_object(payload.get("inputs"), "inputs")
            config = optional_object(payload.get("config"), "config")
            spec = build_spec(model, {**config, "prompt": inputs.get("prompt")}, chunked=False)
            image = attach_avatar(spec, inputs.get("avatar_id"), decode_image(inputs.get("image_b64")))
            lease = self.open_lease(spec, image)
            info = lease.session_info
            self.send(
                {
                    "type": "session.created",
                    "session_id": lease.id,
                    "trace_id": lease.trace_id,
                    "model": model,
                    "avatar_id": spec.avatar_id or None,
                    "audio": {
                        "format": "pcm_s16le",
                        "sample_rate": SAMPLE_RATE,
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
                    "template_mode": _template_mode(info),
                    "preprocessed": bool(info.get("preprocessed", False)),
                    "lookahead_chunks": 0,
                    "lookahead_frames": info.get("lookahead_frames", 0),
                    "lookahead_ms": info.get("lookahead_ms", 0),
                    "runtime_config": spec.config,
                }
            )
        elif kind == "session.flush":
            if self.lease is None:
                raise SessionError("session_required", "No session to flush.")
            self.relay_video(self.request(Kind.FLUSH, expect=(Kind.VIDEO,)))
        elif kind == "session.cancel":
            if self.lease is None:
                raise SessionError("session_required", "No session to cancel.")
            self.request(Kind.CANCEL, expect=(Kind.CANCELLED,))
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


# -- the HTTP bodies, as the OpenAPI document states them ------------------------------------------------------------
# The checks themselves are build_spec's and check_config's (the WebSocket doors share them, with coded errors); these
# schemas only describe the same bounds, so that clients and fuzzers see them.


def _int_field(low: int, high: int, **metadata: Any) -> schema_fields.Integer:
    return schema_fields.Integer(strict=True, validate=validate.Range(low, high), metadata=metadata)


class AvatarSessionFieldsSchema(Schema):
    """The session size and settings of a preload or a preparation (FlashTalk's ``init`` fields)."""

    width = _int_field(64, 2048, multipleOf=2, description="Even; default 416.")
    height = _int_field(64, 2048, multipleOf=2, description="Even; default 704.")
    fps = _int_field(1, 60)
    slice_len = _int_field(1, 120)
    chunk_samples = schema_fields.Integer(strict=True, metadata={"description": "If given, slice_len*16000/fps."})
    frame_num = _int_field(1, 240)
    motion_frames_num = _int_field(0, 120)
    seed = _int_field(0, 2**31)
    prompt = schema_fields.String()
    config = schema_fields.Dict(keys=schema_fields.String())
    mouth_open_multiplier = schema_fields.Float(validate=validate.Range(*MOUTH_OPEN_RANGE))
    face_box = schema_fields.List(
        schema_fields.Integer(strict=True, validate=validate.Range(min=0)),
        validate=validate.Length(equal=4),
        metadata={"description": "[x, y, width, height] in pixels."},
    )


class AvatarPreloadBodySchema(AvatarSessionFieldsSchema):
    """``POST /v1/avatar/<model>/preload``."""

    avatar_id = schema_fields.String(metadata={"description": "A stored avatar (models with prepared avatars)."})
    ref_image = schema_fields.String(metadata={"description": "The portrait, base64 (or a data: URL)."})


class AvatarPrepareBodySchema(AvatarSessionFieldsSchema):
    """``POST /v1/avatars/<id>/prepare``: the lip-sync model and the session size."""

    model = schema_fields.String(required=True, validate=validate.Length(min=1))


class AvatarUploadFormSchema(Schema):
    """``POST /v1/avatars`` (multipart): the form fields; the ``image`` or ``video`` file is required."""

    image = schema_fields.Raw(metadata={"type": "string", "format": "binary"})
    video = schema_fields.Raw(metadata={"type": "string", "format": "binary"})
    name = schema_fields.String(validate=validate.Length(max=200))
    face_box = schema_fields.String(metadata={"description": "JSON [x, y, width, height] in pixels."})
    model = schema_fields.String(metadata={"description": "Also prepare the avatar for this lip-sync model."})
    width = schema_fields.Integer()
    height = schema_fields.Integer()


def _template_mode(info: dict[str, Any]) -> str:
    return "video" if int(info.get("template_frames", 1) or 1) > 1 else "image"


def avatar_statuses() -> list[dict[str, Any]]:
    aliases = alias_map(backplane().settings)
    statuses = []
    for name in names.discovery_names(aliases):
        resolved = names.resolve(name, aliases)
        reason = readiness(resolved.model) if resolved.model else "not_installed"
        status = {"id": name, "model": resolved.model, "connected": reason == names.READY, "alias": resolved.via_alias}
        if reason != names.READY:
            status["reason"] = reason
        statuses.append(status)
    return statuses


@bp.get("/v1/audio2video/models")
@bp.get("/v1/avatar/models")
def avatar_models() -> Any:
    """Realtime avatar discovery (OpenTalking reads `models`, then `statuses[].connected`).
    ---
    get:
      responses: {200: {description: "{models, statuses: [{id, model, connected, alias, reason}]}"}}
    """
    statuses = avatar_statuses()
    return jsonify({"models": [status["id"] for status in statuses if status["connected"]], "statuses": statuses})


@bp.post("/v1/audio2video/<model>/preload")
@bp.post("/v1/avatar/<model>/preload")
def avatar_preload(model: str) -> Any:
    """Prepare an avatar for a model on a worker that serves it (OpenTalking's preload).

    A body that is not a JSON object is a 400; otherwise the answer is HTTP 200, an error included (as OpenTalking
    expects): ``{type: error, code, message}``.
    ---
    post:
      requestBody: {required: false, content: {application/json: {schema: AvatarPreloadBodySchema}}}
      responses:
        200: {description: "{type: preload_result | error, model, avatar_id, frames, cache_hit, ...}"}
        400: {description: The body is not a JSON object, content: {application/json: {schema: Error}}}
    """
    body = json_object(optional=True)
    started = time.perf_counter()
    try:
        backing = resolve_avatar(model)
        spec = build_spec(backing, body, chunked=True)
        image = attach_avatar(spec, body.get("avatar_id"), decode_image(body.get("ref_image")))
        lease = Lease(backplane(), spec, image)
        lease.close()
    except SessionError as exc:
        return jsonify({"type": "error", "code": exc.code, "message": exc.message})
    except OmniRTError as exc:
        return jsonify({"type": "error", "code": exc.code, "message": exc.message})
    info = lease.session_info
    return jsonify(
        {
            "type": "preload_result",
            "model": backing,
            "avatar_id": spec.avatar_id or None,
            "frames": info.get("template_frames", 1),
            "cache_hit": bool(info.get("preprocessed", False)),
            "cache_source": "avatar_store" if spec.avatar_id else "portrait",
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
        }
    )


# -- the avatar store ---------------------------------------------------------------------------------------------


def _avatar_body(avatar: Any) -> dict[str, Any]:
    return {**avatar.public(), "preview_url": f"/v1/avatars/{avatar.id}/preview.jpg"}


def queue_preparation(avatar_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Queue an ``avatar_prepare`` job for stored avatar ``avatar_id`` and the model ``fields["model"]`` names, at
    the session size in ``fields``; returns the job as the jobs API shows it."""
    plane = backplane()
    avatar = plane.avatars.get(avatar_id)
    name = fields.get("model")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "invalid_request", "Name the lip-sync model to prepare the avatar for: 'model'.")
    try:
        model = resolve_avatar(name)
        spec = build_spec(model, fields, chunked=True)
    except SessionError as exc:
        status = {"unknown_model": 404, "model_unavailable": 503}.get(exc.code, 400)
        raise ApiError(status, exc.code, exc.message) from None
    if not get_model(model, "audio2video").capabilities.prepared_avatars:
        raise ApiError(400, "invalid_request", f"'{model}' renders its own picture; it has no prepared avatars.")
    job_request = GenerateRequest(
        task="avatar_prepare",
        model=model,
        inputs={"avatar_id": avatar.id},
        config={"width": spec.width, "height": spec.height},
    )
    job, _ = submit(plane, job_request)
    return job_to_dict(job)


def _form_box(raw: str | None) -> list[int] | None:
    if raw in (None, ""):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not _is_box(value):
        raise ApiError(400, "bad_face_box", "face_box must be [x, y, width, height] in pixels.")
    return value


@bp.post("/v1/avatars")
def create_avatar() -> Any:
    """Store an avatar: multipart `image` (a portrait) or `video` (a short idle clip), optional `face_box`, `name`.

    With `model` (and optionally `width`, `height`), the avatar is also prepared for that lip-sync model by a job on
    a worker that serves it: the answer's `prepare_job` is that job (progress on its event stream).
    ---
    post:
      requestBody: {required: true, content: {multipart/form-data: {schema: AvatarUploadFormSchema}}}
      responses:
        201: {description: "The new avatar: {id, name, kind, width, height, frames, fps, face_box, preview_url,
          prepare_job?}"}
        200: {description: "The same content was stored before: that avatar"}
        400: {description: "bad_image, bad_video, bad_face_box, no_face_detected"}
        413: {description: "The video is over the size cap", content: {application/json: {schema: Error}}}
    """
    upload = request.files.get("video") or request.files.get("image")
    if upload is None:
        raise ApiError(400, "invalid_request", "Send a multipart field 'image' (a portrait) or 'video' (an idle clip).")
    kind = "video" if "video" in request.files else "image"
    data = upload.read()
    name = str(request.form.get("name") or "")[:200]
    avatar, created = backplane().avatars.add(
        data, kind=kind, name=name, face_box=_form_box(request.form.get("face_box"))
    )
    body = _avatar_body(avatar)
    if request.form.get("model"):
        fields: dict[str, Any] = {"model": request.form["model"]}
        for key in ("width", "height"):
            if request.form.get(key):
                try:
                    fields[key] = int(request.form[key])
                except ValueError:
                    raise ApiError(400, "bad_config", f"{key} must be an integer.") from None
        body["prepare_job"] = queue_preparation(avatar.id, fields)
    return jsonify(body), 201 if created else 200


@bp.post("/v1/avatars/<avatar_id>/prepare")
def prepare_avatar(avatar_id: str) -> Any:
    """Prepare a stored avatar for a lip-sync model, as a job on a worker that serves the model.

    Body: `{"model": "wav2lip", "width": 416, "height": 704}`. The job (task `avatar_prepare`) reports progress
    per batch of template frames on its event stream; its result is `prepared.json` (frames, cache_hit, key).
    Sessions naming the avatar at that size then open without preparing.
    ---
    post:
      requestBody: {content: {application/json: {schema: AvatarPrepareBodySchema}}}
      responses:
        202: {description: The job, content: {application/json: {schema: Job}}}
        400: {description: "invalid_request, bad_config", content: {application/json: {schema: Error}}}
        404: {description: "avatar_not_found, unknown_model", content: {application/json: {schema: Error}}}
        503: {description: "model_unavailable: no live worker can load the model"}
    """
    return jsonify(queue_preparation(avatar_id, json_object(optional=True))), 202


@bp.get("/v1/avatars")
def list_avatars() -> Any:
    """Every stored avatar.
    ---
    get:
      responses: {200: {description: "{avatars: [...]}"}}
    """
    return jsonify({"avatars": [_avatar_body(avatar) for avatar in backplane().avatars.list()]})


@bp.get("/v1/avatars/<avatar_id>")
def get_avatar(avatar_id: str) -> Any:
    """One stored avatar, with the URL of its preview frame.
    ---
    get:
      responses:
        200: {description: The avatar}
        404: {description: avatar_not_found, content: {application/json: {schema: Error}}}
    """
    return jsonify(_avatar_body(backplane().avatars.get(avatar_id)))


@bp.get("/v1/avatars/<avatar_id>/preview.jpg")
def avatar_preview(avatar_id: str) -> Any:
    """The avatar's first template frame.
    ---
    get:
      responses: {200: {description: A JPEG}, 404: {description: avatar_not_found}}
    """
    return send_file(backplane().avatars.preview_path(avatar_id), mimetype="image/jpeg")


@bp.delete("/v1/avatars/<avatar_id>")
def delete_avatar(avatar_id: str) -> Any:
    """Delete an avatar and its prepared caches; sessions naming it afterwards are refused.
    ---
    delete:
      responses: {200: {description: "{id, deleted: true}"}, 404: {description: avatar_not_found}}
    """
    backplane().avatars.delete(avatar_id)
    return jsonify({"id": avatar_id, "deleted": True})
