"""Realtime metrics: what the front ends see of avatar sessions and streamed speech, and what the workers report.

Observed where the front end relays (every protocol: FlashTalk, native WebSocket, WebRTC), as prometheus_client
metrics of the front-end process (merged across gunicorn workers by the multiprocess collector):

* ``omnirt_sessions_opened_total{model,protocol}``: sessions a worker admitted;
* ``omnirt_session_rejections_total{model,code}``: sessions refused at admission (``no_capacity``, ``worker_lost``,
  ``model_unavailable``, ``unknown_model``, ...);
* ``omnirt_session_ttff_seconds{model,protocol}``: session opened until its first frame reached the client;
* ``omnirt_session_chunk_latency_seconds{model,protocol}``: audio chunk sent to the worker until its frames came back;
* ``omnirt_session_frames_total{model,protocol}``: frames relayed (``rate()`` is the frames per second);
* ``omnirt_tts_first_packet_seconds{model}``: a streamed synthesis queued until its first audio packet.

Read at scrape from the workers' heartbeats (:class:`WorkerCollector`, no keyspace scan):

* ``omnirt_active_sessions{model,worker}``: sessions each worker process runs now, per model;
* ``omnirt_session_capacity{worker}``;
* ``omnirt_worker_memory_bytes{worker,kind}``: resident memory (``rss``) and, where the backend reports it, device
  memory allocated (``device``);
* ``omnirt_build_info{version,python}``: always 1.
"""

from __future__ import annotations

import platform
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from omnirt import __version__

#: The front end's realtime metrics (without PROMETHEUS_MULTIPROC_DIR the scrape reads them from here; with it,
#: prometheus_client writes them to the per-process files the scrape merges).
REGISTRY = CollectorRegistry()
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)

SESSIONS_OPENED = Counter(
    "omnirt_sessions_opened", "Realtime avatar sessions a worker admitted.", ["model", "protocol"], registry=REGISTRY
)
SESSION_REJECTIONS = Counter(
    "omnirt_session_rejections",
    "Realtime avatar sessions refused when opening, by error code.",
    ["model", "code"],
    registry=REGISTRY,
)
SESSION_TTFF = Histogram(
    "omnirt_session_ttff_seconds",
    "Session opened until its first frame reached the client.",
    ["model", "protocol"],
    buckets=LATENCY_BUCKETS_S,
    registry=REGISTRY,
)
CHUNK_LATENCY = Histogram(
    "omnirt_session_chunk_latency_seconds",
    "An audio chunk sent to the worker until its frames came back.",
    ["model", "protocol"],
    buckets=LATENCY_BUCKETS_S,
    registry=REGISTRY,
)
FRAMES = Counter(
    "omnirt_session_frames", "Frames relayed to realtime clients.", ["model", "protocol"], registry=REGISTRY
)
TTS_FIRST_PACKET = Histogram(
    "omnirt_tts_first_packet_seconds",
    "A streamed synthesis queued until its first audio packet.",
    ["model"],
    buckets=LATENCY_BUCKETS_S,
    registry=REGISTRY,
)


def session_opened(model: str, protocol: str) -> None:
    SESSIONS_OPENED.labels(model, protocol).inc()


def session_rejected(model: str, code: str) -> None:
    SESSION_REJECTIONS.labels(model, code).inc()


def first_frame(model: str, protocol: str, seconds: float) -> None:
    SESSION_TTFF.labels(model, protocol).observe(seconds)


def chunk(model: str, protocol: str, seconds: float | None, frames: int) -> None:
    """One chunk relayed: its latency (None when it was not asked for, e.g. flushed frames) and its frame count."""
    if seconds is not None:
        CHUNK_LATENCY.labels(model, protocol).observe(seconds)
    if frames:
        FRAMES.labels(model, protocol).inc(frames)


def tts_first_packet(model: str, seconds: float) -> None:
    TTS_FIRST_PACKET.labels(model).observe(seconds)


class WorkerCollector:
    """Gauges from the live workers' heartbeats (read from the worker index, as ``/v1/workers`` does)."""

    def __init__(self, backplane: Any) -> None:
        self.backplane = backplane

    def collect(self) -> Any:
        active = GaugeMetricFamily(
            "omnirt_active_sessions", "Realtime sessions each worker process runs now.", labels=["model", "worker"]
        )
        capacity = GaugeMetricFamily(
            "omnirt_session_capacity", "Realtime sessions each worker process may run.", labels=["worker"]
        )
        memory = GaugeMetricFamily(
            "omnirt_worker_memory_bytes", "Worker process memory: resident and device.", labels=["worker", "kind"]
        )
        for info in self.backplane.workers.workers():
            worker = str(info.get("worker_id") or info.get("node") or info.get("pid"))
            sessions = info.get("sessions") or {}
            for model, count in sorted((sessions.get("by_model") or {}).items()):
                active.add_metric([model, worker], count)
            if "capacity" in sessions:
                capacity.add_metric([worker], sessions["capacity"])
            used = info.get("memory") or {}
            if "rss_mb" in used:
                memory.add_metric([worker, "rss"], used["rss_mb"] * 2**20)
            if "device_mb" in used:
                memory.add_metric([worker, "device"], used["device_mb"] * 2**20)
        yield active
        yield capacity
        yield memory
        build = GaugeMetricFamily("omnirt_build_info", "OmniRT version; always 1.", labels=["version", "python"])
        build.add_metric([__version__, platform.python_version()], 1)
        yield build
