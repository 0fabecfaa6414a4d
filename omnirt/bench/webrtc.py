"""``omnirt bench webrtc``: what a person at the playground waits for, measured in a real browser over WebRTC.

It starts an embedded server in this process, opens the playground (``/playground``) in headless Chromium (Debian's
``chromium``, driven through playwright's Python package with the system browser: nothing is downloaded), and speaks
N sentences through the Talk tab, one after another, on one session. For each, the page itself measures
(``window.omnirtMetrics``, see ``omnirt/api/static/playground/app.js``):

- **text -> first audible audio**: Speak pressed until an AnalyserNode on the voice the browser plays reads an RMS
  above -40 dBFS;
- **text -> first visible mouth movement**: Speak pressed until a displayed video frame's mouth region
  (``mouth_box``) differs from the frame shown at Speak by more than the idle avatar's own motion over the same time;

and the server's data-channel events give its side (``speech.first_audio``, ``speech.first_frame``, per-chunk
latency). The first sentence opens the session and warms the models; it is reported apart and not counted.

:class:`EmbeddedServer` and :class:`PlaygroundBrowser` are shared with ``tests/test_playground_browser.py``.
"""

from __future__ import annotations

import importlib.util
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from omnirt.bench.dispatch import percentile

CHROMIUM_FLAGS = (
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",  # host ICE candidates as plain IPs, which aiortc can reach
)
PLAYGROUND_MODELS = ("hibari-tts", "photoreal-avatar")  # the Makefile's PLAYGROUND_MODELS
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
VIEWPORT = {"width": 1440, "height": 900}
SENTENCES = (
    "Hello, and welcome to the playground.",
    "I can read any sentence you type, in a natural voice.",
    "My face moves with the words as I say them.",
    "Everything you see runs on this computer's processor.",
    "Ask me something else and I will answer right away.",
    "The weather today is bright, with a gentle breeze.",
    "Realtime avatars need low latency from text to speech.",
    "Thank you for trying this out, and see you soon.",
)


