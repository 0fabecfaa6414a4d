"""Test helpers for traces: an in-memory span exporter installed in this process, and a tiny OTLP/HTTP collector that
worker processes export to (decoded with opentelemetry-proto)."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def memory_exporter() -> Any:
    """An in-memory exporter on this process's tracer provider (installed on first use; the global provider can be
    set only once per process)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def finished(exporter: Any) -> list[dict[str, Any]]:
    """The exporter's spans as plain dicts (hex ids, times in ns)."""
    spans = []
    for item in exporter.get_finished_spans():
        context = item.get_span_context()
        spans.append(
            {
                "name": item.name,
                "trace_id": f"{context.trace_id:032x}",
                "span_id": f"{context.span_id:016x}",
                "parent_span_id": f"{item.parent.span_id:016x}" if item.parent else None,
                "attributes": dict(item.attributes or {}),
                "start": item.start_time,
                "end": item.end_time,
            }
        )
    return spans


class Collector:
    """``POST /v1/traces`` (OTLP/HTTP protobuf): keeps every span it receives."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                collector._receive(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _receive(self, body: bytes) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            service = next(
                (kv.value.string_value for kv in resource.resource.attributes if kv.key == "service.name"), None
            )
            for scope in resource.scope_spans:
                for item in scope.spans:
                    self.spans.append(
                        {
                            "name": item.name,
                            "service": service,
                            "trace_id": item.trace_id.hex(),
                            "span_id": item.span_id.hex(),
                            "parent_span_id": item.parent_span_id.hex() or None,
                            "attributes": {kv.key: _value(kv.value) for kv in item.attributes},
                            "start": item.start_time_unix_nano,
                            "end": item.end_time_unix_nano,
                        }
                    )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None
