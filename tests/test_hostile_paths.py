"""Hostile paths and keys (issue 8): model paths that leave the models dir, artifact symlinks, NUL bytes and
over-long names, server paths in error messages, API keys in URLs and logs, and a Redis that would lose the queue.

Tests that take ``service`` run embedded and against the fleet (real Redis, real Celery worker); the rest check the
API embedded, where it behaves the same, or call the shared functions directly.
"""

from __future__ import annotations

import base64
import logging
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import service_settings

NOOP = {"task": "text2image", "model": "bench-noop", "inputs": {"prompt": "x"}}
KEY = "s3cret-key"


def sd15(**config: Any) -> dict[str, Any]:
    return {"task": "text2image", "model": "sd15", "inputs": {"prompt": "a cat"}, "config": {"seed": 1, **config}}


def assert_refused(response: requests.Response, status: int = 400, code: str = "invalid_request") -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and "Traceback" not in response.text
    return error


@pytest.fixture()
def embedded(service_env: dict[str, str], service_dirs: dict[str, Path]) -> Iterator[Any]:
    """An embedded API server on a real port; ``embedded.start(**overrides)`` makes more (stopped at the end)."""
    from tests.support.servers import ApiServer

    servers: list[ApiServer] = []

    class Embedded:
        def start(self, **overrides: Any) -> ApiServer:
            servers.append(ApiServer(service_settings(None, service_dirs, **overrides)))
            return servers[-1]

    handle = Embedded()
    handle.url = handle.start().url
    yield handle
    for server in servers:
        server.stop()


@pytest.fixture()
def outside_sd15(service_dirs: dict[str, Path]) -> Iterator[Path]:
    """A real weights folder beside (outside) the models dir: ``<models>/../outside_sd15``."""
    folder = service_dirs["models"].parent / "outside_sd15"
    folder.mkdir(exist_ok=True)
    shutil.copy(service_dirs["models"] / "sd15" / "model_index.json", folder / "model_index.json")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# -- 1. model_path: a hub id or a folder inside the models dir, the same check at the API and the worker ----------


def test_model_path_outside_the_models_dir_is_refused_before_any_job(service, outside_sd15: Path) -> None:
    for model_path in ("../outside_sd15", str(outside_sd15), "sd15/../../outside_sd15", "/etc", "sd15/.."):
        job_id = f"hostile-{uuid.uuid4().hex[:12]}"
        body = {**sd15(model_path=model_path), "job_id": job_id, "async_run": True}
        error = assert_refused(requests.post(f"{service.url}/v1/generate", json=body, timeout=30))
        assert "config.model_path" in error["message"] and str(outside_sd15.parent) not in error["message"]
        assert requests.get(f"{service.url}/v1/jobs/{job_id}", timeout=10).status_code == 404


def test_model_path_symlink_leading_out_of_the_models_dir_is_refused(
    service, service_dirs: dict[str, Path], outside_sd15: Path
) -> None:
    link = service_dirs["models"] / f"hostile-link-{uuid.uuid4().hex[:8]}"
    link.symlink_to(outside_sd15, target_is_directory=True)
    try:
        assert_refused(requests.post(f"{service.url}/v1/generate", json=sd15(model_path=link.name), timeout=30))
    finally:
        link.unlink()


def test_model_path_inside_the_models_dir_still_runs(service, service_dirs: dict[str, Path]) -> None:
    absolute = str(service_dirs["models"] / "sd15")
    for model_path in ("sd15", absolute):
        response = requests.post(f"{service.url}/v1/generate", json=sd15(model_path=model_path), timeout=120)
        assert response.status_code == 200, response.text


