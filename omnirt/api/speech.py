"""Speech routes: ``text2audio.service.v1`` (streaming PCM), the legacy IndexTTS route OpenTalking calls, and the
OpenAI ``/v1/audio/speech`` and ``/v1/audio/transcriptions`` routes.

Synthesis runs as a job on a worker that holds the voice warm; its ``audio_chunk`` events (each at most 40 ms of
audio) are relayed to the client as they arrive, one HTTP write (or SSE delta) each: events are cheap on the bus
(the worker pipelines them) and a client's first write is never held back to fill a bigger one. The response
starts only once the first chunk exists, so a request that fails early gets a JSON error with its status; a failure
after that ends the PCM stream (or, for SSE, sends an ``error`` event).

Every body and form is parsed by a schema below before anything is queued: known fields are typed and bounded, and
unknown ones are ignored, as these routes always did for OpenTalking's and OpenAI clients' extras. Jobs are built
through the schema ``POST /v1/generate`` uses.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from marshmallow import EXCLUDE, fields, validate

from omnirt.api.errors import ApiError, json_object, status_for
from omnirt.api.generate import accepted, failed_response
from omnirt.api.services import backplane
from omnirt.api.submission import submit, wait_for
from omnirt.contracts.errors import ModelNotRegisteredError
from omnirt.contracts.schemas import MAX_NAME_LENGTH, GenerateRequestSchema, RequestBodySchema, SafeString
from omnirt.contracts.types import StageEvent
from omnirt.events.bus import TERMINAL_EVENTS
from omnirt.jobs.job import JobState
from omnirt.registry.aliases import model_for, voice_for
from omnirt.registry.registry import get_model, list_available_models
from omnirt.runtime.audio import streaming_wav_header
from omnirt.telemetry import realtime as realtime_metrics

bp = Blueprint("speech", __name__)

SCHEMA = "text2audio.service.v1"
FIRST_CHUNK_TIMEOUT_S = 120.0
SAMPLE_RATES = validate.Range(8000, 48000)
MAX_SPEECH_CHARS = 4096  # per request, as OpenAI's audio.speech: longer texts are sent in parts
SPEEDS = validate.Range(0.25, 4.0)
INDEXTTS_DEFAULT_VOICES = ("local-default", "default")  # OpenTalking's name for "the service's own voice"


def _name(**kwargs: Any) -> SafeString:
    return SafeString(max_length=MAX_NAME_LENGTH, load_default=None, **kwargs)


def _speech_text(**kwargs: Any) -> SafeString:
    return SafeString(max_length=MAX_SPEECH_CHARS, **kwargs)


class SpeechBodySchema(RequestBodySchema):
    """Base of the speech bodies: unknown keys are ignored (clients send engine-specific extras)."""

    class Meta:
        unknown = EXCLUDE


class StreamConfigSchema(SpeechBodySchema):
    voice = _name()
    sample_rate = fields.Integer(strict=True, load_default=None, validate=SAMPLE_RATES)
    speed = fields.Float(load_default=None, validate=SPEEDS)


class StreamBodySchema(SpeechBodySchema):
    """``POST /v1/text2audio/stream`` (text2audio.service.v1)."""

    text = _speech_text(required=True)
    model = _name()
    voice = _name()
    speaker_profile = _name()
    audio_format = fields.String(load_default="pcm_s16le", validate=validate.OneOf(["pcm_s16le", "wav"]))
    sample_rate = fields.Integer(strict=True, load_default=None, validate=SAMPLE_RATES)
    config = fields.Nested(StreamConfigSchema, load_default=lambda: StreamConfigSchema().load({}))


class IndexTTSBodySchema(SpeechBodySchema):
    """``POST /v1/text2audio/indextts``: OpenTalking's IndexTTS body; the server's legacy model answers."""

    text = _speech_text(required=True)
    voice = _name()
    model = _name()
    sample_rate = fields.Integer(strict=True, load_default=16000, validate=SAMPLE_RATES)


class WarmupBodySchema(SpeechBodySchema):
    """``POST /v1/text2audio/warmup`` (the body is optional)."""

    model = _name()
    text = _speech_text(load_default="Warm up.")


class OpenAISpeechBodySchema(SpeechBodySchema):
    """``POST /v1/audio/speech`` (OpenAI audio.speech); ``prompt`` is read when ``input`` is absent."""

    text = _speech_text(data_key="input", load_default=None)
    prompt = _speech_text(load_default=None)
    model = _name()
    voice = _name()
    instructions = SafeString(load_default=None)  # accepted and ignored
    response_format = fields.String(load_default="wav", validate=validate.OneOf(["wav", "pcm"]))
    stream_format = fields.String(load_default="audio", validate=validate.OneOf(["audio", "sse"]))
    speed = fields.Float(load_default=None, validate=SPEEDS)


class TranscriptionFormSchema(SpeechBodySchema):
    """``POST /v1/audio/transcriptions`` form fields (the ``file`` upload apart)."""

    model = _name()  # empty: the server's default recogniser
    language = SafeString(max_length=16, load_default=None)
    response_format = fields.String(load_default="json", validate=validate.OneOf(["json", "text"]))


def tts_models() -> list[Any]:
    return [spec for spec in list_available_models(include_aliases=False) if spec.task == "text2audio"]


def resolve_tts(name: str | None) -> str:
    """The text2audio model for ``name`` (an alias, an id, or empty for the server's default voice); 404 when none."""
    model = model_for(name, "text2audio", backplane().settings)
    try:
        get_model(model, "text2audio")
    except ModelNotRegisteredError:
        raise ApiError(
            404,
            "model_not_found",
            f"Unknown text2audio model '{model}'.",
            {"models": [spec.id for spec in tts_models()]},
        ) from None
    return model


def start_synthesis(
    model: str, text: str, *, voice: str | None, sample_rate: int | None, speed: float | None = None
) -> tuple[str, Any, StageEvent | None]:
    """Queue a streaming synthesis and wait for its first audio chunk (or its end)."""
    if not text.strip():
        raise ApiError(400, "invalid_request", "text is required")
    config: dict[str, Any] = {"stream": True}
    if voice:
        config["voice"] = voice
    if sample_rate is not None:
        config["sample_rate"] = sample_rate
    if speed is not None:
        config["speed"] = speed
    request_ = GenerateRequestSchema().load(
        {"task": "text2audio", "model": model, "inputs": {"prompt": text}, "config": config}
    )
    plane = backplane()
    if not plane.settings.embedded:
        from omnirt.tasks.routing import candidate_queues

        queues = candidate_queues(get_model(model, "text2audio"))
        if not plane.live_queues().intersection(queues):
            raise ApiError(
                503,
                "no_capacity",
                f"No live worker serves {model} ({' | '.join(queues)}).",
                headers={"Retry-After": "5"},
            )
    submitted = time.monotonic()
    job, _ = submit(plane, request_)
    subscription = backplane().events.subscribe(job.id, "0-0")
    deadline = time.monotonic() + FIRST_CHUNK_TIMEOUT_S
    while time.monotonic() < deadline:
        entry = subscription.get(timeout=1.0)
        if entry is None:
            continue
        event = entry[1]
        if event.event == "audio_chunk":
            realtime_metrics.tts_first_packet(model, time.monotonic() - submitted)
            return job.id, subscription, event
        if event.event in TERMINAL_EVENTS:
            backplane().events.unsubscribe(subscription)
            if event.event == "job_finished":
                return job.id, None, None
            error = event.data.get("error") or {"code": "cancelled", "message": "The synthesis was cancelled."}
            details = {**(error.get("details") or {}), "job_id": job.id}  # e.g. the voices, for an unknown one
            raise ApiError(status_for(error["code"]), error["code"], error["message"], details)
    backplane().events.unsubscribe(subscription)
    raise ApiError(503, "no_capacity", "No worker started the synthesis in time.", {"job_id": job.id})


def chunks(subscription: Any, first: StageEvent | None) -> Iterator[StageEvent]:
    """The first audio chunk, then every later one, until the job ends (its terminal event included)."""
    if first is None:
        return
    yield first
    try:
        while True:
            entry = subscription.get(timeout=60.0)
            if entry is None:
                continue
            yield entry[1]
            if entry[1].event in TERMINAL_EVENTS:
                return
    finally:
        backplane().events.unsubscribe(subscription)


def pcm_stream(subscription: Any, first: StageEvent | None, *, wav: bool, rate: int) -> Iterator[bytes]:
    if wav:
        yield streaming_wav_header(rate)
    for event in chunks(subscription, first):
        if event.event == "audio_chunk":
            yield base64.b64decode(event.data["pcm_b64"])


def pcm_response(
    model: str, job_id: str, subscription: Any, first: StageEvent | None, *, wav: bool, legacy: bool = False
) -> Response:
    rate = int(first.data["sample_rate"]) if first is not None else 24000
    mimetype = "audio/wav" if wav else f"audio/L16; rate={rate}; channels=1"
    headers = {
        "x-audio-sample-rate": str(rate),
        "x-omnirt-job-id": job_id,
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }
    if not legacy:
        headers.update({"x-omnirt-adapter-schema": SCHEMA, "x-omnirt-model": model})
    body = stream_with_context(pcm_stream(subscription, first, wav=wav, rate=rate))
    return Response(body, headers=headers, content_type=mimetype)


@bp.post("/v1/text2audio/stream")
def text2audio_stream() -> Any:
    """Stream speech as it is synthesised: raw pcm_s16le (audio/L16) or a streaming WAV.
    ---
    post:
      requestBody: {content: {application/json: {schema: StreamBodySchema}}}
      responses:
        200: {description: audio/L16 chunks as they are produced}
        400: {description: Invalid request, content: {application/json: {schema: Error}}}
        404: {description: Unknown text2audio model, content: {application/json: {schema: Error}}}
    """
    body = StreamBodySchema().load(json_object())
    config = body["config"]
    model = resolve_tts(body["model"])
    job_id, subscription, first = start_synthesis(
        model,
        body["text"],
        voice=body["voice"] or body["speaker_profile"] or config["voice"],
        sample_rate=body["sample_rate"] or config["sample_rate"],
        speed=config["speed"],
    )
    return pcm_response(model, job_id, subscription, first, wav=body["audio_format"] == "wav")


@bp.post("/v1/text2audio/indextts")
def text2audio_indextts() -> Any:
    """OpenTalking's legacy TTS call: its IndexTTS body as it is (unknown keys tolerated), raw PCM back.

    The voice model is the server's ``OMNIRT_INDEXTTS_ROUTE_MODEL`` (default: the default voice), whatever the body's
    ``model`` (IndexTTS's checkpoint name) says. ``voice`` picks one of that model's voices; OpenTalking's
    ``local-default`` (and ``default``) is the model's default voice, and a voice the model lacks is a 400 whose
    details list its voices.
    ---
    post:
      requestBody: {content: {application/json: {schema: IndexTTSBodySchema}}}
      responses:
        200: {description: "audio/L16 chunks of at most 40 ms; x-audio-sample-rate"}
        400: {description: Invalid request or unknown voice, content: {application/json: {schema: Error}}}
    """
    body = IndexTTSBodySchema().load(json_object())
    model = resolve_tts(current_app.config["OMNIRT_SETTINGS"].indextts_route_model)
    voice = None if body["voice"] in INDEXTTS_DEFAULT_VOICES else body["voice"]
    job_id, subscription, first = start_synthesis(model, body["text"], voice=voice, sample_rate=body["sample_rate"])
    return pcm_response(model, job_id, subscription, first, wav=False, legacy=True)


def statuses() -> list[dict[str, Any]]:
    live = backplane().live_queues()
    embedded = current_app.config["OMNIRT_SETTINGS"].embedded
    from omnirt.tasks.routing import candidate_queues

    result = []
    for spec in tts_models():
        connected = embedded or bool(live.intersection(candidate_queues(spec)))
        result.append(
            {
                "id": spec.id,
                "connected": connected,
                "ready": connected,
                "reason": "worker" if connected else "no_live_worker",
                "streaming": True,
                "summary": spec.capabilities.summary,
            }
        )
    return result


@bp.get("/v1/text2audio/models")
def text2audio_models() -> Any:
    """text2audio.service.v1 discovery.
    ---
    get:
      responses: {200: {description: Models, statuses and the input/output contract}}
    """
    current = statuses()
    return jsonify(
        {
            "adapter_schema": SCHEMA,
            "models": [status["id"] for status in current],
            "statuses": current,
            "input_contract": {
                "text": "string, required",
                "model": f"string, default {backplane().settings.default_voice_model}",
                "voice": "string",
                "audio_format": "pcm_s16le | wav",
                "sample_rate": "int",
            },
            "output_contract": {
                "stream": "audio/L16 pcm_s16le chunks by default",
                "artifact": "audio/wav through POST /v1/generate",
            },
        }
    )


@bp.get("/v1/text2audio/health")
@bp.get("/health")
def text2audio_health() -> Any:
    """Speech service health (always 200; `ok` says whether every voice has a worker).
    ---
    get:
      responses: {200: {description: "{ok, adapter_schema, statuses}"}}
    """
    current = statuses()
    return jsonify(
        {"ok": all(status["connected"] for status in current), "adapter_schema": SCHEMA, "statuses": current}
    )


@bp.get("/v1/text2audio/metrics")
def text2audio_metrics() -> Any:
    """Speech service counters as JSON (Prometheus metrics are at /metrics).
    ---
    get:
      responses: {200: {description: "{adapter_schema, model_count, ready_count, statuses, timestamp}"}}
    """
    current = statuses()
    return jsonify(
        {
            "adapter_schema": SCHEMA,
            "model_count": len(current),
            "ready_count": sum(status["ready"] for status in current),
            "statuses": current,
            "timestamp": time.time(),
        }
    )


@bp.post("/v1/text2audio/warmup")
def text2audio_warmup() -> Any:
    """Synthesise a short text so the voice is loaded and warm on a worker.
    ---
    post:
      requestBody: {required: false, content: {application/json: {schema: WarmupBodySchema}}}
      responses:
        200: {description: "{ok, model, elapsed_ms}"}
        202: {description: Still warming up past the sync timeout, content: {application/json: {schema: Job}}}
        400: {description: Invalid request, content: {application/json: {schema: Error}}}
        403: {description: Model not enabled, content: {application/json: {schema: Error}}}
        404: {description: Unknown text2audio model, content: {application/json: {schema: Error}}}
    """
    body = WarmupBodySchema().load(json_object(optional=True))
    model = resolve_tts(body["model"])
    started = time.perf_counter()
    request_ = GenerateRequestSchema().load({"task": "text2audio", "model": model, "inputs": {"prompt": body["text"]}})
    job, _ = submit(backplane(), request_)
    finished = wait_for(backplane(), job.id, current_app.config["OMNIRT_SETTINGS"].sync_timeout_s)
    if finished is None or not finished.terminal:
        return accepted(finished or job, True)  # still warming up: the job says when it is done
    if finished.state != JobState.SUCCEEDED:
        return failed_response(finished)
    return jsonify({"ok": True, "model": model, "elapsed_ms": round((time.perf_counter() - started) * 1000, 1)})


@bp.post("/v1/audio/speech")
def openai_speech() -> Any:
    """OpenAI audio.speech: wav or pcm, streamed as audio or as SSE (speech.audio.delta / done / error).
    ---
    post:
      requestBody: {content: {application/json: {schema: OpenAISpeechBodySchema}}}
      responses:
        200: {description: audio/wav, audio/L16 or text/event-stream}
        400: {description: Invalid request, content: {application/json: {schema: Error}}}
    """
    body = OpenAISpeechBodySchema().load(json_object())
    model = resolve_tts(body["model"])
    voice = voice_for(model, body["voice"])  # OpenAI's voice names pick one of the model's voices
    text = body["text"] or body["prompt"] or ""
    job_id, subscription, first = start_synthesis(model, text, voice=voice, sample_rate=None, speed=body["speed"])
    if body["stream_format"] == "audio":
        return pcm_response(model, job_id, subscription, first, wav=body["response_format"] == "wav")

    def events() -> Iterator[str]:
        for event in chunks(subscription, first):
            if event.event == "audio_chunk":
                yield f"data: {json.dumps({'type': 'speech.audio.delta', 'audio': event.data['pcm_b64']})}\n\n"
            elif event.event == "job_finished":
                yield f"data: {json.dumps({'type': 'speech.audio.done'})}\n\n"
            elif event.event in TERMINAL_EVENTS:
                error = event.data.get("error") or {"code": "cancelled", "message": "The synthesis was cancelled."}
                yield f"data: {json.dumps({'type': 'error', 'error': error})}\n\n"

    return Response(
        stream_with_context(events()),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "x-omnirt-job-id": job_id},
    )


