"""``POST /v1/avatar/webrtc``: a realtime avatar session delivered over WebRTC (the HTTP door only).

The route parses and checks the offer and the session fields, resolves the avatar model and the TTS model, opens the
session's lease on a worker (as the WebSocket doors do, :class:`omnirt.api.avatar.Lease`), and hands both to this
process's peer service (:mod:`omnirt.api.rtc_peer`), which answers the offer and runs the media; errors map to HTTP
here. The speech source given to a peer streams TTS through :func:`omnirt.api.speech.start_synthesis` inside this
app's context, since the peer's threads run outside any request.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from marshmallow import EXCLUDE, Schema, ValidationError, validate
from marshmallow import fields as schema_fields

from omnirt.api.avatar import REFERENCE, Lease, SessionError, attach_avatar, build_spec, resolve_avatar
from omnirt.api.errors import ApiError, json_object
from omnirt.api.jobs import cancel_job
from omnirt.api.rtc_peer import AUDIO_RATE, PeerError, PeerService, check_offer, chunk_frames
from omnirt.api.services import backplane
from omnirt.api.speech import chunks, resolve_tts, start_synthesis
from omnirt.avatars.media import SAMPLE_RATE
from omnirt.contracts.errors import OmniRTError
from omnirt.contracts.schemas import flatten_messages

bp = Blueprint("webrtc", __name__)

EXTENSION = "omnirt_webrtc"
SESSION_STATUS = {
    "unknown_model": 404,
    "avatar_not_found": 404,
    "model_unavailable": 503,
    "no_capacity": 503,
    "worker_lost": 503,
    "timeout": 504,
}


class WebRtcOfferSchema(Schema):
    """``POST /v1/avatar/webrtc``: the browser's SDP offer and the session's parameters."""

    class Meta:
        unknown = EXCLUDE

    sdp = schema_fields.String(
        required=True,
        metadata={"description": "The offer: a data channel labelled `omnirt`, video and audio recvonly or sendrecv."},
    )
    type = schema_fields.String(load_default="offer", validate=validate.OneOf(["offer"]))
    model = schema_fields.String(
        load_default=None, allow_none=True, metadata={"description": f"Avatar model; default {REFERENCE}."}
    )
    avatar_id = schema_fields.String(
        load_default=None, allow_none=True, metadata={"description": "A stored avatar (models with prepared avatars)."}
    )
    tts_model = schema_fields.String(
        load_default=None, allow_none=True, metadata={"description": "text2audio model; default the server's."}
    )
    voice = schema_fields.String(load_default=None, allow_none=True)
    width = schema_fields.Integer(
        strict=True, load_default=416, validate=validate.Range(64, 2048), metadata={"multipleOf": 2}
    )
    height = schema_fields.Integer(
        strict=True, load_default=704, validate=validate.Range(64, 2048), metadata={"multipleOf": 2}
    )
    fps = schema_fields.Integer(strict=True, load_default=25, validate=validate.Range(1, 60))


class WebRtcAnswerSchema(Schema):
    type = schema_fields.String(metadata={"enum": ["answer"]})
    sdp = schema_fields.String()
    session_id = schema_fields.String()


class FlaskSpeech:
    """A peer's speech: streaming synthesis on ``model`` at 16 kHz, in this app's context, in the caller's thread."""

    def __init__(self, app: Flask, model: str, voice: str | None) -> None:
        self.app, self.model, self.voice = app, model, voice

    def stream(self, text: str, voice: str | None, on_job: Callable[[str], None]) -> Iterator[bytes]:
        with self.app.app_context():
            try:
                job_id, subscription, first = start_synthesis(
                    self.model, text, voice=voice or self.voice, sample_rate=SAMPLE_RATE
                )
            except (ApiError, OmniRTError) as exc:
                raise PeerError(exc.code, exc.message) from None
            except ValidationError as exc:
                raise PeerError("invalid_request", "; ".join(flatten_messages(exc.messages))) from None
            on_job(job_id)
            for event in chunks(subscription, first):
                if event.event == "audio_chunk":
                    yield base64.b64decode(event.data["pcm_b64"])
                elif event.event == "job_failed":
                    error = event.data.get("error") or {}
                    raise PeerError(error.get("code", "runtime_error"), error.get("message", "The speech failed."))

    def cancel(self, job_id: str) -> None:
        with self.app.app_context():
            cancel_job(backplane(), job_id)