def test_resolve_model_path_is_one_rule_for_api_and_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service_dirs: dict[str, Path]
) -> None:
    from omnirt.contracts.errors import RequestValidationError
    from omnirt.runtime.weights import resolve_model_path

    models = tmp_path / "models"
    (models / "sd15").mkdir(parents=True)
    (models / "org" / "local").mkdir(parents=True)
    (tmp_path / "outside_sd15").mkdir()
    (models / "out").symlink_to(tmp_path / "outside_sd15")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "acme" / "weights").mkdir(parents=True)  # a hub-shaped folder in the working directory

    assert resolve_model_path("org/name", models) == "org/name"
    assert resolve_model_path("runwayml/stable-diffusion-v1.5", models) == "runwayml/stable-diffusion-v1.5"
    assert resolve_model_path("sd15", models) == str(models.resolve() / "sd15")
    assert resolve_model_path(str(models / "sd15"), models) == str(models.resolve() / "sd15")
    assert resolve_model_path("org/local", models) == str(models.resolve() / "org" / "local")  # folder wins
    for hostile in (
        "../outside_sd15",
        str(tmp_path / "outside_sd15"),
        "out",  # a symlink in the models dir leading out
        "/etc",
        "sd15/..",  # the models dir itself
        "org/..",
        "acme/weights",  # loaders would read ./acme/weights instead of the hub
        "sd15\x00",
        "a" * 5000,
        "",
        7,
    ):
        with pytest.raises(RequestValidationError) as refused:
            resolve_model_path(hostile, models)  # type: ignore[arg-type]
        assert refused.value.code == "invalid_request" and str(tmp_path) not in refused.value.message


def test_a_confined_worker_refuses_a_stored_path_outside_the_models_dir(tmp_path: Path) -> None:
    """What a fleet worker does with a job record that names a folder outside (the API would not store one)."""
    from omnirt.contracts.errors import RequestValidationError
    from omnirt.runtime.weights import resolve_weights

    models, outside = tmp_path / "models", tmp_path / "outside_sd15"
    (models / "sd15").mkdir(parents=True)
    (models / "sd15" / "model_index.json").write_text("{}")
    outside.mkdir()
    (outside / "model_index.json").write_text("{}")
    for stored in (str(outside), "../outside_sd15"):
        with pytest.raises(RequestValidationError):
            resolve_weights("sd15", hub_id=None, model_path=stored, models_dir=models, confined=True)
    inside = resolve_weights("sd15", hub_id=None, model_path=str(models / "sd15"), models_dir=models, confined=True)
    assert inside.location == str((models / "sd15").resolve())
    local = resolve_weights("sd15", hub_id=None, model_path=str(outside), models_dir=models, confined=False)
    assert local.location == str(outside.resolve())  # the CLI and Python API may name any folder


def test_fleet_processes_confine_model_paths_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from omnirt.runtime.weights import model_paths_confined

    monkeypatch.delenv("OMNIRT_CONFINE_MODEL_PATHS", raising=False)
    monkeypatch.delenv("OMNIRT_REDIS_URL", raising=False)
    assert model_paths_confined() is False
    monkeypatch.setenv("OMNIRT_REDIS_URL", "redis://127.0.0.1:1/0")
    assert model_paths_confined() is True
    monkeypatch.setenv("OMNIRT_CONFINE_MODEL_PATHS", "0")
    assert model_paths_confined() is False
    monkeypatch.delenv("OMNIRT_REDIS_URL")
    monkeypatch.setenv("OMNIRT_CONFINE_MODEL_PATHS", "1")
    assert model_paths_confined() is True


# -- 2. artifact downloads: real paths only, inside the artifact dir ----------------------------------------------


def test_artifact_folder_symlinked_elsewhere_is_not_served(embedded: Any, service_dirs: dict[str, Path]) -> None:
    job_id = f"hostile-{uuid.uuid4().hex[:12]}"
    link = service_dirs["artifacts"] / job_id
    link.symlink_to("/etc", target_is_directory=True)
    try:
        assert_refused(requests.get(f"{embedded.url}/v1/artifacts/{job_id}/passwd", timeout=10), 404, "not_found")
    finally:
        link.unlink()


