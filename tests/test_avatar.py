"""Realtime avatar sessions: an OpenTalking-like client on the FlashTalk protocol and a native-protocol client,
embedded and on the fleet; concurrency, admission control, idle timeout, a worker killed mid-session, discovery,
and audio2video batch jobs."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from simple_websocket import Client, ConnectionClosed

from omnirt.models.avatar import unpack_vidx
from tests.conftest import service_settings
from tests.support.servers import ApiServer, RedisServer, Worker

CHUNK = 17920  # 28 frames at 25 fps, 16 kHz: what OpenTalking sends
OPENTALKING_PROMPT = "A person is talking. Only the foreground characters are moving, the background remains static."


def loud_chunk(samples: int = CHUNK) -> bytes:
    t = np.arange(samples) / 16000
    return (np.sin(2 * np.pi * 180 * t) * 14000).astype("<i2").tobytes()


def silent_chunk(samples: int = CHUNK) -> bytes:
    return bytes(samples * 2)


def decode_frames(message: bytes) -> list[Any]:
    import cv2

    return [cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) for jpeg in unpack_vidx(message)]


class OpenTalkingClient:
    """Behaves as OpenTalking's FlashTalk client: init with its fields, then per chunk send AUDI and read exactly
    one message (text is an error, binary must be VIDX), decoding the JPEGs to BGR with cv2."""

    def __init__(self, url: str, **init: Any) -> None:
        self.ws = Client.connect(url, max_message_size=50 * 2**20)
        self.ws.send(json.dumps({"type": "init", "prompt": OPENTALKING_PROMPT, "seed": 9999, **init}))
        reply = json.loads(self.ws.receive(timeout=60))
        if reply["type"] != "init_ok":
            raise RuntimeError(reply)
        self.init_ok = reply

    def chunk(self, pcm: bytes) -> list[Any]:
        self.ws.send(b"AUDI" + pcm)
        message = self.ws.receive(timeout=60)
        if isinstance(message, str):
            raise RuntimeError(message)
        return decode_frames(message)

    def close(self) -> None:
        if self.ws.connected:
            self.ws.send(json.dumps({"type": "close"}))
            assert json.loads(self.ws.receive(timeout=30))["type"] == "close_ok"
            self.ws.close()


def mouth_open(frames: list[Any], box: tuple[int, int, int, int]) -> float:
    """How open the mouth is in the last frame: the share of the mouth box that is the dark inside of a mouth."""
    x, y, w, h = box
    region = frames[-1][y : y + h, x : x + w].astype(float).mean(axis=2)
    return float((region < 70).mean())


def mouth_box(spec_width: int, spec_height: int) -> tuple[int, int, int, int]:
    """Where the default avatar's mouth moves in a session of that size (what session.created reports)."""
    from omnirt.avatars.media import SessionSpec
    from omnirt.avatars.photoreal import PhotorealSession
    from omnirt.avatars.store import default_portrait

    spec = SessionSpec(model="photoreal-avatar", width=spec_width, height=spec_height)
    return tuple(PhotorealSession(spec, default_portrait()).mouth_box())


def ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://") + path


def test_opentalking_client_gets_one_vidx_per_chunk_with_a_moving_mouth(service) -> None:
    import cv2
    from skimage import data

    portrait = cv2.imencode(".png", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))[1].tobytes()
    client = OpenTalkingClient(
        ws_url(service.url, "/v1/audio2video/photoreal-avatar"), ref_image=base64.b64encode(portrait).decode()
    )
    ok = client.init_ok
    assert {"frame_num", "motion_frames_num", "slice_len", "fps", "height", "width"} <= set(ok)
    assert (ok["slice_len"], ok["fps"], ok["width"], ok["height"], ok["chunk_samples"]) == (28, 25, 416, 704, CHUNK)
    assert ok["backing_model"] == "photoreal-avatar"
    quiet = client.chunk(silent_chunk())
    loud = client.chunk(loud_chunk())
    quiet_again = client.chunk(silent_chunk())
    quiet_again = client.chunk(silent_chunk())
    for frames in (quiet, loud, quiet_again):
        assert len(frames) == 28 and all(frame.shape == (704, 416, 3) for frame in frames)
    box = mouth_box(416, 704)
    assert mouth_open(loud, box) > 0.1  # open while the voice is loud
    assert mouth_open(quiet, box) < 0.02 and mouth_open(quiet_again, box) < 0.02  # shut in silence
    assert float(np.std(loud[-1])) > 20  # a photograph, not a flat colour
    client.ws.send(b"AUDI" + b"\x00" * 100)
    error = json.loads(client.ws.receive(timeout=30))
    assert error["type"] == "error" and error["code"] == "bad_chunk"
    client.ws.send(json.dumps({"type": "config_update", "config": {"mouth_open_multiplier": 1.3}}))
    assert json.loads(client.ws.receive(timeout=30)) == {"type": "config_ok", "updated": {"mouth_open_multiplier": 1.3}}
    client.close()