@bp.post("/v1/audio/transcriptions")
def openai_transcriptions() -> Any:
    """OpenAI audio.transcriptions (multipart `file`, `model`, optional `language`, `response_format` json|text).
    ---
    post:
      description: The form fields below plus the `file` upload (required).
      requestBody: {content: {multipart/form-data: {schema: TranscriptionFormSchema}}}
      responses:
        200: {description: "{text}"}
        202: {description: Not transcribed within the sync timeout, content: {application/json: {schema: Job}}}
        400: {description: Invalid request, content: {application/json: {schema: Error}}}
        403: {description: Model not enabled, content: {application/json: {schema: Error}}}
    """
    form = TranscriptionFormSchema().load(request.form.to_dict())
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "invalid_request", "A `file` upload is required.")
    model = model_for(form["model"], "audio2text", backplane().settings)
    mime = upload.mimetype or "audio/wav"
    data_url = f"data:{mime};base64,{base64.b64encode(upload.read()).decode('ascii')}"
    config = {"language": form["language"]} if form["language"] else {}
    request_ = GenerateRequestSchema().load(
        {"task": "audio2text", "model": model, "inputs": {"audio": data_url}, "config": config}
    )
    job, _ = submit(backplane(), request_)
    finished = wait_for(backplane(), job.id, current_app.config["OMNIRT_SETTINGS"].sync_timeout_s)
    if finished is None or not finished.terminal:
        return accepted(finished or job, True)  # not transcribed within the sync timeout: the job has the text later
    if finished.state != JobState.SUCCEEDED:
        return failed_response(finished)
    text = Path(finished.result["outputs"][0]["path"]).read_text(encoding="utf-8").strip()
    if form["response_format"] == "text":
        return Response(text, mimetype="text/plain")
    return jsonify({"text": text})
