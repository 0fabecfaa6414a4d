"""Real lip-sync models on the session path: Wav2Lip (real size, random weights) and MuseTalk 1.5 (tiny), embedded
and on a fleet (real Redis, a real Celery worker that holds the weights). A server without Wav2Lip weights is
covered in test_avatar.py.

Covers the avatar store's routes, preparing once and reusing (in a session, or as an ``avatar_prepare`` job with
progress), both WebSocket protocols (FlashTalk's fixed chunks, the native protocol's any-size audio with lookahead
and flush), the paste-back (only the mouth region changes, and it follows the audio), batch audio2video jobs, and
bad input.
"""

from __future__ import annotations

import base64
import io
import json
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from simple_websocket import Client

from omnirt.avatars.media import unpack_vidx
from tests.conftest import service_settings
from tests.support.servers import ApiServer, Worker

MODELS = ("wav2lip", "musetalk-1.5")
SMALL = {"width": 256, "height": 320, "fps": 25, "slice_len": 8}  # 5120-sample chunks
CHUNK = 5120


def portrait_png() -> bytes:
    import cv2
    from skimage import data

    return cv2.imencode(".png", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))[1].tobytes()


def speech(samples: int, *, loud: bool = True, seed: int = 0) -> bytes:
    """A voiced sound with a syllable envelope (loud) or silence."""
    if not loud:
        return bytes(samples * 2)
    t = np.arange(samples) / 16000
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    noise = np.random.default_rng(seed).normal(0, 0.05, samples)
    wave_ = (np.sin(2 * np.pi * 160 * t) + 0.5 * np.sin(2 * np.pi * 700 * t) + noise) * envelope
    return (np.clip(wave_, -1, 1) * 12000).astype("<i2").tobytes()


def frames_of(message: bytes) -> list[np.ndarray]:
    import cv2

    return [cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) for jpeg in unpack_vidx(message)]


def ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://") + path


@pytest.fixture(scope="module")
def lipsync_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from omnirt.models.tiny_common import make_tiny

    models = tmp_path_factory.mktemp("lipsync-models")
    from omnirt.registry.registry import tasks_of

    for model in MODELS:
        if tasks_of(model):
            make_tiny(model, models / model)
    return {
        "models": models,
        "artifacts": tmp_path_factory.mktemp("lipsync-artifacts"),
        "logs": tmp_path_factory.mktemp("lipsync-logs"),
    }


@pytest.fixture(scope="module", params=["embedded", "fleet"])
def lipsync(
    request: pytest.FixtureRequest, lipsync_dirs: dict[str, Path], service_env: dict[str, str]
) -> Iterator[ApiServer]:
    """An API whose worker holds the lip-sync weights: embedded, or a fleet with its own Redis and Celery worker."""
    patch = pytest.MonkeyPatch()
    patch.setenv("OMNIRT_MODELS_DIR", str(lipsync_dirs["models"]))
    worker = None
    redis_url = None
    if request.param == "fleet":
        from omnirt.backplane import Backplane
        from tests.support.servers import RedisServer

        redis = RedisServer().start()
        redis_url = redis.url
        env = {
            **service_env,
            "OMNIRT_MODELS_DIR": str(lipsync_dirs["models"]),
            "OMNIRT_ARTIFACT_DIR": str(lipsync_dirs["artifacts"]),
        }
        worker = Worker(redis_url, ["omnirt.core.cpu"], env, lipsync_dirs["logs"], "lipsync-worker")
        worker.wait_ready(Backplane(service_settings(redis_url, lipsync_dirs)))
    server = ApiServer(service_settings(redis_url, lipsync_dirs))
    yield server
    server.stop()
    if worker is not None:
        worker.stop()
        redis.stop()
    patch.undo()


class FlashTalkClient:
    def __init__(self, url: str, **init: Any) -> None:
        self.ws = Client.connect(url, max_message_size=50 * 2**20)
        self.ws.send(json.dumps({"type": "init", "seed": 9999, **init}))
        self.init_ok = json.loads(self.ws.receive(timeout=120))
        assert self.init_ok["type"] == "init_ok", self.init_ok

    def chunk(self, pcm: bytes) -> list[np.ndarray]:
        self.ws.send(b"AUDI" + pcm)
        message = self.ws.receive(timeout=120)
        assert not isinstance(message, str), message
        return frames_of(message)

    def close(self) -> None:
        self.ws.send(json.dumps({"type": "close"}))
        assert json.loads(self.ws.receive(timeout=30))["type"] == "close_ok"
        self.ws.close()