def test_flashtalk_protocol_errors_and_root_route(service) -> None:
    ws = Client.connect(ws_url(service.url, "/"))
    ws.send(b"AUDI" + silent_chunk())
    assert json.loads(ws.receive(timeout=30)) == {"type": "error", "message": "No active session. Send 'init' first."}
    ws.send("not json")
    assert json.loads(ws.receive(timeout=30))["message"] == "Invalid JSON"
    ws.send(json.dumps({"type": "init"}))  # the root is FlashTalk's, and no FlashTalk server is configured
    assert json.loads(ws.receive(timeout=30))["code"] == "model_unavailable"
    ws.close()
    ws = Client.connect(ws_url(service.url, "/v1/audio2video/photoreal-avatar"))
    ws.send(json.dumps({"type": "init", "width": 333}))
    assert json.loads(ws.receive(timeout=30))["code"] == "bad_config"
    ws.send(json.dumps({"type": "init", "ref_image": "%%%"}))
    assert json.loads(ws.receive(timeout=30))["code"] == "bad_image"
    ws.close()


def test_native_protocol_session(service) -> None:
    ws = Client.connect(ws_url(service.url, "/v1/avatar/realtime"))
    ws.send(json.dumps({"type": "ping"}))
    assert json.loads(ws.receive(timeout=30)) == {"type": "pong"}
    ws.send(b"AUDI" + silent_chunk(5120))
    assert json.loads(ws.receive(timeout=30))["code"] == "session_required"
    ws.send(
        json.dumps(
            {
                "type": "session.create",
                "model": "photoreal-avatar",
                "inputs": {"prompt": "hi"},
                "config": {"width": 256, "height": 320, "fps": 25, "slice_len": 8},
            }
        )
    )
    created = json.loads(ws.receive(timeout=60))
    assert created["type"] == "session.created" and created["session_id"].startswith("avt_")
    assert created["audio"] == {"format": "pcm_s16le", "sample_rate": 16000, "channels": 1, "chunk_samples": 5120}
    for index in range(3):
        ws.send(b"AUDI" + loud_chunk(5120))
        metrics = json.loads(ws.receive(timeout=30))
        assert metrics["type"] == "metrics" and metrics["chunk_index"] == index
        assert metrics["session_id"] == created["session_id"] and metrics["infer_ms"] >= 0
        assert ("ttff_ms" in metrics) == (index == 0)
        frames = decode_frames(ws.receive(timeout=30))
        assert len(frames) == 8 and frames[0].shape == (320, 256, 3)
    ws.send(json.dumps({"type": "session.cancel"}))
    assert json.loads(ws.receive(timeout=30))["type"] == "session.cancelled"
    ws.send(b"AUDI" + loud_chunk(5120))
    assert json.loads(ws.receive(timeout=30))["code"] == "session_cancelled"
    ws.send(json.dumps({"type": "session.close"}))
    assert json.loads(ws.receive(timeout=30)) == {"type": "session.closed", "session_id": created["session_id"]}
    ws.send(json.dumps({"type": "dance"}))
    assert json.loads(ws.receive(timeout=30))["code"] == "unsupported_message"
    ws.close()


