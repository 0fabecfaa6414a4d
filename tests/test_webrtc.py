"""WebRTC delivery of the realtime avatar (``POST /v1/avatar/webrtc``), driven by a Python aiortc client as a browser
would: an offer with the ``omnirt`` data channel and recvonly video and audio, then ``speak`` on the channel.

Embedded (the API on a real port) and in a fleet whose front end is gunicorn with gevent workers, as ``omnirt serve``
runs it, beside real Celery workers: the voice is heard, the frames arrive and the mouth moves while it speaks; bad
input gets coded errors; a client that vanishes frees its session within the idle timeout.

Run as ``python -m tests.test_webrtc URL`` this module is the vanishing client: it connects, prints its session id,
and waits to be killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import requests

ROUTE = "/v1/avatar/webrtc"
SMALL = {"width": 256, "height": 384}  # the session size of the cheaper tests
SENTENCE = "Hello! I am speaking to you over WebRTC, and my mouth moves with my voice."
AUDIBLE_RMS = 300.0  # int16 RMS of a 20 ms audio frame that carries speech


@dataclass
class Client:
    """An aiortc peer as a browser makes it: the ``omnirt`` channel and recvonly video and audio, every frame kept
    with its arrival time."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    video: list[tuple[float, Any]] = field(default_factory=list)
    audio: list[tuple[float, float]] = field(default_factory=list)  # (arrival, RMS)
    answer: dict[str, Any] = field(default_factory=dict)

    async def connect(self, **body: Any) -> Client:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel = self.pc.createDataChannel("omnirt")
        self.channel.on("message", lambda message: self.events.append((time.monotonic(), json.loads(message))))
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.readers: list[asyncio.Task] = []
        self.pc.on("track", lambda track: self.readers.append(asyncio.ensure_future(self._read(track))))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(
            None,
            lambda: requests.post(
                self.url + ROUTE, json={"sdp": self.pc.localDescription.sdp, **body}, headers=self.headers, timeout=90
            ),
        )
        assert response.status_code == 200, response.text
        self.answer = response.json()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=self.answer["sdp"], type="answer"))
        return self

    async def _read(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                self.video.append((time.monotonic(), frame.to_ndarray(format="rgb24")))
            else:
                samples = frame.to_ndarray().astype(np.float64)
                self.audio.append((time.monotonic(), float(np.sqrt(np.mean(samples**2)))))

    def send(self, payload: Any) -> None:
        self.channel.send(payload if isinstance(payload, str) else json.dumps(payload))

    async def event(self, kind: str, timeout: float = 60.0, **match: Any) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, event in self.events:
                if event.get("type") == kind and all(event.get(key) == value for key, value in match.items()):
                    return at, event
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {kind} event {match or ''} within {timeout}s; got {[e for _, e in self.events]}")

    async def keep_alive(self, every_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            if self.channel.readyState == "open":
                self.send({"type": "ping"})

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        await self.pc.close()


async def _next_started(client: Client, after: str) -> tuple[float, str]:
    """The id of the first utterance started after ``after``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ids = [event["utterance_id"] for _, event in client.events if event["type"] == "speech.started"]
        if after in ids and ids[-1] != after:
            return 0.0, ids[ids.index(after) + 1]
        await asyncio.sleep(0.02)
    raise AssertionError("no second speech.started")


def mouth_region(frame: Any, mouth_box: list[int] | None) -> tuple[int, int, int, int]:
    """The session's mouth box, else the lower middle of the face OpenCV finds (else of the frame)."""
    if mouth_box:
        return tuple(mouth_box)  # type: ignore[return-value]
    import cv2

    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5)
    if len(faces):
        x, y, w, h = max(faces, key=lambda face: face[2] * face[3])
    else:
        h, w = frame.shape[0] // 2, frame.shape[1] // 2
        x, y = frame.shape[1] // 4, frame.shape[0] // 4
    return int(x + w // 4), int(y + h * 0.62), int(w // 2), int(h * 0.33)


def mouth_motion(
    client: Client, box: tuple[int, int, int, int], spoke: float, since: float, until: float
) -> list[float]:
    """Per frame arriving in [since, until]: how far its mouth region is from the idle mouth (the median of the
    frames before the speak), mean absolute difference of grey levels."""
    x, y, w, h = box

    def crop(frame: Any) -> Any:
        return frame[y : y + h, x : x + w].astype(np.float32).mean(axis=2)

    idle = [crop(frame) for at, frame in client.video if at < spoke]
    reference = np.median(np.stack(idle), axis=0)
    return [float(np.abs(crop(frame) - reference).mean()) for at, frame in client.video if since <= at <= until]


def audible(client: Client, since: float) -> tuple[float, float]:
    """Arrival times of the first and last audible audio frames after ``since``."""
    times = [at for at, rms in client.audio if at >= since and rms > AUDIBLE_RMS]
    assert times, f"no audible audio after the speak (max RMS {max((rms for _, rms in client.audio), default=0):.0f})"
    return times[0], times[-1]


async def talk(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Connect, idle, speak a sentence, and check what a user relies on; returns the measured latencies."""
    client = await Client(url, headers or {}).connect()
    alive = asyncio.ensure_future(client.keep_alive())
    try:
        session_id = client.answer["session_id"]
        assert client.answer["type"] == "answer" and "a=fingerprint" in client.answer["sdp"]
        _, created = await client.event("session.created", timeout=30)
        assert created["session_id"] == session_id
        assert created["video"] == {"fps": 25, "width": 416, "height": 704}
        assert created["audio"] == {"sample_rate": 48000} and "mouth_box" in created
        deadline = time.monotonic() + 30
        while len(client.video) < 25 and time.monotonic() < deadline:  # a second of the idle face first
            await asyncio.sleep(0.05)
        assert len(client.video) >= 25, "the idle face does not stream"
        assert client.video[-1][1].shape == (704, 416, 3)
        spoke = time.monotonic()
        client.send({"type": "speak", "text": SENTENCE})
        _, started = await client.event("speech.started")
        utterance = started["utterance_id"]
        assert started["text"] == SENTENCE
        _, first_audio = await client.event("speech.first_audio", timeout=90, utterance_id=utterance)
        _, first_frame = await client.event("speech.first_frame", timeout=30, utterance_id=utterance)
        ended_at, _ = await client.event("speech.ended", timeout=90, utterance_id=utterance)
        await asyncio.sleep(0.6)  # the tail of the speech reaches the client
        assert 0 < first_audio["ms"] <= first_frame["ms"]
        metrics = [event for _, event in client.events if event["type"] == "metrics"]
        assert metrics and {"chunk_index", "infer_ms", "encode_ms", "latency_ms"} <= set(metrics[-1])

        voice_from, voice_to = audible(client, spoke)
        assert voice_to - voice_from > 1.5, "the sentence is heard for less than 1.5 s"
        during = [frame for at, frame in client.video if voice_from <= at <= voice_to]
        assert len(client.video) >= 50 and len(during) >= 25
        box = mouth_region(client.video[0][1], created["mouth_box"])
        speaking = mouth_motion(client, box, spoke, voice_from, voice_to)
        still = mouth_motion(client, box, spoke, 0, spoke)
        moved, rest = float(np.percentile(speaking, 90)), float(np.percentile(still, 90))
        assert moved > max(3.0, 2.5 * rest), (moved, rest)

        client.send({"type": "speak", "text": "This sentence is long, so that there is time to stop it: " * 3})
        _, second = await _next_started(client, utterance)
        await client.event("speech.first_frame", timeout=90, utterance_id=second)
        cancelled_at = time.monotonic()
        client.send({"type": "cancel"})
        _, stopped = await client.event("speech.ended", utterance_id=second)
        assert stopped.get("cancelled") is True
        await asyncio.sleep(1.5)
        still_heard = [at for at, rms in client.audio if at > cancelled_at + 0.8 and rms > AUDIBLE_RMS]
        assert not still_heard, "the voice goes on after cancel"

        client.send("this is not JSON")
        await client.event("error", code="bad_json")
        client.send({"type": "dance"})
        await client.event("error", code="unsupported_message")
        client.send({"type": "speak", "text": "  "})
        await client.event("error", code="bad_message")
        client.send({"type": "ping"})
        await client.event("pong")
        return {
            "session_id": session_id,
            "first_audio_ms": first_audio["ms"],
            "first_frame_ms": first_frame["ms"],
            "heard_ms": round((voice_from - spoke) * 1000),
            "ended_after_s": round(ended_at - spoke, 2),
            "mouth": (round(moved, 1), round(rest, 1)),
        }
    finally:
        alive.cancel()
        client.send({"type": "close"})
        await asyncio.sleep(0.2)
        await client.close()


def offer_sdp(*, channel: bool = True, media: bool = True) -> str:
    """A real aiortc offer (optionally without the data channel or without media)."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    async def make() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if channel:
            pc.createDataChannel("omnirt")
        if media:
            pc.addTransceiver("video", direction="recvonly")
            pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    return asyncio.run(make())


def wait_for(predicate: Any, timeout: float, interval: float = 0.1) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - started


def embedded_server(service_env: dict[str, str], service_dirs: dict[str, Path], **overrides: Any) -> Any:
    from tests.conftest import service_settings
    from tests.support.servers import ApiServer

    return ApiServer(service_settings(None, service_dirs, **overrides))


def freed(server: Any) -> bool:
    """No WebRTC peer (connection closed), no media pump or speech thread, no session channel, no session on the
    embedded worker."""
    import threading

    from omnirt.api.webrtc import EXTENSION
    from omnirt.workers.sessions import get_session_host

    service = server.app.extensions.get(EXTENSION)
    return (
        (service is None or not service.peers)
        and not any(thread.name.startswith("omnirt-webrtc-") for thread in threading.enumerate())
        and not server.backplane.sessions.open_sessions()
        and not get_session_host().active
    )


def test_talking_avatar_over_webrtc_embedded(service_env: dict[str, str], service_dirs: dict[str, Path]) -> None:
    server = embedded_server(service_env, service_dirs)
    try:
        measured = asyncio.run(talk(server.url))
        print("webrtc embedded:", measured)
        wait_for(lambda: freed(server), timeout=10)
        spec = requests.get(server.url + "/openapi.json", timeout=30).json()
        operation = spec["paths"][ROUTE]["post"]
        assert "WebRtcOffer" in json.dumps(operation["requestBody"]) and {"200", "400", "503"} <= set(
            operation["responses"]
        )
    finally:
        server.stop()


def test_bad_offers_and_keys(service_env: dict[str, str], service_dirs: dict[str, Path]) -> None:
    server = embedded_server(service_env, service_dirs, api_keys=("secret-key",))
    auth = {"Authorization": "Bearer secret-key"}
    try:
        sdp = offer_sdp()

        def post(body: Any, headers: dict[str, str] | None = auth) -> requests.Response:
            return requests.post(server.url + ROUTE, json=body, headers=headers, timeout=30)

        missing_key = post({"sdp": sdp}, headers=None)
        assert missing_key.status_code == 401 and missing_key.json()["error"]["code"] == "unauthorized"
        cases = [
            ({"sdp": "hello, I am not SDP"}, 400, "invalid_sdp"),
            ({"sdp": ""}, 400, "invalid_sdp"),
            ({"sdp": 42}, 400, "invalid_sdp"),
            ({}, 400, "invalid_sdp"),
            ({"sdp": sdp, "type": "answer"}, 400, "invalid_sdp"),
            ({"sdp": offer_sdp(channel=False)}, 400, "invalid_sdp"),
            ({"sdp": offer_sdp(media=False)}, 400, "invalid_sdp"),
            ({"sdp": sdp.replace("a=fingerprint", "a=fingerprint-gone")}, 400, "invalid_sdp"),
            ({"sdp": sdp.replace("a=ice-pwd", "a=ice-password")}, 400, "invalid_sdp"),
            ({"sdp": sdp, "width": 415}, 400, "bad_config"),
            ({"sdp": sdp, "fps": "fast"}, 400, "bad_config"),
            ({"sdp": sdp, "model": "no-such-avatar"}, 404, "unknown_model"),
            ({"sdp": sdp, "avatar_id": "av_missing"}, 404, "avatar_not_found"),
            ({"sdp": sdp, "tts_model": "no-such-voice"}, 404, "unknown_model"),
        ]
        for body, status, code in cases:
            started = time.monotonic()
            response = post(body)
            assert (response.status_code, response.json()["error"]["code"]) == (status, code), (body, response.text)
            assert time.monotonic() - started < 5
        garbage = requests.post(server.url + ROUTE, data=b"\xff\x00", headers=auth, timeout=30)
        assert garbage.status_code == 400
        measured = asyncio.run(connect_and_close(server.url, auth))
        assert measured.startswith("avt_")
        wait_for(lambda: freed(server), timeout=10)
    finally:
        server.stop()


async def connect_and_close(url: str, headers: dict[str, str]) -> str:
    client = await Client(url, headers).connect(**SMALL)
    await client.event("session.created", timeout=30)
    client.send({"type": "close"})
    await asyncio.sleep(0.2)
    await client.close()
    return client.answer["session_id"]


def test_vanished_client_is_freed_within_the_idle_timeout(
    service_env: dict[str, str], service_dirs: dict[str, Path]
) -> None:
    server = embedded_server(service_env, service_dirs, session_idle_s=2.0, webrtc_max_peers=1)
    repo = Path(__file__).resolve().parents[1]
    client = subprocess.Popen(
        [sys.executable, "-m", "tests.test_webrtc", server.url],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
    )
    try:
        line = client.stdout.readline() if client.stdout else ""
        assert line.startswith("avt_"), line
        assert not freed(server)
        busy = requests.post(server.url + ROUTE, json={"sdp": offer_sdp(), **SMALL}, timeout=30)
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "no_capacity"
        os.killpg(client.pid, signal.SIGKILL)  # no close, no goodbye: the process is gone
        client.wait(timeout=10)
        took = wait_for(lambda: freed(server), timeout=2.0 + 4.0)
        print(f"vanished client freed after {took:.1f} s")
        assert asyncio.run(connect_and_close(server.url, {})).startswith("avt_")  # the slot is free again
        wait_for(lambda: freed(server), timeout=10)
    finally:
        if client.poll() is None:
            os.killpg(client.pid, signal.SIGKILL)
            client.wait(timeout=10)
        server.stop()


# -- the fleet: gunicorn with gevent workers (as `omnirt serve` runs it) in front of real Celery workers --------------


def test_talking_avatar_over_webrtc_through_a_gevent_front_end(
    fleet_redis: Any, fleet_worker: Any, service_env: dict[str, str], service_dirs: dict[str, Path]
) -> None:
    from omnirt.backplane import Backplane
    from tests.conftest import service_settings
    from tests.support.servers import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **service_env, "OMNIRT_REDIS_URL": fleet_redis.url, "OMNIRT_FRONTEND_WORKER_CLASS": "gevent"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (service_dirs["logs"] / "webrtc-frontend.log").open("w")
    front = subprocess.Popen(
        [sys.executable, "-m", "omnirt.cli", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _up(url), timeout=60)
        measured = asyncio.run(talk(url))
        print("webrtc fleet (gevent front end):", measured)
        plane = Backplane(service_settings(fleet_redis.url, service_dirs))
        wait_for(lambda: (plane.sessions.record(measured["session_id"]) or {}).get("state") == "closed", timeout=10)
    finally:
        os.killpg(front.pid, signal.SIGTERM)
        front.wait(timeout=30)
        log.close()


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:  # not listening yet, or still loading the app
        return False


async def _vanishing_client(url: str) -> None:
    client = await Client(url).connect(**SMALL)
    await client.event("session.created", timeout=30)
    print(client.answer["session_id"], flush=True)
    await client.keep_alive(every_s=0.5)  # alive until killed


if __name__ == "__main__":
    asyncio.run(_vanishing_client(sys.argv[1]))
