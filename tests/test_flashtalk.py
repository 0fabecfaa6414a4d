"""soulx-flashtalk-14b through its resident server: proxy mode, resident mode supervised by the worker (restart with
backoff, circuit breaker with the log tail), embedded and on the fleet, against a fake server speaking FlashTalk."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import service_settings
from tests.support.servers import ApiServer, RedisServer, Worker, free_port, wait_until
from tests.test_avatar import OpenTalkingClient, loud_chunk, silent_chunk, ws_url

SMALL = {"width": 128, "height": 128, "slice_len": 4}


def fake_command(crash: bool = False) -> str:
    return f"{sys.executable} -m tests.support.fake_flashtalk --port {{port}}" + (" --crash" if crash else "")


@pytest.fixture()
def fresh_flashtalk() -> Any:
    """FlashTalk pipelines read their environment when loaded: start and end each test with none loaded."""
    from omnirt.workers.engine import get_default_engine

    get_default_engine().cache.evict("soulx-flashtalk-14b")
    yield
    for key in get_default_engine().cache.keys():
        if key[0] == "soulx-flashtalk-14b":
            resident = get_default_engine().cache.get_or_load(key, lambda: None)[0].pipeline.resident
            if resident is not None:
                resident.stop()
    get_default_engine().cache.evict("soulx-flashtalk-14b")


@pytest.fixture()
def upstream() -> Any:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_flashtalk", "--port", str(port)],
        cwd=Path(__file__).resolve().parents[1],
    )
    wait_until(lambda: _listening(port), timeout=30)
    yield f"ws://127.0.0.1:{port}/"
    process.terminate()
    process.wait(timeout=10)


def _listening(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def test_proxy_mode_embedded(
    upstream: str, fresh_flashtalk: Any, service_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNIRT_FLASHTALK_UPSTREAM", upstream)
    api = ApiServer(service_settings(None, service_dirs))
    try:
        client = OpenTalkingClient(ws_url(api.url, "/v1/audio2video/flashtalk"), **SMALL)
        assert client.init_ok["backing_model"] == "soulx-flashtalk-14b"
        loud, quiet = client.chunk(loud_chunk(2560)), client.chunk(silent_chunk(2560))
        assert len(loud) == len(quiet) == 4 and loud[0].shape == (128, 128, 3)
        assert loud[0][..., 2].mean() > quiet[0][..., 2].mean() + 10  # the upstream's frames came through
        client.close()
        import requests

        statuses = requests.get(f"{api.url}/v1/audio2video/models", timeout=10).json()["statuses"]
        flashtalk = next(status for status in statuses if status["id"] == "flashtalk")
        assert flashtalk["model"] == "soulx-flashtalk-14b"
    finally:
        api.stop()


def test_resident_mode_restarts_the_server_and_breaks_the_circuit(
    fresh_flashtalk: Any, service_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from omnirt.workers.engine import get_default_engine

    port = free_port()
    monkeypatch.setenv("OMNIRT_FLASHTALK_COMMAND", fake_command())
    monkeypatch.setenv("OMNIRT_FLASHTALK_PORT", str(port))
    monkeypatch.setenv("OMNIRT_RESIDENT_BACKOFF_S", "0.1")
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    api = ApiServer(service_settings(None, service_dirs))
    try:
        client = OpenTalkingClient(ws_url(api.url, "/v1/audio2video/flashtalk"), **SMALL)
        assert len(client.chunk(loud_chunk(2560))) == 4
        client.close()
        pipeline = get_default_engine().pipeline_for("soulx-flashtalk-14b")
        first_pid = pipeline.resident.process.pid
        pipeline.resident.process.kill()  # the resident server dies between sessions
        pipeline.resident.process.wait(timeout=10)
        again = OpenTalkingClient(ws_url(api.url, "/v1/audio2video/flashtalk"), **SMALL)
        assert len(again.chunk(loud_chunk(2560))) == 4
        assert pipeline.resident.process.pid != first_pid
        again.close()

        pipeline.resident.stop()
        pipeline.resident.argv = fake_command(crash=True).format(port=port).split()
        ws = __import__("simple_websocket").Client.connect(ws_url(api.url, "/v1/audio2video/flashtalk"))
        ws.send(json.dumps({"type": "init", **SMALL}))
        error = json.loads(ws.receive(timeout=60))
        assert error["type"] == "error" and error["code"] == "runtime_unavailable"
        assert "boom: CUDA error" in error["message"]  # the log tail
        started = time.monotonic()
        ws.send(json.dumps({"type": "init", **SMALL}))
        assert json.loads(ws.receive(timeout=30))["code"] == "runtime_unavailable"
        assert time.monotonic() - started < 2  # the open circuit answers at once
        ws.close()
    finally:
        api.stop()


def test_flashtalk_queue_on_the_fleet(
    upstream: str, service_env: dict[str, str], service_dirs: dict[str, Path]
) -> None:
    redis = RedisServer().start()
    api = ApiServer(service_settings(redis.url, service_dirs))
    worker = Worker(
        redis.url,
        ["flashtalk"],
        {**service_env, "OMNIRT_FLASHTALK_UPSTREAM": upstream, "OMNIRT_SESSION_CAPACITY": "1"},
        service_dirs["logs"],
        "flashtalk",
    )
    try:
        worker.wait_ready(api.backplane)
        client = OpenTalkingClient(ws_url(api.url, "/v1/audio2video/flashtalk"), **SMALL)
        assert client.init_ok["backing_model"] == "soulx-flashtalk-14b"
        assert [len(client.chunk(loud_chunk(2560))) for _ in range(3)] == [4, 4, 4]
        client.close()
    finally:
        worker.stop()
        api.stop()
        redis.stop()