def test_two_sessions_at_once(service) -> None:
    results: dict[int, list[int]] = {}

    def session(index: int) -> None:
        client = OpenTalkingClient(
            ws_url(service.url, "/v1/audio2video/photoreal-avatar"), width=256, height=256, slice_len=8
        )
        results[index] = [len(client.chunk(loud_chunk(5120))) for _ in range(4)]
        client.close()

    threads = [threading.Thread(target=session, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == {0: [8, 8, 8, 8], 1: [8, 8, 8, 8]}


def test_discovery_is_honest_and_stand_ins_are_explicit(service, tmp_path) -> None:
    """No weights, no upstream: the lip-sync names are not connected, and init is refused; the photoreal avatar
    answers its own name, and another name only through the operator's alias map, which discovery shows."""
    models = requests.get(f"{service.url}/v1/audio2video/models", timeout=10).json()
    assert "photoreal-avatar" in models["models"]
    assert not {"flashtalk", "wav2lip", "quicktalk", "musetalk", "fasterliveportrait"} & set(models["models"])
    statuses = {status["id"]: status for status in models["statuses"]}
    assert statuses["wav2lip"] == {
        "id": "wav2lip",
        "model": "wav2lip",
        "connected": False,
        "alias": False,
        "reason": "weights_not_found",
    }
    assert statuses["musetalk"]["model"] == "musetalk-1.5" and statuses["musetalk"]["reason"] == "weights_not_found"
    # embedded: this process has no FlashTalk server configured; fleet: no worker consumes the flashtalk queue
    assert statuses["flashtalk"]["reason"] == ("not_configured" if service.mode == "embedded" else "no_worker")
    assert statuses["quicktalk"] == {
        "id": "quicktalk",
        "model": None,
        "connected": False,
        "alias": False,
        "reason": "not_installed",
    }
    assert requests.get(f"{service.url}/v1/avatar/models", timeout=10).json()["models"] == models["models"]
    ws = Client.connect(ws_url(service.url, "/v1/audio2video/wav2lip"))
    ws.send(json.dumps({"type": "init", "prompt": OPENTALKING_PROMPT, "seed": 9999}))
    refused = json.loads(ws.receive(timeout=30))
    assert refused["type"] == "error" and refused["code"] == "model_unavailable"
    assert "weights not found" in refused["message"]
    ws.close()
    preload = requests.post(f"{service.url}/v1/audio2video/wav2lip/preload", json={}, timeout=60).json()
    assert preload["type"] == "error" and preload["code"] == "model_unavailable"

    mapped = service.start(model_aliases={"quicktalk": "photoreal-avatar"})
    statuses = {
        status["id"]: status for status in requests.get(f"{mapped.url}/v1/audio2video/models").json()["statuses"]
    }
    assert statuses["quicktalk"] == {"id": "quicktalk", "model": "photoreal-avatar", "connected": True, "alias": True}
    client = OpenTalkingClient(ws_url(mapped.url, "/v1/audio2video/quicktalk"), width=128, height=128, slice_len=4)
    assert client.init_ok["backing_model"] == "photoreal-avatar"
    assert len(client.chunk(silent_chunk(2560))) == 4
    client.close()


def test_default_avatar_with_api_keys(service) -> None:
    secured = service.start(api_keys=("k",))
    with pytest.raises(Exception):  # noqa: B017 - the upgrade is refused with 401
        Client.connect(ws_url(secured.url, "/v1/audio2video/photoreal-avatar"))
    client = OpenTalkingClient(
        ws_url(secured.url, "/v1/audio2video/photoreal-avatar?api_key=k"), width=128, height=128, slice_len=4
    )
    assert len(client.chunk(silent_chunk(2560))) == 4
    client.close()


def test_audio2video_job_gives_mp4_with_audio(service, tmp_path) -> None:
    import av

    audio = np.concatenate([np.frombuffer(loud_chunk(16000), "<i2"), np.zeros(8000, np.int16)])
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(audio.tobytes())
    body = {
        "task": "audio2video",
        "model": "photoreal-avatar",
        "inputs": {"audio": "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()},
        "config": {"width": 256, "height": 256},
    }
    result = requests.post(f"{service.url}/v1/generate", json=body, timeout=120)
    assert result.status_code == 200, result.text
    artifact = result.json()["outputs"][0]
    path = tmp_path / "avatar.mp4"
    path.write_bytes(requests.get(artifact["url"], timeout=30).content)
    with av.open(str(path)) as container:
        assert container.streams.audio and container.streams.video
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == artifact["num_frames"] == 56  # two 1.12 s chunks at 25 fps


# -- Fleet-only: admission control, idle timeout, a worker killed mid-session ---------------------------------------


@pytest.fixture()
def avatar_fleet(service_env: dict[str, str], service_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("OMNIRT_SESSION_ADMIT_S", "3")
    redis = RedisServer().start()
    api = ApiServer(service_settings(redis.url, service_dirs))
    workers: list[Worker] = []

    def start_worker(name: str, **env: str) -> Worker:
        worker = Worker(redis.url, ["omnirt.core.cpu"], {**service_env, **env}, service_dirs["logs"], name)
        workers.append(worker)
        worker.wait_ready(api.backplane)
        return worker

    yield api, start_worker
    for worker in workers:
        worker.stop()
    api.stop()
    redis.stop()


def test_admission_control_and_idle_timeout(avatar_fleet: Any) -> None:
    api, start_worker = avatar_fleet
    # The idle timeout outlasts the admission deadline (3 s): the slot stays taken while the second session waits.
    start_worker("narrow", OMNIRT_SESSION_CAPACITY="1", OMNIRT_SESSION_IDLE_S="4")
    first = OpenTalkingClient(ws_url(api.url, "/v1/audio2video/photoreal-avatar"), width=128, height=128, slice_len=4)
    second = Client.connect(ws_url(api.url, "/v1/audio2video/photoreal-avatar"))
    started = time.monotonic()
    second.send(json.dumps({"type": "init", "width": 128, "height": 128, "slice_len": 4}))
    refused = json.loads(second.receive(timeout=30))
    assert refused["code"] == "no_capacity" and time.monotonic() - started < 10
    time.sleep(4.5)  # longer than the idle timeout
    first.ws.send(b"AUDI" + silent_chunk(2560))
    timed_out = json.loads(first.ws.receive(timeout=30))
    assert timed_out["code"] == "idle_timeout"
    with pytest.raises(ConnectionClosed):
        first.ws.receive(timeout=10)


def test_worker_killed_mid_session_ends_the_socket_with_an_error(avatar_fleet: Any) -> None:
    api, start_worker = avatar_fleet
    worker = start_worker("mortal")
    client = OpenTalkingClient(ws_url(api.url, "/v1/audio2video/photoreal-avatar"), width=128, height=128, slice_len=4)
    assert len(client.chunk(loud_chunk(2560))) == 4
    worker.kill9()
    started = time.monotonic()
    client.ws.send(b"AUDI" + loud_chunk(2560))
    error = json.loads(client.ws.receive(timeout=30))
    assert error["code"] == "worker_lost" and time.monotonic() - started < 15
    with pytest.raises(ConnectionClosed):
        client.ws.receive(timeout=10)
