"""Prometheus metrics: per-route latency and status (prometheus-flask-exporter), plus fleet gauges read at scrape.

Fleet metrics come from Redis (or, embedded, from this process), so every front-end process reports the same values,
however many gunicorn workers serve ``/metrics``:

* ``omnirt_jobs{state,model}``: jobs now queued or running, and jobs ever ended per terminal state;
* ``omnirt_queue_depth{queue}``: messages waiting in each Celery queue;
* ``omnirt_oldest_queued_job_age_seconds``;
* ``omnirt_stage_duration_ms{stage,model}``: a histogram of run stages (load, denoise_loop, decode, ...);
* ``omnirt_live_workers{queue}``: worker processes with a live heartbeat, per queue.

A scrape reads counters kept up to date where they change (the job counts hash, the worker index, the queue lists,
the stage histogram hash): a fixed number of Redis commands, never a scan of the keyspace.

Under gunicorn, set ``PROMETHEUS_MULTIPROC_DIR`` (``omnirt serve`` does) and the route metrics of all workers are
merged.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from typing import Any

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from omnirt.jobs.stats import STAGE_BUCKETS_MS
from omnirt.telemetry import realtime


class FleetCollector:
    def __init__(self, backplane: Any) -> None:
        self.backplane = backplane

    def collect(self) -> Any:
        from omnirt.tasks.routing import all_tier_queues

        backplane = self.backplane
        jobs = GaugeMetricFamily(
            "omnirt_jobs", "Jobs queued or running now; jobs ended, per terminal state.", labels=["state", "model"]
        )
        for (state, model), count in sorted(backplane.store.counts().items()):
            jobs.add_metric([state, model], max(count, 0))
        yield jobs

        workers = backplane.workers.workers()
        depth = GaugeMetricFamily("omnirt_queue_depth", "Tasks waiting in each queue.", labels=["queue"])
        queues = sorted(set(all_tier_queues()) | {queue for worker in workers for queue in worker.get("queues", [])})
        if backplane.redis is not None:
            pipe = backplane.redis.pipeline(transaction=False)
            for queue in queues:
                pipe.llen(queue)
            for queue, length in zip(queues, pipe.execute(), strict=True):
                depth.add_metric([queue], length)
        else:
            depth.add_metric(["embedded"], backplane.dispatcher.jobs.qsize())
        yield depth

        oldest = backplane.store.oldest_queued_ms()
        age = GaugeMetricFamily("omnirt_oldest_queued_job_age_seconds", "Age of the oldest queued job.")
        age.add_metric([], 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000))
        yield age

        live = GaugeMetricFamily("omnirt_live_workers", "Worker processes with a live heartbeat.", labels=["queue"])
        per_queue: dict[str, int] = defaultdict(int)
        for worker in workers:
            for queue in worker.get("queues", []):
                per_queue[queue] += 1
        for queue in queues:
            live.add_metric([queue], per_queue.get(queue, 0))
        yield live

        yield self._stages()

    def _stages(self) -> HistogramMetricFamily:
        histogram = HistogramMetricFamily(
            "omnirt_stage_duration_ms", "Run stage durations in milliseconds.", labels=["stage", "model"]
        )
        for (stage, model), values in sorted(self.backplane.stages.snapshot().items()):
            buckets, running = [], 0.0
            for bound in STAGE_BUCKETS_MS:  # stored per bucket; Prometheus buckets are cumulative
                running += values.get(f"in_{bound}", 0.0)
                buckets.append((str(bound), running))
            buckets.append(("+Inf", values.get("count", 0.0)))
            histogram.add_metric([stage, model], buckets, values.get("sum", 0.0))
        return histogram


def init_app(app: Flask, backplane: Any) -> None:
    from prometheus_flask_exporter import PrometheusMetrics

    # With PROMETHEUS_MULTIPROC_DIR set, prometheus_client writes every sample to per-process files, which the
    # scrape below merges; otherwise the samples live in this registry.
    multiproc = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    exporter = PrometheusMetrics(
        app, path=None, group_by="url_rule", defaults_prefix="omnirt", registry=CollectorRegistry(auto_describe=True)
    )
    app.extensions["omnirt_route_metrics"] = exporter.registry
    fleet = FleetCollector(backplane)
    workers = realtime.WorkerCollector(backplane)

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus metrics.
        ---
        get:
          responses: {200: {description: Prometheus text format}}
        """
        registry = CollectorRegistry()
        if multiproc:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(registry)
        else:
            for collector in [*_route_collectors(app), _RegistryProxy(realtime.REGISTRY)]:
                registry.register(collector)
        registry.register(fleet)
        registry.register(workers)
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _route_collectors(app: Flask) -> list[Any]:
    registry = app.extensions.get("omnirt_route_metrics")
    return [_RegistryProxy(registry)] if registry is not None else []


class _RegistryProxy:
    """Re-exposes another registry's samples inside the per-scrape registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Any:
        return self.registry.collect()
