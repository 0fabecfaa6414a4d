"""Traces and the log context: OpenTelemetry spans for jobs, stages and sessions, W3C ``traceparent`` propagation,
and structured JSON log lines that carry the ids of the work they were written for.

Tracing is off unless the standard ``OTEL_TRACES_EXPORTER`` or ``OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT`` variables
ask for an exporter: then :func:`configure_tracing` installs an SDK tracer provider that exports over OTLP/HTTP (or to
the console). Otherwise no provider is installed and every span here is the OpenTelemetry API's no-op span (nothing is
recorded, nothing is sent). A test or an embedding program may install its own provider instead.

One trace per job: the HTTP submit is a server span (continuing a client's ``traceparent``), the job record keeps the
trace id and the submit's ``traceparent``, the Celery task message carries ``traceparent`` in its headers (signals
below), and the worker opens a job span with one child span per stage (the executor's ``stage_start`` /
``stage_end`` events). Each stage event records its span id, so ``GET /v1/jobs/{id}/trace`` can rebuild the spans.

This module sits low in the package layers (beside ``events``) so that workers, tasks and the API may all use it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

try:  # the API is small and pure Python; it is part of the server extra, but a bare install still runs
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - exercised only without the server extra
    trace = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: The ids of the work this thread (or task) is doing, for log lines.
job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("omnirt_job_id", default=None)
session_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("omnirt_session_id", default=None)
trace_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("omnirt_trace_id", default=None)

_CONFIGURED = False
_LOCK = threading.Lock()


# -- traces ---------------------------------------------------------------------------------------------------------


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the standard OpenTelemetry variables ask for trace export."""
    env = os.environ if environ is None else environ
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(exporter or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_tracing(service_name: str = "omnirt") -> bool:
    """Install an SDK tracer provider exporting as the ``OTEL_*`` variables say; returns whether one was installed.

    Called once per process that does work (the API process, each Celery child after its fork, the embedded server);
    a no-op when tracing is not requested, when the SDK is missing, or when it already ran here."""
    global _CONFIGURED
    with _LOCK:
        if _CONFIGURED or trace is None or not tracing_requested():
            return _CONFIGURED
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
        except ImportError:
            log.warning("OTEL_* asks for traces but opentelemetry-sdk is not installed (pip install 'omnirt[server]')")
            return False
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name})
        provider = TracerProvider(resource=resource)
        kinds = [item.strip().lower() for item in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
        for kind in kinds or ["otlp"]:
            if kind == "console":
                provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
            elif kind in ("otlp", ""):
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            else:
                log.warning("OTEL_TRACES_EXPORTER=%s is not supported here (otlp, console)", kind)
        trace.set_tracer_provider(provider)
        _CONFIGURED = True
        return True


def shutdown_tracing() -> None:
    """Flush and stop the installed provider (a worker child before it exits)."""
    if trace is None:
        return
    provider = trace.get_tracer_provider()
    for method in ("force_flush", "shutdown"):
        with contextlib.suppress(Exception):
            getattr(provider, method, lambda: None)()


def tracer() -> Any:
    return trace.get_tracer("omnirt") if trace is not None else None


def span_ids(span: Any) -> tuple[str | None, str | None]:
    """(trace id, span id) in W3C hex of a recording span, else (None, None)."""
    if span is None:
        return None, None
    context = span.get_span_context()
    if not context.is_valid:
        return None, None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def current_span_fields() -> dict[str, str]:
    """``trace_id``, ``span_id`` and ``parent_span_id`` of this thread's current span (empty when tracing is off), as
    recorded on job events."""
    if trace is None:
        return {}
    current = trace.get_current_span()
    trace_id, span_id = span_ids(current)
    if not span_id:
        return {}
    fields = {"trace_id": trace_id, "span_id": span_id}
    parent = getattr(current, "parent", None)
    if parent is not None and parent.is_valid:
        fields["parent_span_id"] = f"{parent.span_id:016x}"
    return fields


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, or None when there is none (tracing off)."""
    if trace is None:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def _context_from(carrier: Mapping[str, str] | None) -> Any:
    if not carrier:
        return None
    return propagate.extract({str(key).lower(): value for key, value in carrier.items()})


@contextlib.contextmanager
def span(
    name: str,
    *,
    kind: str = "internal",
    parent: Mapping[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
    start_ms: int | None = None,
) -> Iterator[Any]:
    """A span as the current one (a no-op span when tracing is off). ``parent`` is a propagation carrier (e.g.
    ``{"traceparent": ...}`` or request headers) used when this thread has no current span."""
    if trace is None:
        yield None
        return
    context = None
    if parent and not trace.get_current_span().get_span_context().is_valid:
        context = _context_from(parent)
    start = start_ms * 1_000_000 if start_ms is not None else None
    with tracer().start_as_current_span(
        name,
        context=context,
        kind=getattr(SpanKind, kind.upper()),
        attributes={key: value for key, value in (attributes or {}).items() if value is not None},
        start_time=start,
        record_exception=True,
        set_status_on_exception=True,
    ) as current:
        trace_id, _ = span_ids(current)
        token = trace_id_var.set(trace_id) if trace_id else None
        try:
            yield current
        finally:
            if token is not None:
                trace_id_var.reset(token)


def mark_error(current: Any, message: str) -> None:
    if current is not None and trace is not None:
        current.set_status(Status(StatusCode.ERROR, message))


class StageSpans:
    """Opens a child span per stage from ``stage_start`` / ``stage_end`` events and writes the span's ids into the
    event (``trace_id``, ``span_id``, ``parent_span_id``) so the job's trace can be rebuilt from its events."""

    def __init__(self) -> None:
        self.open: dict[str, Any] = {}
        self.parent = trace.get_current_span() if trace is not None else None
        self.recording = self.parent is not None and self.parent.is_recording()  # tracing off: nothing to do

    def __call__(self, event: Any) -> None:
        if not self.recording or event.stage is None or event.event not in ("stage_start", "stage_end"):
            return
        if event.event == "stage_start":
            context = trace.set_span_in_context(self.parent) if self.parent is not None else None
            started = tracer().start_span(
                f"stage {event.stage}", context=context, start_time=event.timestamp_ms * 1_000_000
            )
            self.open[event.stage] = started
        else:
            started = self.open.pop(event.stage, None)
            if started is None:
                return
            started.end(end_time=max(event.timestamp_ms * 1_000_000, getattr(started, "start_time", 0) or 0))
        trace_id, span_id = span_ids(started)
        if span_id:
            _, parent_id = span_ids(self.parent)
            event.data.update(trace_id=trace_id, span_id=span_id, parent_span_id=parent_id)

    def close(self, error: str | None = None) -> None:
        """End the stages left open by an error."""
        for started in self.open.values():
            if error:
                mark_error(started, error)
            started.end()
        self.open.clear()


# -- Celery: traceparent in the task headers ----------------------------------------------------------------------

_TASK_SPANS: dict[str, tuple[Any, Any]] = {}


def _before_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None or trace is None:
        return
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    headers.update(carrier)  # custom headers reach the worker as attributes of task.request


def _task_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if trace is None or task is None or task_id is None:
        return
    request = task.request
    carrier = {key: value for key in ("traceparent", "tracestate") if (value := getattr(request, key, None))}
    if not carrier:
        carrier = dict(getattr(request, "headers", None) or {})
    started = tracer().start_span(
        f"run {task.name}",
        context=_context_from(carrier),
        kind=SpanKind.CONSUMER,
        attributes={"celery.task_id": task_id, "celery.task_name": task.name},
    )
    token = otel_context.attach(trace.set_span_in_context(started))
    _TASK_SPANS[task_id] = (started, token)


def _task_postrun(task_id: str | None = None, **_: Any) -> None:
    started, token = _TASK_SPANS.pop(task_id or "", (None, None))
    if started is None:
        return
    with contextlib.suppress(Exception):
        otel_context.detach(token)
    started.end()
    provider = trace.get_tracer_provider()
    with contextlib.suppress(Exception):
        getattr(provider, "force_flush", lambda *_: None)(2000)


def _worker_process_init(**_: Any) -> None:
    configure_tracing("omnirt-worker")


def _worker_process_shutdown(**_: Any) -> None:
    shutdown_tracing()


def install_celery_propagation() -> None:
    """Connect the Celery signals that carry ``traceparent`` in task headers and open a consumer span per task."""
    from celery import signals

    signals.before_task_publish.connect(_before_publish, weak=False, dispatch_uid="omnirt-trace-publish")
    signals.task_prerun.connect(_task_prerun, weak=False, dispatch_uid="omnirt-trace-prerun")
    signals.task_postrun.connect(_task_postrun, weak=False, dispatch_uid="omnirt-trace-postrun")
    signals.worker_init.connect(_worker_process_init, weak=False, dispatch_uid="omnirt-trace-main")  # solo, threads
    signals.worker_process_init.connect(_worker_process_init, weak=False, dispatch_uid="omnirt-trace-init")
    signals.worker_process_shutdown.connect(_worker_process_shutdown, weak=False, dispatch_uid="omnirt-trace-exit")
    signals.setup_logging.connect(_celery_logging, weak=False, dispatch_uid="omnirt-json-logs")


def _celery_logging(loglevel: Any = None, **_: Any) -> None:
    """Celery's ``setup_logging`` signal: JSON lines when ``OMNIRT_LOG_FORMAT=json`` (connecting it means Celery
    leaves the root logger to us, so text mode sets up the usual format)."""
    from omnirt.settings import Settings

    level = loglevel if isinstance(loglevel, int) else logging.getLevelName(str(loglevel or "INFO").upper())
    configure_logging(Settings.value("log_format"), level if isinstance(level, int) else logging.INFO)


# -- logs -----------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def log_context(
    *, job_id: str | None = None, session_id: str | None = None, trace_id: str | None = None
) -> Iterator[None]:
    """Set the ids that log lines written inside carry."""
    tokens = []
    for var, value in ((job_id_var, job_id), (session_id_var, session_id), (trace_id_var, trace_id)):
        if value:
            tokens.append((var, var.set(value)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Puts ``job_id``, ``session_id`` and ``trace_id`` (the current span's, else the context's) on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = job_id_var.get()
        record.session_id = session_id_var.get()
        trace_id = None
        if trace is not None:
            trace_id, _ = span_ids(trace.get_current_span())
        record.trace_id = trace_id or trace_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, and the work's ids where present."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("job_id", "trace_id", "session_id"):
            value = getattr(record, key, None)
            if value:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(fmt: str = "text", level: int = logging.INFO, stream: Any = None) -> logging.Handler:
    """Route the root logger to one stream handler: JSON lines (``fmt="json"``) or plain text, with the context
    filter either way. Replaces the handlers a previous call installed."""
    if fmt not in ("json", "text"):
        raise ValueError(f"log format must be json or text, not {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(ContextFilter())
    handler._omnirt = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [item for item in root.handlers if getattr(item, "_omnirt", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


# -- a job's trace, rebuilt from its events -------------------------------------------------------------------------

_ENDS = {"job_finished": "ok", "job_failed": "error", "job_cancelled": "error"}


def _derived_id(*parts: Any) -> str:
    import hashlib

    return hashlib.sha256("/".join(str(part) for part in parts).encode()).hexdigest()[:16]


def job_trace(job: Any, events: list[Any]) -> dict[str, Any]:
    """The spans of ``job`` (a job span per attempt, a span per stage) from its recorded events, for users without a
    collector. With tracing on, the ids are the exported spans' (recorded on the events); otherwise stable ids
    derived from the job, under the job's trace id."""
    trace_id = job.trace_id
    spans: list[dict[str, Any]] = []
    job_span: dict[str, Any] | None = None
    stages: dict[str, dict[str, Any]] = {}

    def close(item: dict[str, Any], end_ms: int, status: str) -> None:
        item["end_ms"] = end_ms
        item["duration_ms"] = float(max(end_ms - item["start_ms"], 0))
        item["status"] = status

    for index, event in enumerate(events):
        data = event.data or {}
        if event.event == "job_started":
            if job_span is not None and job_span["end_ms"] is None:
                close(job_span, event.timestamp_ms, "error")
            job_span = {
                "name": f"job {job.model}",
                "trace_id": data.get("trace_id") or trace_id,
                "span_id": data.get("span_id") or _derived_id(job.id, "job", index),
                "parent_span_id": data.get("parent_span_id") or _traceparent_span(job.traceparent),
                "start_ms": event.timestamp_ms,
                "end_ms": None,
                "duration_ms": None,
                "status": "unset",
                "attributes": {
                    "omnirt.job_id": job.id,
                    "omnirt.model": job.model,
                    "omnirt.worker_id": data.get("worker_id"),
                },
            }
            spans.append(job_span)
        elif event.event in _ENDS and job_span is not None and job_span["end_ms"] is None:
            close(job_span, event.timestamp_ms, _ENDS[event.event])
            for item in stages.values():
                close(item, event.timestamp_ms, "error")
            stages.clear()
        elif event.event == "stage_start" and event.stage:
            item = {
                "name": f"stage {event.stage}",
                "trace_id": data.get("trace_id") or trace_id,
                "span_id": data.get("span_id") or _derived_id(job.id, event.stage, index),
                "parent_span_id": data.get("parent_span_id") or (job_span["span_id"] if job_span else None),
                "start_ms": event.timestamp_ms,
                "end_ms": None,
                "duration_ms": None,
                "status": "unset",
                "attributes": {"omnirt.stage": event.stage},
            }
            stages[event.stage] = item
            spans.append(item)
        elif event.event == "stage_end" and event.stage in stages:
            item = stages.pop(event.stage)
            close(item, event.timestamp_ms, "ok")
            if data.get("elapsed_ms") is not None:
                item["duration_ms"] = float(data["elapsed_ms"])
    return {"job_id": job.id, "trace_id": trace_id, "spans": spans}


def _traceparent_span(traceparent: str | None) -> str | None:
    parts = (traceparent or "").split("-")
    return parts[2] if len(parts) == 4 else None


def record_chunk(index: int, started: float, rendered: float, finished: float, **attributes: Any) -> None:
    """Spans for one realtime chunk under the current (session) span: ``chunk`` with ``inference`` and ``encode``
    children. The times are ``time.perf_counter()`` readings; nothing happens unless the session span records."""
    if trace is None:
        return
    parent = trace.get_current_span()
    if not parent.is_recording():
        return
    offset = time.time_ns() - int(time.perf_counter() * 1e9)
    at = {name: int(value * 1e9) + offset for name, value in (("s", started), ("r", rendered), ("f", finished))}
    chunk = tracer().start_span("chunk", start_time=at["s"], attributes={"omnirt.chunk_index": index, **attributes})
    context = trace.set_span_in_context(chunk)
    tracer().start_span("inference", context=context, start_time=at["s"]).end(end_time=at["r"])
    tracer().start_span("encode", context=context, start_time=at["r"]).end(end_time=at["f"])
    chunk.end(end_time=at["f"])