def upload(server: ApiServer, data: bytes, field: str = "image", **form: Any) -> requests.Response:
    return requests.post(f"{server.url}/v1/avatars", files={field: ("x", data)}, data=form, timeout=60)


def idle_video(path: Path, frames: int, start: int = 0) -> bytes:
    import av
    from skimage import data

    portrait = data.astronaut()[:, 56:456]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 400, 512, "yuv420p"
        for index in range(frames):
            shifted = np.roll(portrait, start + index * 2, axis=1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(shifted), format="rgb24")))
        container.mux(stream.encode())
    return path.read_bytes()


def finished_job(server: ApiServer, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    from tests.support.servers import wait_until

    def done() -> dict[str, Any] | None:
        job = requests.get(f"{server.url}/v1/jobs/{job_id}", timeout=10).json()
        return job if job["state"] in ("succeeded", "failed", "cancelled") else None

    return wait_until(done, timeout=timeout, interval=0.1)


def test_discovery_connects_what_a_worker_can_load(lipsync: ApiServer) -> None:
    statuses = {s["id"]: s for s in requests.get(f"{lipsync.url}/v1/audio2video/models", timeout=10).json()["statuses"]}
    assert statuses["wav2lip"]["connected"] is True and statuses["wav2lip"]["model"] == "wav2lip"
    assert statuses["musetalk"] == {"id": "musetalk", "model": "musetalk-1.5", "connected": True, "alias": False}
    assert statuses["wav2lip-256"] == {
        "id": "wav2lip-256",
        "model": "wav2lip-256",
        "connected": False,
        "alias": False,
        "reason": "weights_not_found",
    }


def test_avatar_routes(lipsync: ApiServer) -> None:
    created = upload(lipsync, portrait_png(), name="astronaut")
    assert created.status_code in (200, 201), created.text
    avatar = created.json()
    assert avatar["id"].startswith("av_") and avatar["kind"] == "image" and avatar["frames"] == 1
    x, y, w, h = avatar["face_box"]
    assert 250 < x + w / 2 < 420 and 60 < y + h / 2 < 260  # the astronaut's face
    again = upload(lipsync, portrait_png(), name="astronaut")
    assert again.status_code == 200 and again.json()["id"] == avatar["id"]
    listed = requests.get(f"{lipsync.url}/v1/avatars", timeout=10).json()["avatars"]
    assert avatar["id"] in [item["id"] for item in listed]
    one = requests.get(f"{lipsync.url}/v1/avatars/{avatar['id']}", timeout=10).json()
    preview = requests.get(lipsync.url + one["preview_url"], timeout=10)
    assert preview.status_code == 200 and preview.headers["Content-Type"] == "image/jpeg"
    assert requests.get(f"{lipsync.url}/v1/avatars/av_missing", timeout=10).json()["error"]["code"] == (
        "avatar_not_found"
    )


@pytest.mark.parametrize("model", MODELS)
def test_flashtalk_protocol_prepares_once_and_moves_only_the_mouth(lipsync: ApiServer, model: str) -> None:
    image = base64.b64encode(portrait_png()).decode()
    size = {**SMALL, "width": 256 + 2 * MODELS.index(model)}  # a fresh size per model: nothing prepared yet
    first = FlashTalkClient(ws_url(lipsync.url, f"/v1/audio2video/{model}"), ref_image=image, **size)
    assert first.init_ok["backing_model"] == model and first.init_ok["preprocessed"] is False
    assert first.init_ok["chunk_samples"] == CHUNK and first.init_ok["avatar_id"].startswith("av_")
    silent = first.chunk(speech(CHUNK, loud=False))
    loud = first.chunk(speech(CHUNK))
    assert len(silent) == len(loud) == 8 and silent[0].shape == (320, size["width"], 3)
    first.ws.send(b"AUDI" + b"\x00" * 100)
    assert json.loads(first.ws.receive(timeout=30))["code"] == "bad_chunk"
    assert len(first.chunk(speech(CHUNK))) == 8  # the session survived the bad chunk
    first.close()

    # The paste-back changes the lower face only: the eyes and the background are the photograph's own pixels.
    avatar = requests.get(f"{lipsync.url}/v1/avatars/{first.init_ok['avatar_id']}", timeout=10).json()
    difference = np.abs(loud[4].astype(int) - silent[4].astype(int)).sum(axis=2)
    changed_rows = np.nonzero(difference.max(axis=1) > 24)[0]
    assert changed_rows.size, "the mouth does not follow the audio"
    scale = max(size["width"] / avatar["width"], 320 / avatar["height"])
    face_top = avatar["face_box"][1] * scale - ((avatar["height"] * scale - 320) // 3)
    face_height = avatar["face_box"][3] * scale
    assert changed_rows.min() > face_top + 0.35 * face_height  # nothing above the nose moved
    assert difference[: int(face_top)].max() <= 24  # nor the background above the head

    second = FlashTalkClient(ws_url(lipsync.url, f"/v1/audio2video/{model}"), ref_image=image, **size)
    assert second.init_ok["preprocessed"] is True and second.init_ok["avatar_id"] == first.init_ok["avatar_id"]
    assert len(second.chunk(speech(CHUNK))) == 8
    second.close()


@pytest.mark.parametrize("model", MODELS)
def test_native_protocol_streams_any_chunk_size_with_lookahead_and_flush(lipsync: ApiServer, model: str) -> None:
    avatar = upload(lipsync, portrait_png()).json()
    ws = Client.connect(ws_url(lipsync.url, "/v1/avatar/realtime"), max_message_size=50 * 2**20)
    ws.send(
        json.dumps({"type": "session.create", "model": model, "inputs": {"avatar_id": avatar["id"]}, "config": SMALL})
    )
    created = json.loads(ws.receive(timeout=120))
    assert created["type"] == "session.created" and created["avatar_id"] == avatar["id"], created
    lookahead = created["lookahead_frames"]
    assert lookahead >= 1 and created["lookahead_ms"] == lookahead * 40
    received, total = 0, 0
    for size in (3000, 777, 9000, 1600):
        ws.send(b"AUDI" + speech(size, seed=size))
        total += size
        metrics = json.loads(ws.receive(timeout=120))
        assert metrics["type"] == "metrics"
        received += len(frames_of(ws.receive(timeout=120)))
        assert received <= total // 640  # never a frame whose audio has not arrived
        assert received >= (total - 640 * (lookahead + 1)) // 640  # and no more held back than the lookahead
    ws.send(b"AUDI" + b"\x01")  # half a sample
    assert json.loads(ws.receive(timeout=30))["code"] == "bad_chunk"
    ws.send(json.dumps({"type": "session.flush"}))
    json.loads(ws.receive(timeout=120))
    received += len(frames_of(ws.receive(timeout=120)))
    assert received == -(-total // 640)  # every frame the audio covers, the last one padded with silence
    ws.send(json.dumps({"type": "session.close"}))
    assert json.loads(ws.receive(timeout=30))["type"] == "session.closed"

    requests.delete(f"{lipsync.url}/v1/avatars/{avatar['id']}", timeout=10).raise_for_status()
    ws.send(
        json.dumps({"type": "session.create", "model": model, "inputs": {"avatar_id": avatar["id"]}, "config": SMALL})
    )
    refused = json.loads(ws.receive(timeout=30))
    assert refused["type"] == "error" and refused["code"] == "avatar_not_found"
    ws.close()


def test_bad_avatar_input(lipsync: ApiServer) -> None:
    import cv2

    blank = cv2.imencode(".png", np.full((256, 256, 3), 128, np.uint8))[1].tobytes()
    no_face = upload(lipsync, blank)
    assert no_face.status_code == 400 and no_face.json()["error"]["code"] == "no_face_detected"
    assert "face_box" in no_face.json()["error"]["message"]
    boxed = upload(lipsync, blank, face_box="[64, 64, 128, 128]")
    assert boxed.status_code in (200, 201) and boxed.json()["face_box"] == [64, 64, 128, 128]
    corrupt = upload(lipsync, b"\x89PNG not really")
    assert corrupt.status_code == 400 and corrupt.json()["error"]["code"] == "bad_image"
    video = upload(lipsync, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64, field="video")
    assert video.status_code == 400 and video.json()["error"]["code"] == "bad_video"
    small = ApiServer(
        service_settings(None, {"artifacts": lipsync.backplane.settings.artifact_dir}, max_avatar_video_bytes=1000)
    )
    try:
        too_big = upload(small, b"\x00" * 2000, field="video")
        assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "too_large"
    finally:
        small.stop()


def test_video_avatar_plays_forward_then_backward(lipsync: ApiServer, tmp_path: Path) -> None:
    created = upload(lipsync, idle_video(tmp_path / "idle.mp4", 5), field="video")
    assert created.status_code in (200, 201), created.text
    avatar = created.json()
    assert avatar["kind"] == "video" and avatar["frames"] == 5
    client = FlashTalkClient(ws_url(lipsync.url, "/v1/audio2video/wav2lip"), avatar_id=avatar["id"], **SMALL)
    assert client.init_ok["template_mode"] == "video"
    frames = client.chunk(speech(CHUNK, loud=False))
    # Frames 0..7 show templates 0 1 2 3 4 3 2 1: frame 3 and frame 5 show the same template.
    assert (
        np.abs(frames[3].astype(int) - frames[5].astype(int)).mean()
        < np.abs(frames[3].astype(int) - frames[4].astype(int)).mean()
    )
    client.close()


@pytest.mark.parametrize("model", MODELS)
def test_audio2video_job_gives_h264_with_aac(lipsync: ApiServer, model: str, tmp_path: Path) -> None:
    import av

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(speech(16000 + 3200))
    body = {
        "task": "audio2video",
        "model": model,
        "inputs": {
            "audio": "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode(),
            "image": "data:image/png;base64," + base64.b64encode(portrait_png()).decode(),
        },
        "config": {"width": 256, "height": 320},
    }
    result = requests.post(f"{lipsync.url}/v1/generate", json=body, timeout=300)
    assert result.status_code == 200, result.text
    output = result.json()["outputs"][0]
    url = output["url"] if output["url"].startswith("http") else lipsync.url + output["url"]
    video = requests.get(url, timeout=30)
    path = tmp_path / "out.mp4"
    path.write_bytes(video.content)
    with av.open(str(path)) as container:
        kinds = {stream.type: stream.codec_context.name for stream in container.streams}
        assert kinds == {"video": "h264", "audio": "aac"}
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 30  # 1.2 s at 25 fps


@pytest.mark.parametrize("model", MODELS)
def test_preparation_is_a_job_with_progress(lipsync: ApiServer, model: str, tmp_path: Path) -> None:
    size = {"width": 240 + 8 * MODELS.index(model), "height": 320}  # a size nothing else prepared
    # New content on each server (embedded, fleet): the avatar store is shared, and this avatar must be unprepared.
    video = idle_video(tmp_path / "idle.mp4", 20, start=0 if lipsync.backplane.settings.embedded else 1)
    created = upload(lipsync, video, field="video", model=model, **size)
    assert created.status_code in (200, 201), created.text
    avatar = created.json()
    job = finished_job(lipsync, avatar["prepare_job"]["job_id"])
    assert job["state"] == "succeeded", job.get("error")
    assert job["task"] == "avatar_prepare" and job["model"] == model
    progress = [
        (event["data"]["step"], event["data"]["total"]) for event in job["events"] if event["event"] == "progress"
    ]
    assert progress == [(1, 2), (2, 2)]  # 20 template frames, prepared 16 at a time
    output = job["result"]["outputs"][0]
    prepared = requests.get(output["url"], timeout=10).json()
    assert prepared["frames"] == 20 and prepared["cache_hit"] is False and prepared["avatar_id"] == avatar["id"]

    # A session at that size opens on the prepared avatar; preparing again is a cache hit.
    client = FlashTalkClient(
        ws_url(lipsync.url, f"/v1/audio2video/{model}"), avatar_id=avatar["id"], **{**SMALL, **size}
    )
    assert client.init_ok["preprocessed"] is True
    assert len(client.chunk(speech(CHUNK))) == 8
    client.close()
    again = requests.post(f"{lipsync.url}/v1/avatars/{avatar['id']}/prepare", json={"model": model, **size}, timeout=10)
    assert again.status_code == 202, again.text
    repeat = finished_job(lipsync, again.json()["job_id"])
    assert repeat["state"] == "succeeded"
    assert requests.get(repeat["result"]["outputs"][0]["url"], timeout=10).json()["cache_hit"] is True


def test_preparation_refuses_what_it_cannot_do(lipsync: ApiServer) -> None:
    avatar = upload(lipsync, portrait_png()).json()
    prepare = f"{lipsync.url}/v1/avatars/{avatar['id']}/prepare"
    missing = requests.post(f"{lipsync.url}/v1/avatars/av_missing/prepare", json={"model": "wav2lip"}, timeout=10)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "avatar_not_found")
    unnamed = requests.post(prepare, json={}, timeout=10)
    assert (unnamed.status_code, unnamed.json()["error"]["code"]) == (400, "invalid_request")
    unknown = requests.post(prepare, json={"model": "no-such-model"}, timeout=10)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_model")
    unloadable = requests.post(prepare, json={"model": "wav2lip-256"}, timeout=10)  # no weights anywhere
    assert (unloadable.status_code, unloadable.json()["error"]["code"]) == (503, "model_unavailable")
    odd = requests.post(prepare, json={"model": "wav2lip", "width": 7}, timeout=10)
    assert (odd.status_code, odd.json()["error"]["code"]) == (400, "bad_config")


def test_photoreal_preparation_is_kept_with_the_avatar(lipsync: ApiServer, tmp_path: Path) -> None:
    """The default avatar renders stored avatars too: its mesh is prepared once (a job), kept with the avatar, and a
    session naming the avatar opens prepared and shows that avatar's face."""
    import cv2

    from omnirt.avatars.session import fit_frame
    from omnirt.avatars.store import default_portrait

    mark = 17 if lipsync.backplane.settings.embedded else 34  # new content per server: the store is shared
    portrait = np.ascontiguousarray(default_portrait()[:, ::-1])  # mirrored: not the bundled portrait
    portrait[-8:] = mark
    png = cv2.imencode(".png", cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))[1].tobytes()
    created = upload(lipsync, png, model="photoreal-avatar")
    assert created.status_code in (200, 201), created.text
    avatar = created.json()
    job = finished_job(lipsync, avatar["prepare_job"]["job_id"])
    assert job["state"] == "succeeded", job.get("error")
    assert job["task"] == "avatar_prepare" and job["model"] == "photoreal-avatar"
    prepared = requests.get(job["result"]["outputs"][0]["url"], timeout=10).json()
    assert prepared["cache_hit"] is False and prepared["avatar_id"] == avatar["id"]

    client = FlashTalkClient(ws_url(lipsync.url, "/v1/audio2video/photoreal-avatar"), avatar_id=avatar["id"], **SMALL)
    assert client.init_ok["preprocessed"] is True
    frames = client.chunk(speech(CHUNK))
    assert len(frames) == 8
    client.close()
    shown = cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB).astype(float)
    stored = fit_frame(portrait, SMALL["width"], SMALL["height"])[0].astype(float)
    bundled = fit_frame(default_portrait(), SMALL["width"], SMALL["height"])[0].astype(float)
    assert np.abs(shown - stored).mean() < 0.3 * np.abs(shown - bundled).mean()  # the stored avatar's face
    prepare = f"{lipsync.url}/v1/avatars/{avatar['id']}/prepare"
    again = requests.post(prepare, json={"model": "photoreal-avatar"}, timeout=10)
    assert again.status_code == 202, again.text
    repeat = finished_job(lipsync, again.json()["job_id"])
    assert requests.get(repeat["result"]["outputs"][0]["url"], timeout=10).json()["cache_hit"] is True
