"""The Grafana dashboard (deploy/grafana/dashboards/omnirt.json) queries only metrics /metrics exports, and the
realtime metrics it is built on carry real observations after a session and a streamed synthesis."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import requests
from prometheus_client.parser import text_string_to_metric_families
from simple_websocket import Client

from tests.conftest import service_settings
from tests.support.servers import ApiServer, wait_until

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards" / "omnirt.json"
METRIC = re.compile(r"\b(omnirt_[a-z0-9_]+)\b")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count", ""), "counter": ("_total", ""), "gauge": ("",)}


def queried_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert exprs, "the dashboard has no queries"
    return {name for expr in exprs for name in METRIC.findall(expr)}


def exported(text: str) -> tuple[set[str], dict[str, list]]:
    """(every sample name a family may export, the samples that were exported) of a /metrics body."""
    names, samples = set(), {}
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return names, samples


def test_every_metric_the_dashboard_queries_is_exported_and_observed(tmp_path: Path) -> None:
    server = ApiServer(service_settings(None, {"artifacts": tmp_path}))
    try:
        # a realtime session: opened, one chunk, its frames, TTFF
        ws = Client.connect(server.url.replace("http://", "ws://") + "/v1/audio2video/photoreal-avatar")
        ws.send(json.dumps({"type": "init", "width": 256, "height": 320, "slice_len": 8}))
        assert json.loads(ws.receive(timeout=120))["type"] == "init_ok"
        tone = (np.sin(np.arange(5120) / 16000 * 2 * np.pi * 180) * 8000).astype("<i2").tobytes()
        ws.send(b"AUDI" + tone)
        assert ws.receive(timeout=60)[:4] == b"VIDX"
        # while it runs, the worker reports it (heartbeat) as an active session of its model
        text = wait_until(
            lambda: (
                (body := requests.get(f"{server.url}/metrics", timeout=10).text)
                and 'omnirt_active_sessions{model="photoreal-avatar"' in body
                and body
            ),
            timeout=10,
        )
        ws.close()
        # a refused session and a streamed synthesis
        refused = Client.connect(server.url.replace("http://", "ws://") + "/v1/audio2video/no-such-avatar")
        refused.send(json.dumps({"type": "init"}))
        assert json.loads(refused.receive(timeout=60))["code"] == "unknown_model"
        refused.close()
        speech = requests.post(f"{server.url}/v1/text2audio/stream", json={"text": "Hello."}, timeout=120)
        assert speech.status_code == 200 and len(speech.content) > 1000
        after = requests.get(f"{server.url}/metrics", timeout=10).text
    finally:
        server.stop()

    names, samples = exported(after)
    missing = sorted(queried_metrics() - names)
    assert not missing, f"the dashboard queries metrics /metrics does not export: {missing}"

    def observed(name: str, **labels: str) -> float:
        return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))

    model = {"model": "photoreal-avatar", "protocol": "flashtalk"}
    assert observed("omnirt_sessions_opened_total", **model) >= 1
    assert observed("omnirt_session_ttff_seconds_count", **model) >= 1
    assert observed("omnirt_session_chunk_latency_seconds_count", **model) >= 1
    assert observed("omnirt_session_frames_total", **model) >= 8
    assert observed("omnirt_tts_first_packet_seconds_count") >= 1
    assert observed("omnirt_build_info") == 1
    _, during = exported(text)
    assert observed("omnirt_session_rejections_total", model="no-such-avatar", code="unknown_model") == 1
    # the heartbeat's view, taken while the session ran
    assert sum(s.value for s in during["omnirt_active_sessions"] if s.labels["model"] == "photoreal-avatar") >= 1
    assert any(s.labels["kind"] == "rss" and s.value > 0 for s in during["omnirt_worker_memory_bytes"])