def test_artifact_file_symlinked_elsewhere_is_not_served(embedded: Any, service_dirs: dict[str, Path]) -> None:
    job_id = f"hostile-{uuid.uuid4().hex[:12]}"
    folder = service_dirs["artifacts"] / job_id
    folder.mkdir()
    (folder / "image-0.png").write_bytes(b"png")
    (folder / "passwd").symlink_to("/etc/passwd")
    (folder / "inputs").mkdir()
    (folder / "inputs" / "image-0.png").write_bytes(b"input")
    try:
        served = requests.get(f"{embedded.url}/v1/artifacts/{job_id}/image-0.png", timeout=10)
        assert served.status_code == 200 and served.content == b"png"
        for name in ("passwd", "inputs/image-0.png", "../../../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd"):
            response = requests.get(f"{embedded.url}/v1/artifacts/{job_id}/{name}", timeout=10)
            assert response.status_code == 404 and "root:" not in response.text
    finally:
        shutil.rmtree(folder)


def test_artifact_names_with_nul_bytes_or_5000_characters_are_not_found(embedded: Any) -> None:
    for name in ("a%00b.png", "%00", "x" * 5000, "/".join(["d" * 200] * 25)):
        response = requests.get(f"{embedded.url}/v1/artifacts/somejob/{name}", timeout=10)
        assert response.status_code in (400, 404), response.text[:200]
        assert response.json()["error"]["code"] in ("invalid_request", "not_found")
    long_job = requests.get(f"{embedded.url}/v1/artifacts/{'j' * 5000}/image-0.png", timeout=10)
    assert long_job.status_code in (400, 404)


# -- 3. NUL bytes and over-long strings in paths a request names: 400, never 500 ----------------------------------


def test_nul_bytes_and_long_strings_in_request_paths_are_invalid_requests(embedded: Any) -> None:
    bodies = []
    for bad in ("/tmp/x\x00.png", "x" * 5000):
        bodies += [
            {**NOOP, "inputs": {"prompt": "x", "image": bad}},
            {**NOOP, "inputs": {"prompt": "x", "audio": bad}},
            {**NOOP, "inputs": {"prompt": "x", "image": [bad]}},
            sd15(model_path=bad),
            {**sd15(), "adapters": [{"kind": "lora", "path": bad}]},
        ]
    bodies.append(sd15(model_path="org/name\x00"))
    bodies.append({**sd15(), "adapters": [{"kind": "lora", "path": "hf://org/repo/x\x00.safetensors"}]})
    bodies.append({**sd15(), "adapters": [{"kind": "lora", "path": "../../etc/lora.safetensors"}]})
    for body in bodies:
        assert_refused(requests.post(f"{embedded.url}/v1/generate", json=body, timeout=30))


# -- 5. errors name the input, not the server path it was written to ----------------------------------------------


def test_submission_errors_name_inputs_not_server_paths(
    embedded: Any, tmp_path: Path, service_dirs: dict[str, Path]
) -> None:
    roots = embedded.start(input_roots=(tmp_path,))
    missing = tmp_path / "uploads" / "missing.png"
    body = {"task": "image2image", "model": "sd15", "inputs": {"prompt": "x", "image": str(missing)}}
    error = assert_refused(requests.post(f"{roots.url}/v1/generate", json=body, timeout=30))
    assert "inputs.image" in error["message"] and str(tmp_path) not in str(error)
    png = base64.b64encode(b"\x89PNG not really").decode()
    body = {**NOOP, "inputs": {"prompt": "x", "image": f"data:image/png;base64,{png}"}, "config": {"bogus": 1}}
    error = assert_refused(requests.post(f"{embedded.url}/v1/generate", json=body, timeout=30))
    assert str(service_dirs["artifacts"]) not in str(error) and "/inputs/" not in str(error)


# -- 4. ?api_key= only on WebSocket upgrades, and never in the access log -----------------------------------------