class BenchUnavailable(RuntimeError):
    """What the benchmark (or the browser test) needs is missing: the message says what and how to get it."""


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium binary: ``explicit``, else ``chromium`` on PATH, else Debian's path; :class:`BenchUnavailable`
    when there is none."""
    if explicit:
        if not Path(explicit).is_file():
            raise BenchUnavailable(f"No Chromium at {explicit}.")
        return explicit
    found = shutil.which("chromium") or next((path for path in CHROMIUM_PATHS if Path(path).is_file()), None)
    if found is None:
        raise BenchUnavailable(
            "Chromium is not installed: `apt-get install -y chromium` (Debian's package; .ci/run installs it)."
        )
    return found


def require_playwright() -> None:
    if importlib.util.find_spec("playwright") is None:
        raise BenchUnavailable(
            "playwright is not installed: `pip install -r requirements-dev.txt` (it drives the system Chromium; "
            "no browser download is needed)."
        )


class EmbeddedServer:
    """The Flask app with its in-process workers on a real localhost port, served by threads of this process."""

    def __init__(self, settings: Any) -> None:
        from werkzeug.serving import WSGIRequestHandler, make_server

        from omnirt.api import create_app

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: Any) -> None:  # the page's polling would fill the output
                pass

        self.app = create_app(settings)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=QuietHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="playground-server", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.app.extensions["omnirt"].close()


class PlaygroundBrowser:
    """Headless Chromium on the playground page, driven as a person would (fill, click), read through
    ``window.omnirtMetrics``."""

    def __init__(self, chromium: str | None = None) -> None:
        require_playwright()
        executable = find_chromium(chromium)
        from playwright.sync_api import sync_playwright

        self.playwright = sync_playwright().start()
        try:
            self.browser = self.playwright.chromium.launch(
                executable_path=executable, headless=True, args=list(CHROMIUM_FLAGS)
            )
        except Exception:
            self.playwright.stop()
            raise
        self.page = self.browser.new_page(viewport=VIEWPORT)
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        self.page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def open(self, url: str, *, timeout_s: float = 60.0) -> None:
        """Open the playground and wait until its lists (voices, avatar models, avatars, models) are loaded."""
        self.page.goto(f"{url}/playground")
        self.page.wait_for_selector("body[data-ready=true]", state="attached", timeout=timeout_s * 1000)

    def metrics(self) -> dict[str, Any]:
        return self.page.evaluate("window.omnirtMetrics")

    def speak(self, text: str, *, timeout_s: float = 120.0, during: Any = None) -> dict[str, Any]:
        """Type ``text``, press Speak, wait until the utterance ends; returns the page's measurement of it.
        ``during(page)`` runs once the mouth has moved (a screenshot mid-speech)."""
        page = self.page
        done = len(self.metrics()["utterances"])
        errors = len(self.metrics()["errors"])
        page.fill("#talk-text", text)
        page.click("#talk-speak")
        deadline = time.monotonic() + timeout_s
        ran_during = during is None
        while time.monotonic() < deadline:
            metrics = self.metrics()
            if len(metrics["errors"]) > errors:
                raise RuntimeError(f"the page reported an error: {metrics['errors'][-1]}")
            last = metrics.get("last") or {}
            if not ran_during and last.get("text") == text and last.get("text_to_mouth_ms") is not None:
                during(page)
                ran_during = True
            if len(metrics["utterances"]) > done:
                return metrics["utterances"][-1]
            time.sleep(0.05)
        raise TimeoutError(f"the utterance did not end within {timeout_s:g} s; console: {self.console[-10:]}")

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self.playwright.stop()


def _summary(values: list[float | None]) -> dict[str, Any]:
    measured = [value for value in values if value is not None]
    if not measured:
        return {"p50_ms": None, "p90_ms": None, "n": 0, "missed": len(values)}
    return {
        "p50_ms": round(percentile(measured, 0.5), 1),
        "p90_ms": round(percentile(measured, 0.9), 1),
        "min_ms": round(min(measured), 1),
        "max_ms": round(max(measured), 1),
        "n": len(measured),
        "missed": len(values) - len(measured),
    }


def run(
    sentences: int = 10,
    *,
    model: str | None = None,
    tts_model: str | None = None,
    chromium: str | None = None,
) -> dict[str, Any]:
    """Speak ``sentences`` sentences (after one warm-up) and report p50/p90 of the page's measurements."""
    import tempfile
    from dataclasses import replace

    from omnirt.settings import Settings

    require_playwright()
    find_chromium(chromium)
    root = Path(tempfile.mkdtemp(prefix="omnirt-bench-webrtc-"))
    settings = replace(Settings.from_env(), redis_url=None, artifact_dir=root / "outputs")
    if not settings.preload:  # as `make run` does: the voice and the avatar warm before the first Speak
        settings = replace(settings, preload=PLAYGROUND_MODELS)
    server = EmbeddedServer(settings)
    browser = None
    try:
        browser = PlaygroundBrowser(chromium)
        browser.open(server.url)
        page = browser.page
        if model:
            page.select_option("#talk-model", model)
        if tts_model:
            page.select_option("#talk-voice", tts_model)
        opened = time.perf_counter()
        warm = browser.speak("Warming up.")
        warm_s = time.perf_counter() - opened
        metrics = browser.metrics()
        if metrics["transport"] != "webrtc":
            raise BenchUnavailable(
                f"The playground fell back to {metrics['transport']}: WebRTC did not connect "
                f"(console: {browser.console[-5:]})."
            )
        utterances = [browser.speak(SENTENCES[index % len(SENTENCES)]) for index in range(sentences)]
        metrics = browser.metrics()
    finally:
        if browser is not None:
            browser.close()
        server.stop()
    return {
        "transport": metrics["transport"],
        "model": metrics["model"],
        "mouth_box": metrics["mouth_box"],
        "sentences": sentences,
        "text_to_first_audible_audio": _summary([item["text_to_audio_ms"] for item in utterances]),
        "text_to_first_mouth_movement": _summary([item["text_to_mouth_ms"] for item in utterances]),
        "server_text_to_first_audio": _summary([item["server_first_audio_ms"] for item in utterances]),
        "server_text_to_first_frame": _summary([item["server_first_frame_ms"] for item in utterances]),
        "chunk_latency": _summary(metrics["chunk_latency_ms"]),
        "frames_decoded": metrics["frames_decoded"],
        "per_sentence": [
            {
                key: (round(item[key], 1) if isinstance(item[key], float) else item[key])
                for key in (
                    "text_to_audio_ms",
                    "text_to_mouth_ms",
                    "server_first_audio_ms",
                    "server_first_frame_ms",
                    "mouth_change_speaking",
                    "mouth_change_idle",
                )
            }
            for item in utterances
        ],
        "warm_up": {
            "wall_s": round(warm_s, 2),
            "text_to_audio_ms": warm["text_to_audio_ms"],
            "text_to_mouth_ms": warm["text_to_mouth_ms"],
        },
        "browser": "headless Chromium (system), playwright",
    }
