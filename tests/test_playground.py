"""The playground's routes (omnirt/api/playground.py): the page and its files, `/` redirecting browsers while
WebSocket upgrades on `/` still reach the FlashTalk protocol, and API keys: the key form, and the cookie accepted on
the playground's pages only."""

from __future__ import annotations

import configparser
import fnmatch
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

KEY = "playground-test-key"
STATIC = Path(__file__).resolve().parents[1] / "omnirt" / "api" / "static" / "playground"


def _settings(tmp_path: Path, **overrides: Any) -> Any:
    from omnirt.settings import Settings

    return replace(Settings.from_env(), redis_url=None, artifact_dir=tmp_path / "artifacts", **overrides)


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[Any]:
    from omnirt.api import create_app

    app = create_app(_settings(tmp_path))
    yield app.test_client()
    app.extensions["omnirt"].close()


@pytest.fixture()
def keyed(tmp_path: Path) -> Iterator[Any]:
    from omnirt.api import create_app

    app = create_app(_settings(tmp_path, api_keys=(KEY,)))
    yield app.test_client()
    app.extensions["omnirt"].close()


def test_root_redirects_a_browser_to_the_playground(client: Any) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/playground")


def test_the_page_and_its_files_with_their_content_types(client: Any) -> None:
    page = client.get("/playground")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for reference in ('src="/playground/app.js"', 'href="/playground/style.css"'):
        assert reference in html
    for tab in ("Talk", "Generate", "Fleet"):
        assert f">{tab}</button>" in html
    assert client.get("/playground/").status_code == 200

    script = client.get("/playground/app.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert b"RTCPeerConnection" in script.data
    style = client.get("/playground/style.css")
    assert style.status_code == 200 and style.mimetype == "text/css"

    # nothing from elsewhere: the page works offline
    for name in ("index.html", "app.js", "style.css"):
        text = (STATIC / name).read_text()
        assert "http://" not in text and "https://" not in text, name


def test_config_names_the_default_avatar_model(client: Any) -> None:
    from omnirt.avatars import names

    assert client.get("/playground/config.json").get_json() == {"default_avatar_model": names.REFERENCE}


def test_unknown_playground_files_are_404(client: Any) -> None:
    for path in ("/playground/index.htm", "/playground/..%2fplayground.py", "/playground/app.js/x"):
        response = client.get(path)
        assert response.status_code == 404, path
    assert client.get("/playground/secret.py").get_json()["error"]["code"] == "not_found"


def test_without_a_key_the_page_asks_for_one(keyed: Any) -> None:
    for path in ("/playground", "/", "/playground/app.js"):
        response = keyed.get(path)
        assert response.status_code == 401, path
        assert response.mimetype == "text/html"
        form = response.get_data(as_text=True)
        assert 'type="password"' in form
        assert "omnirt_api_key=" in form and "Path=/playground" in form  # the cookie reaches the pages only
        assert "not accepted" not in form


def test_the_cookie_opens_the_playground_only(keyed: Any) -> None:
    keyed.set_cookie("omnirt_api_key", KEY)
    assert keyed.get("/playground").status_code == 200
    assert keyed.get("/playground/app.js").status_code == 200
    assert keyed.get("/playground/config.json").status_code == 200
    # the API routes never read the cookie: they answer JSON 401, as to any client without a key
    for path in ("/v1/models", "/v1/workers", "/v1/jobs", "/v1/avatars"):
        response = keyed.get(path)
        assert response.status_code == 401, path
        assert response.get_json()["error"]["code"] == "unauthorized"
    assert keyed.get("/healthz").status_code == 200


def test_a_wrong_cookie_gets_the_form_again(keyed: Any) -> None:
    keyed.set_cookie("omnirt_api_key", "not-the-key")
    response = keyed.get("/playground")
    assert response.status_code == 401 and response.mimetype == "text/html"
    assert "not accepted" in response.get_data(as_text=True)


def test_a_header_key_opens_the_playground_and_the_api(keyed: Any) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    assert keyed.get("/playground", headers=headers).status_code == 200
    assert keyed.get("/v1/models", headers=headers).status_code == 200
    assert keyed.get("/", headers=headers).status_code == 302
    # a query key stays refused on plain HTTP, the playground included
    assert keyed.get(f"/playground?api_key={KEY}").status_code == 401


def test_a_cookie_with_escaped_characters(tmp_path: Path) -> None:
    from omnirt.api import create_app

    key = "k=ey;with spaces"
    app = create_app(_settings(tmp_path, api_keys=(key,)))
    try:
        client = app.test_client()
        client.set_cookie("omnirt_api_key", "k%3Dey%3Bwith%20spaces")  # as the form's encodeURIComponent writes it
        assert client.get("/playground").status_code == 200
    finally:
        app.extensions["omnirt"].close()


# -- `/` over WebSocket: still the FlashTalk protocol -----------------------------------------------------------


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[Any]:
    from tests.support.servers import ApiServer

    servers: list[Any] = []

    def start(**overrides: Any) -> Any:
        server = ApiServer(_settings(tmp_path, **overrides))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _flashtalk_answer(url: str) -> dict[str, Any]:
    from simple_websocket import Client

    ws = Client.connect(url)
    try:
        ws.send(json.dumps({"type": "bogus"}))
        return json.loads(ws.receive(timeout=30))
    finally:
        ws.close()


def test_a_websocket_upgrade_on_root_reaches_flashtalk(served: Any) -> None:
    import urllib.request

    server = served()
    base = server.url.replace("http://", "ws://")
    # FlashTalk's own answer to an unknown message (the native protocol words it differently)
    assert _flashtalk_answer(f"{base}/") == {
        "type": "error",
        "message": "Unknown message type: bogus",
        "code": "unsupported_message",
    }

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(f"{server.url}/")
    assert answer.value.code == 302 and answer.value.headers["Location"].endswith("/playground")


def test_keys_on_the_root_websocket(served: Any) -> None:
    from simple_websocket import Client, ConnectionError

    server = served(api_keys=(KEY,))
    base = server.url.replace("http://", "ws://")
    assert _flashtalk_answer(f"{base}/?api_key={KEY}")["code"] == "unsupported_message"
    with pytest.raises(ConnectionError) as refused:
        Client.connect(f"{base}/")
    assert refused.value.status_code == 401
    # the cookie is the pages' only: an upgrade carrying it alone is refused
    with pytest.raises(ConnectionError) as refused:
        Client.connect(f"{base}/", headers={"Cookie": f"omnirt_api_key={KEY}"})
    assert refused.value.status_code == 401


def test_the_files_ship_in_the_package() -> None:
    setup = configparser.ConfigParser()
    setup.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    patterns = [item.strip() for item in setup["options.package_data"]["omnirt.api"].split(",")]
    files = sorted(path.name for path in STATIC.iterdir() if path.is_file())
    assert files == ["app.js", "index.html", "style.css"]
    for name in files:
        assert any(fnmatch.fnmatch(f"static/playground/{name}", pattern) for pattern in patterns), name


def test_the_banner_names_the_playground_first(tmp_path: Path) -> None:
    from omnirt.serve import banner

    lines = banner("127.0.0.1", 8000, _settings(tmp_path)).splitlines()
    assert lines[0] == "Playground: http://127.0.0.1:8000/playground"
    assert any("curl -s http://127.0.0.1:8000/v1/generate" in line for line in lines[1:])
    keyed_lines = banner("127.0.0.1", 8000, _settings(tmp_path, api_keys=(KEY,))).splitlines()
    assert keyed_lines[0].startswith("Playground: http://127.0.0.1:8000/playground")
    assert any("Authorization: Bearer $OMNIRT_API_KEY" in line for line in keyed_lines[1:])


def test_bench_webrtc_fails_clearly_without_a_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from click.testing import CliRunner

    from omnirt.bench import webrtc
    from omnirt.cli import main

    answer = CliRunner().invoke(main, ["bench", "webrtc", "--chromium", "/nonexistent/chromium"])
    assert answer.exit_code == 1 and "No Chromium at /nonexistent/chromium" in answer.output

    monkeypatch.setattr(webrtc.shutil, "which", lambda name: None)
    monkeypatch.setattr(webrtc, "CHROMIUM_PATHS", ("/nonexistent/chromium",))
    with pytest.raises(webrtc.BenchUnavailable, match="apt-get install -y chromium"):
        webrtc.find_chromium()
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        webrtc.importlib.util, "find_spec", lambda name: None if name == "playwright" else real_find_spec(name)
    )
    answer = CliRunner().invoke(main, ["bench", "webrtc"])
    assert answer.exit_code == 1 and "playwright is not installed" in answer.output
