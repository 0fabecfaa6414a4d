"""The playground in a real browser: headless Chromium (Debian's package, through playwright with the system
browser) on an embedded server on a localhost port, driven as a person would.

Talk: a sentence typed, Speak pressed, the voice and >= 50 video frames received over WebRTC, the mouth region
changing while the voice speaks (the page's own measurements, ``window.omnirtMetrics``); the same over the WebSocket
fallback. Generate: an image job whose progress bar reaches 100% and whose picture shows. Fleet: the workers and
models listed.

With ``PLAYGROUND_SCREENSHOT=path`` (``make screenshot``) the Talk test writes its mid-speech screenshot there (the
README's picture); otherwise to a temporary folder. Without Chromium or playwright the module is skipped, except in
CI (``CI`` set), where ``.ci/run`` installs Chromium and a missing browser is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from omnirt.bench.webrtc import BenchUnavailable, EmbeddedServer, PlaygroundBrowser, find_chromium, require_playwright

try:
    require_playwright()
    find_chromium()
except BenchUnavailable as missing:
    if os.environ.get("CI"):
        raise
    pytest.skip(str(missing), allow_module_level=True)

SENTENCE = "Hello! I am a digital human, and I am talking to you live from this computer."


@pytest.fixture(scope="module")
def server(service_env: dict[str, str], service_dirs: dict[str, Path]) -> Iterator[EmbeddedServer]:
    """The embedded app (tiny sd15 in its models dir, the weightless default avatar) on a real localhost port."""
    from omnirt.settings import Settings

    settings = replace(Settings.from_env(), redis_url=None, artifact_dir=service_dirs["artifacts"], sse_keepalive_s=1.0)
    running = EmbeddedServer(settings)
    yield running
    running.stop()


@pytest.fixture()
def browser(server: EmbeddedServer) -> Iterator[PlaygroundBrowser]:
    opened = PlaygroundBrowser()
    try:
        opened.open(server.url)
        yield opened
    finally:
        opened.close()


def _screenshot_path(tmp_path: Path) -> Path:
    target = os.environ.get("PLAYGROUND_SCREENSHOT")
    return Path(target) if target else tmp_path / "playground.png"


def test_talk_over_webrtc(browser: PlaygroundBrowser, tmp_path: Path) -> None:
    shot = _screenshot_path(tmp_path)
    shot.parent.mkdir(parents=True, exist_ok=True)

    def mid_speech(page: Any) -> None:
        # a moment when the voice is heard and the mouth is open (its region changed a lot from the face at rest)
        page.wait_for_function(
            "window.omnirtMetrics.last.text_to_audio_ms !== null && window.omnirtMetrics.mouth_change_now > 100",
            timeout=3_000,
        )
        page.screenshot(path=str(shot))

    first = browser.speak("Hello!")  # opens the session; the voice and the avatar warm up
    assert first["text_to_audio_ms"] is not None, browser.metrics()["errors"]
    utterance = browser.speak(SENTENCE, during=mid_speech)
    metrics = browser.metrics()
    assert metrics["transport"] == "webrtc", browser.console[-10:]
    assert not utterance["failed"], metrics["errors"]
    assert metrics["session_id"].startswith("avt_")
    # the voice arrived and was audible; the face arrived as a video stream
    assert metrics["audio_bytes_received"] > 10_000
    assert utterance["text_to_audio_ms"] is not None and utterance["text_to_audio_ms"] > 0
    assert metrics["frames_decoded"] >= 50
    # the mouth region changed while the voice spoke, beyond what the idle face (blinks, sway) does
    assert utterance["text_to_mouth_ms"] is not None
    assert utterance["mouth_change_speaking"] > max(3.0, 1.5 * utterance["mouth_change_idle"])
    # the server's data-channel events reached the page
    assert utterance["server_first_audio_ms"] is not None and utterance["server_first_frame_ms"] is not None
    assert metrics["chunk_latency_ms"], "no per-chunk metrics event"
    tiles = {name: browser.page.inner_text(f"#m-{name}") for name in ("audio", "mouth", "ttff", "chunk")}
    assert all(value.endswith(" ms") for value in tiles.values()), tiles
    assert shot.is_file() and shot.stat().st_size > 20_000


def test_talk_over_the_websocket_fallback(browser: PlaygroundBrowser) -> None:
    browser.page.check("#talk-force-ws")
    utterance = browser.speak("This sentence comes over the WebSocket protocol instead.")
    metrics = browser.metrics()
    assert metrics["transport"] == "websocket"
    assert not utterance["failed"], metrics["errors"]
    assert utterance["text_to_audio_ms"] is not None
    assert utterance["server_first_frame_ms"] is not None  # the first VIDX frame of the sentence, in the browser
    assert metrics["frames_presented"] >= 25
    assert utterance["text_to_mouth_ms"] is not None
    assert metrics["chunk_latency_ms"]


def test_an_image_job_with_live_progress(browser: PlaygroundBrowser) -> None:
    page = browser.page
    page.click("#tab-btn-generate")
    page.select_option("#gen-task", "text2image")
    page.select_option("#gen-model", "sd15")
    page.fill("#gen-prompt", "a lighthouse at dusk")
    page.fill("#gen-steps", "6")
    page.evaluate(
        """() => {
          window.progressSeen = [];
          const bar = document.querySelector("#gen-progress");
          new MutationObserver(() => window.progressSeen.push(Number(bar.getAttribute("aria-valuenow"))))
            .observe(bar, {attributes: true, attributeFilter: ["aria-valuenow"]});
        }"""
    )
    page.click("#gen-submit")
    page.wait_for_selector("#gen-result", timeout=180_000)
    seen = page.evaluate("window.progressSeen")
    assert seen[-1] == 100
    assert any(0 < value < 100 for value in seen), seen  # it moved step by step, from the SSE progress events
    assert page.get_attribute("#gen-progress", "aria-valuenow") == "100"
    assert page.inner_text("#gen-job-state").lower() == "succeeded"
    assert page.evaluate("document.querySelector('#gen-result').naturalWidth") > 0  # the artifact, fetched
    page.wait_for_selector("#jobs-body tr[data-job] .state.succeeded")


def test_the_fleet_tab(browser: PlaygroundBrowser) -> None:
    from omnirt.avatars import names

    page = browser.page
    page.click("#tab-btn-fleet")
    worker = page.wait_for_selector("#workers .worker")
    assert "omnirt.core.cpu" in worker.inner_text()
    row = page.wait_for_selector(f'#models-body tr[data-model="{names.REFERENCE}"]')
    assert "connected" in row.inner_text() and "core" in row.inner_text()
    assert page.query_selector('#models-body tr[data-model="sd15"]') is not None


def test_with_api_keys_the_page_asks_for_the_key_then_works(service_dirs: dict[str, Path], tmp_path: Path) -> None:
    from omnirt.settings import Settings

    key = "browser-test-key"
    settings = replace(Settings.from_env(), redis_url=None, artifact_dir=tmp_path / "artifacts", api_keys=(key,))
    keyed = EmbeddedServer(settings)
    opened = PlaygroundBrowser()
    try:
        page = opened.page
        answer = page.goto(f"{keyed.url}/")
        assert answer is not None and answer.status == 401
        page.fill("#key", "a-wrong-key")
        page.click("button[type=submit]")
        page.wait_for_selector("text=was not accepted")
        page.fill("#key", key)
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-ready=true]", state="attached", timeout=60_000)
        assert page.url.startswith(f"{keyed.url}/playground")
        # the page's API calls carry the key (Authorization: Bearer): the lists loaded, nothing was refused
        assert page.eval_on_selector_all("#talk-model option", "options => options.length") > 0
        page.click("#tab-btn-fleet")
        page.wait_for_selector("#workers .worker")
        assert opened.metrics()["errors"] == []
        cookie = next(item for item in page.context.cookies() if item["name"] == "omnirt_api_key")
        assert cookie["path"] == "/playground" and cookie["sameSite"] == "Strict"
    finally:
        opened.close()
        keyed.stop()


def test_a_bad_upload_is_explained(browser: PlaygroundBrowser, sample_image: Path) -> None:
    page = browser.page
    page.set_input_files("#talk-upload", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    page.wait_for_selector("#banner:not([hidden])")
    assert page.inner_text("#banner-code") == "bad_image"
    assert "picture" in page.inner_text("#banner-hint")
    page.click("#banner-close")
    page.set_input_files("#talk-upload", str(sample_image))  # a gradient: a real picture with no face in it
    page.wait_for_selector("#banner:not([hidden])")
    assert page.inner_text("#banner-code") == "no_face_detected"
    assert page.inner_text("#talk-upload-status") == "Upload refused."