def test_query_api_key_is_refused_on_plain_http(embedded: Any) -> None:
    from simple_websocket import Client

    secured = embedded.start(api_keys=(KEY,))
    refused = assert_refused(requests.get(f"{secured.url}/v1/jobs?api_key={KEY}", timeout=10), 401, "unauthorized")
    assert "Authorization" in refused["message"] and "WebSocket" in refused["message"]
    posted = requests.post(f"{secured.url}/v1/generate?api_key={KEY}", json={**NOOP, "async_run": True}, timeout=10)
    assert_refused(posted, 401, "unauthorized")
    assert requests.get(f"{secured.url}/v1/jobs", headers={"Authorization": f"Bearer {KEY}"}, timeout=10).ok
    job = requests.post(
        f"{secured.url}/v1/generate",
        json={**NOOP, "config": {"steps": 20, "step_ms": 50}, "async_run": True},
        headers={"x-api-key": KEY},
        timeout=30,
    ).json()
    ws = Client.connect(f"{secured.url.replace('http', 'ws')}/v1/jobs/{job['id']}/stream?api_key={KEY}")
    try:
        assert "job_enqueued" in ws.receive(timeout=30)
    finally:
        if ws.connected:
            ws.close()


def test_embedded_access_log_redacts_query_keys(
    service_env: dict[str, str], service_dirs: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    from omnirt.api import create_app
    from omnirt.serve import make_embedded_server

    app = create_app(service_settings(None, service_dirs, api_keys=(KEY,)))
    server = make_embedded_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            url = f"http://127.0.0.1:{server.server_port}"
            requests.get(f"{url}/v1/jobs?limit=1&api_key={KEY}", timeout=10)
            requests.get(f"{url}/v1/jobs?API%5FKEY={KEY}", timeout=10)
            requests.get(f"{url}/healthz?api_key={KEY}", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
        app.extensions["omnirt"].close()
    lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert len([line for line in lines if "/v1/jobs" in line or "/healthz" in line]) >= 3, lines
    assert all(KEY not in line for line in lines), lines
    assert any("api_key=[redacted]" in line for line in lines), lines


def test_gunicorn_access_log_leaves_the_query_string_out() -> None:
    from omnirt.serve import GUNICORN_ACCESS_LOG_FORMAT

    assert "%(r)s" not in GUNICORN_ACCESS_LOG_FORMAT and "%(q)s" not in GUNICORN_ACCESS_LOG_FORMAT
    assert "%(U)s" in GUNICORN_ACCESS_LOG_FORMAT


# -- 6. a Redis without persistence is reported, readiness unchanged ----------------------------------------------


def test_readyz_reports_redis_persistence(service, caplog: pytest.LogCaptureFixture) -> None:
    ready = requests.get(f"{service.url}/readyz", timeout=10)
    body = ready.json()
    assert ready.status_code == 200 and body["ok"] is True
    if service.mode == "embedded":
        assert "redis_persistence" not in body and body["warnings"] == []
        return
    assert body["redis_persistence"] == "none"  # the test Redis runs with --save "" --appendonly no
    assert any("restart loses every queued job" in warning for warning in body["warnings"])
    with caplog.at_level(logging.WARNING, logger="omnirt.api.health"):
        service.start()
    assert any("restart loses every queued job" in record.getMessage() for record in caplog.records)


def test_redis_persistence_kinds() -> None:
    import redis

    from omnirt.api.health import persistence_warning, redis_persistence

    class FakeRedis:
        def __init__(self, appendonly: str, save: str, refuse: bool = False) -> None:
            self.values = {"appendonly": appendonly, "save": save}
            self.refuse = refuse

        def config_get(self, name: str) -> dict[str, str]:
            if self.refuse:
                raise redis.exceptions.ResponseError("unknown command 'CONFIG'")
            return {name: self.values[name]}

    assert redis_persistence(FakeRedis("no", "")) == "none"
    assert redis_persistence(FakeRedis("yes", "")) == "aof"
    assert redis_persistence(FakeRedis("no", "3600 1 300 100")) == "rdb"
    assert redis_persistence(FakeRedis("yes", "3600 1")) == "aof+rdb"
    assert redis_persistence(FakeRedis("no", "", refuse=True)) == "unknown"
    assert persistence_warning("none") and persistence_warning("unknown")
    assert persistence_warning("aof") is None and persistence_warning("aof+rdb") is None