def peer_service() -> PeerService:
    """This process's peer service, made on first use (after a gunicorn fork, never before)."""
    app = current_app
    service = app.extensions.get(EXTENSION)
    if service is None:
        settings = app.config["OMNIRT_SETTINGS"]
        service = app.extensions.setdefault(
            EXTENSION, PeerService(max_peers=settings.webrtc_max_peers, idle_s=settings.session_idle_s)
        )
    return service


def _parse(body: dict[str, Any]) -> dict[str, Any]:
    try:
        return WebRtcOfferSchema().load(body)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"body": exc.messages}
        code = "invalid_sdp" if {"sdp", "type"} & set(messages) else "bad_config"
        raise ApiError(400, code, "; ".join(flatten_messages(messages))) from None


@bp.post("/v1/avatar/webrtc")
def avatar_webrtc() -> Any:
    """Start a realtime avatar session over WebRTC: post the browser's offer, get the answer.

    The peer connection carries the avatar's video (at `fps`) and its voice (48 kHz); the data channel `omnirt`
    carries `speak` / `cancel` / `ping` / `close` in and the session's events out (README, "WebRTC"). The session
    ends when the connection or the channel closes, or nothing arrives on the channel for `OMNIRT_SESSION_IDLE_S`.
    ---
    post:
      requestBody: {required: true, content: {application/json: {schema: WebRtcOfferSchema}}}
      responses:
        200: {description: The answer, content: {application/json: {schema: WebRtcAnswerSchema}}}
        400: {description: "invalid_sdp, bad_config, invalid_request", content: {application/json: {schema: Error}}}
        401: {description: "unauthorized: API keys are configured and none was sent"}
        404: {description: "unknown_model, avatar_not_found", content: {application/json: {schema: Error}}}
        503: {description: "model_unavailable, no_capacity", content: {application/json: {schema: Error}}}
        504: {description: "timeout: the negotiation did not finish", content: {application/json: {schema: Error}}}
    """
    body = _parse(json_object())
    try:
        check_offer(body["sdp"])  # a malformed offer is refused before anything else happens
    except PeerError as exc:
        raise ApiError(400, exc.code, exc.message) from None
    service = peer_service()
    try:
        model = resolve_avatar(body["model"] or REFERENCE)
        fields = {key: body[key] for key in ("width", "height", "fps")}
        spec = build_spec(model, {**fields, "slice_len": chunk_frames(body["fps"])}, chunked=True)
        if body["avatar_id"]:
            backplane().avatars.get(body["avatar_id"])  # avatar_not_found, whatever the model
        image = attach_avatar(spec, body["avatar_id"], None)
    except SessionError as exc:
        raise ApiError(SESSION_STATUS.get(exc.code, 400), exc.code, exc.message) from None
    try:
        tts_model = resolve_tts(body["tts_model"])
    except ApiError as exc:
        raise ApiError(404, "unknown_model", exc.message, exc.details) from None
    try:
        peer = service.open(body["sdp"], spec)
    except PeerError as exc:
        if exc.code == "no_capacity":
            raise ApiError(503, exc.code, exc.message, headers={"Retry-After": "5"}) from None
        raise ApiError(504 if exc.code == "timeout" else 400, exc.code, exc.message) from None
    try:
        lease = Lease(backplane(), spec, image, protocol="webrtc")
    except SessionError as exc:
        peer.discard()
        raise ApiError(SESSION_STATUS.get(exc.code, 400), exc.code, exc.message) from None
    except BaseException:
        peer.discard()
        raise
    peer.start(
        lease,
        FlaskSpeech(current_app._get_current_object(), tts_model, body["voice"]),  # type: ignore[attr-defined]
        {
            "type": "session.created",
            "session_id": lease.id,
            "model": model,
            "avatar_id": spec.avatar_id or None,
            "video": {"fps": spec.fps, "width": spec.width, "height": spec.height},
            "audio": {"sample_rate": AUDIO_RATE},
            "mouth_box": lease.session_info.get("mouth_box"),
            "tts_model": tts_model,
            "chunk_frames": spec.slice_len,
        },
    )
    return jsonify({"type": "answer", "sdp": peer.answer, "session_id": lease.id})
