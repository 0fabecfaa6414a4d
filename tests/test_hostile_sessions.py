"""Hostile and broken avatar clients (issue 8): every bad message gets a coded error frame at once, never silence or a
hang; the worker answers what it cannot do; an idle session hears of a dead worker; closed sessions leave nothing
behind (no server thread, no embedded record, no Redis key without a short TTL); a client that leaves mid-session
ends the worker's session too. Embedded and, where a worker process matters, on the fleet."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from simple_websocket import Client, ConnectionClosed

from omnirt.avatars.media import MessageKind as Kind
from omnirt.avatars.media import SessionSpec
from omnirt.events.channels import CLOSED_TTL_S
from tests.conftest import service_settings
from tests.support.servers import ApiServer, RedisServer, Worker, wait_until
from tests.test_avatar import OpenTalkingClient, loud_chunk, silent_chunk, ws_url

FLASHTALK = "/v1/audio2video/photoreal-avatar"
NATIVE = "/v1/avatar/realtime"
SMALL = {"width": 128, "height": 128, "slice_len": 4}  # 2560 samples a chunk
CHUNK = 2560


@pytest.fixture()
def embedded(service_env: dict[str, str], service_dirs: dict[str, Path]) -> Iterator[ApiServer]:
    api = ApiServer(service_settings(None, service_dirs))
    yield api
    api.stop()


@pytest.fixture()
def fleet(fleet_redis: Any, fleet_worker: Any, service_dirs: dict[str, Path]) -> Iterator[ApiServer]:
    """An API in front of the shared test fleet (real Redis, a real Celery worker)."""
    api = ApiServer(service_settings(fleet_redis.url, service_dirs))
    yield api
    api.stop()


def connect(api: Any, path: str) -> Client:
    return Client.connect(ws_url(api.url, path), max_message_size=50 * 2**20)


def answer(ws: Client, timeout: float = 5.0) -> dict[str, Any]:
    """The next text frame as JSON; fails (rather than hangs) when none comes within ``timeout``."""
    message = ws.receive(timeout=timeout)
    assert message is not None, f"no answer within {timeout} s"
    assert isinstance(message, str), f"expected a text frame, got {len(message)} bytes"
    return json.loads(message)


def assert_error(ws: Client, code: str, timeout: float = 5.0) -> dict[str, Any]:
    started = time.monotonic()
    error = answer(ws, timeout)
    assert error["type"] == "error" and error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert time.monotonic() - started < timeout
    return error


def session_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("omnirt-session-")]


def settle(baseline: int, timeout: float = 15.0) -> None:
    """Wait until this process runs no more threads than ``baseline`` and no worker session thread."""

    def done() -> bool:
        return len(threading.enumerate()) <= baseline and not session_threads()

    try:
        wait_until(done, timeout=timeout, interval=0.1)
    except TimeoutError:
        names = sorted(thread.name for thread in threading.enumerate())
        raise AssertionError(f"threads left behind (baseline {baseline}): {names}") from None


def warm_up(api: Any) -> None:
    """One complete session, so the model is loaded and lazily started threads exist before a baseline is taken."""
    client = OpenTalkingClient(ws_url(api.url, FLASHTALK), **SMALL)
    assert len(client.chunk(silent_chunk(CHUNK))) == 4
    client.close()


def portrait_b64() -> str:
    import cv2
    from skimage import data

    return base64.b64encode(cv2.imencode(".png", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))[1]).decode()


# -- 1. Bad init fields: an immediate error frame, nothing left behind ----------------------------------------------

BAD_INIT_FIELDS = [
    ({"mouth_open_multiplier": "abc"}, "bad_config"),
    ({"mouth_open_multiplier": float("nan")}, "bad_config"),
    ({"mouth_open_multiplier": True}, "bad_config"),
    ({"config": {"mouth_open_multiplier": "abc"}}, "bad_config"),
    ({"config": [1]}, "bad_config"),
    ({"config": "x"}, "bad_config"),
    ({"width": "128"}, "bad_config"),
    ({"fps": 25.5}, "bad_config"),
    ({"chunk_samples": "2560"}, "bad_config"),
    ({"prompt": 5}, "bad_config"),
    ({"face_box": "1,2,3,4"}, "bad_face_box"),
    ({"face_box": [1, 2, 3]}, "bad_face_box"),
    ({"ref_image": 5}, "bad_image"),
    ({"avatar_id": 5}, "bad_avatar"),
]


def test_bad_init_fields_are_refused_at_once_and_leave_no_thread_or_lease(service) -> None:
    warm_up(service.api)
    baseline = len(threading.enumerate())
    keys = _session_keys(service.api)
    ws = connect(service.api, FLASHTALK)
    for fields, code in BAD_INIT_FIELDS:
        ws.send(json.dumps({"type": "init", **SMALL, **fields}))
        assert_error(ws, code, timeout=3)
    # The socket is still usable: a good init after the bad ones opens a session.
    ws.send(json.dumps({"type": "init", **SMALL, "mouth_open_multiplier": 1.5}))
    assert answer(ws, timeout=60)["type"] == "init_ok"
    ws.close()
    for fields, code in BAD_INIT_FIELDS[:3]:  # a fresh socket per attempt, closed right after the error
        ws = connect(service.api, FLASHTALK)
        ws.send(json.dumps({"type": "init", **SMALL, **fields}))
        assert_error(ws, code, timeout=3)
        ws.close()
    settle(baseline)
    if service.mode == "embedded":
        assert service.api.backplane.sessions.open_sessions() == []
    else:
        wait_until(lambda: _lingering_keys(service.api, keys) == [], timeout=15)


def test_native_session_create_fields_are_checked(embedded: ApiServer) -> None:
    ws = connect(embedded, NATIVE)
    for create, code in [
        ({"config": [1]}, "bad_config"),
        ({"config": {**SMALL, "mouth_open_multiplier": "abc"}}, "bad_config"),
        ({"config": {**SMALL, "face_box": {"x": 1}}}, "bad_face_box"),
        ({"inputs": "hello"}, "bad_config"),
        ({"inputs": {"prompt": ["a"]}}, "bad_config"),
        ({"inputs": {"image_b64": 7}}, "bad_image"),
        ({"model": 5}, "bad_config"),
    ]:
        ws.send(json.dumps({"type": "session.create", **create}))
        assert_error(ws, code, timeout=3)
    ws.send(json.dumps({"type": "ping"}))
    assert answer(ws) == {"type": "pong"}
    ws.close()
    wait_until(lambda: embedded.backplane.sessions.open_sessions() == [], timeout=10)


def test_the_worker_answers_a_session_it_cannot_open(service) -> None:
    """A config the door would refuse, put on the lease directly: the worker says why instead of dying silently,
    and the session's channels end."""
    from omnirt.api.avatar import Lease, SessionError

    spec = SessionSpec(model="photoreal-avatar", **SMALL, config={"mouth_open_multiplier": "abc"})
    started = time.monotonic()
    with pytest.raises(SessionError) as refused:
        Lease(service.api.backplane, spec, None)
    assert refused.value.code == "runtime_error"
    assert "could not convert" in refused.value.message
    assert time.monotonic() - started < 30
    if service.mode == "embedded":
        wait_until(lambda: service.api.backplane.sessions.open_sessions() == [] and not session_threads(), timeout=10)


# -- 2. Bad config updates: an immediate bad_config, and the session goes on ----------------------------------------


def test_bad_config_update_is_refused_at_once_and_the_session_goes_on(service) -> None:
    client = OpenTalkingClient(ws_url(service.url, FLASHTALK), **SMALL)
    for config in ({"mouth_open_multiplier": "abc"}, {"mouth_open_multiplier": -1}, {"face_box": [1]}):
        client.ws.send(json.dumps({"type": "config_update", "config": config}))
        assert_error(client.ws, "bad_face_box" if "face_box" in config else "bad_config", timeout=3)
    for bad in ('{"type": "config_update", "config": [1]}', '{"type": "config_update"}'):
        client.ws.send(bad)
        assert_error(client.ws, "bad_config", timeout=3)
    assert len(client.chunk(loud_chunk(CHUNK))) == 4  # the session survived
    client.ws.send(json.dumps({"type": "config_update", "config": {"mouth_open_multiplier": 2}}))
    assert answer(client.ws, timeout=30) == {"type": "config_ok", "updated": {"mouth_open_multiplier": 2.0}}
    client.close()


def test_the_worker_answers_a_config_it_refuses(service) -> None:
    """Past the door (a config sent on the lease directly), the worker answers bad_config and keeps rendering."""
    from omnirt.api.avatar import Lease

    lease = Lease(service.api.backplane, SessionSpec(model="photoreal-avatar", **SMALL), None)
    try:
        for config in ({"mouth_open_multiplier": "abc"}, [1]):
            lease.send(Kind.CONFIG, config=config)
            reply = lease.receive(timeout=10)
            assert reply.kind == Kind.ERROR and reply.meta["code"] == "bad_config", reply
        lease.send(Kind.AUDIO, loud_chunk(CHUNK))
        reply = lease.receive(timeout=30)
        assert reply.kind == Kind.VIDEO and reply.meta["frames"] == 4
        lease.send("dance")
        reply = lease.receive(timeout=10)
        assert reply.kind == Kind.ERROR and reply.meta["code"] == "bad_message"
    finally:
        lease.close()


# -- 3. Messages that are not what the protocol speaks --------------------------------------------------------------

NOT_OBJECTS = ["[]", "1", "null", '"init"', '{"type": 5}', "{}"]


@pytest.mark.parametrize("path", [FLASHTALK, NATIVE])
def test_messages_that_are_not_objects_get_an_error_frame_before_and_after_the_session(
    embedded: ApiServer, path: str
) -> None:
    ws = connect(embedded, path)
    for text in NOT_OBJECTS:
        ws.send(text)
        assert_error(ws, "bad_message")
    ws.send("not json {")
    assert_error(ws, "bad_json")
    if path == FLASHTALK:
        ws.send(json.dumps({"type": "init", **SMALL}))
        assert answer(ws, timeout=60)["type"] == "init_ok"
    else:
        ws.send(json.dumps({"type": "session.create", "config": SMALL}))
        assert answer(ws, timeout=60)["type"] == "session.created"
    for text in [*NOT_OBJECTS, "not json {"]:
        ws.send(text)
        assert_error(ws, "bad_json" if text == "not json {" else "bad_message")
    for binary in (b"XXXX" + silent_chunk(CHUNK), b"AU", b""):
        ws.send(binary)
        assert_error(ws, "bad_audio_magic")
    # The session survived all of it.
    ws.send(b"AUDI" + loud_chunk(CHUNK))
    if path == NATIVE:
        assert answer(ws, timeout=30)["type"] == "metrics"
    assert isinstance(ws.receive(timeout=30), bytes)
    ws.close()
    wait_until(lambda: embedded.backplane.sessions.open_sessions() == [] and not session_threads(), timeout=15)


# -- 4. A worker killed while its session is idle --------------------------------------------------------------------


@pytest.fixture()
def mortal_fleet(
    service_env: dict[str, str], service_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ApiServer, Worker]]:
    """A private Redis, an API and one worker on the core queue that the test may kill."""
    monkeypatch.setenv("OMNIRT_SESSION_ADMIT_S", "5")
    server = RedisServer().start()
    api = ApiServer(service_settings(server.url, service_dirs))
    worker = Worker(server.url, ["omnirt.core.cpu"], service_env, service_dirs["logs"], "hostile-mortal")
    try:
        worker.wait_ready(api.backplane)
        yield api, worker
    finally:
        worker.stop()
        api.stop()
        server.stop()


def test_an_idle_session_hears_worker_lost_as_fast_as_a_streaming_one(mortal_fleet: Any) -> None:
    api, worker = mortal_fleet
    flashtalk = OpenTalkingClient(ws_url(api.url, FLASHTALK), **SMALL)  # init only, no audio yet
    native = connect(api, NATIVE)
    native.send(json.dumps({"type": "session.create", "config": SMALL}))
    assert answer(native, timeout=60)["type"] == "session.created"
    baseline = len(threading.enumerate())
    worker.kill9()
    started = time.monotonic()
    for ws in (flashtalk.ws, native):
        assert_error(ws, "worker_lost", timeout=15)
        with pytest.raises(ConnectionClosed):
            ws.receive(timeout=10)
    assert time.monotonic() - started < 8  # a heartbeat TTL (2.5 s) and a poll, not the 58 s of issue 8
    settle(baseline)


# -- 5. Closed sessions leave nothing behind -------------------------------------------------------------------------


def test_embedded_channels_drop_closed_sessions(embedded: ApiServer) -> None:
    channels = embedded.backplane.sessions
    image = portrait_b64()
    warm_up(embedded)
    baseline = len(threading.enumerate())
    for index in range(6):
        client = OpenTalkingClient(ws_url(embedded.url, FLASHTALK), ref_image=image, **SMALL)
        assert channels.open_sessions() == [client.init_ok["session_id"]]
        assert len(client.chunk(loud_chunk(CHUNK))) == 4
        if index % 3 == 0:
            client.close()  # the protocol's close
        elif index % 3 == 1:
            client.ws.close()  # the client just goes
        else:  # a second init replaces the first session on the same socket
            client.ws.send(json.dumps({"type": "init", **SMALL}))
            assert answer(client.ws, timeout=60)["type"] == "init_ok"
            client.close()
        wait_until(lambda: channels.open_sessions() == [], timeout=15)
    native = connect(embedded, NATIVE)
    for _ in range(3):
        native.send(json.dumps({"type": "session.create", "inputs": {"image_b64": image}, "config": SMALL}))
        created = answer(native, timeout=60)
        native.send(json.dumps({"type": "session.close"}))
        assert answer(native, timeout=30) == {"type": "session.closed", "session_id": created["session_id"]}
    native.close()
    wait_until(lambda: channels.open_sessions() == [], timeout=15)
    assert channels._records == {} and channels._queues == {}
    settle(baseline)


def test_redis_keys_of_a_closed_session_expire_shortly(fleet: ApiServer) -> None:
    client = OpenTalkingClient(ws_url(fleet.url, FLASHTALK), ref_image=portrait_b64(), **SMALL)
    session_id = client.init_ok["session_id"]
    assert len(client.chunk(silent_chunk(CHUNK))) == 4
    store = _redis(fleet)
    key = f"omnirt:session:{session_id}"
    assert store.ttl(key) > CLOSED_TTL_S
    client.close()
    keys = [key, f"{key}:in", f"{key}:out"]
    wait_until(lambda: all(0 < store.ttl(name) <= CLOSED_TTL_S for name in keys), timeout=15)
    wait_until(lambda: _last_kind(store, f"{key}:out") == Kind.CLOSED, timeout=15)  # the worker closed it too


# -- 6. No server thread outlives its client -------------------------------------------------------------------------


def test_a_client_that_leaves_mid_session_ends_the_relay_and_the_worker_session(embedded: ApiServer) -> None:
    channels = embedded.backplane.sessions
    warm_up(embedded)
    baseline = len(threading.enumerate())
    # Gone while the API waits on the worker's video.
    client = OpenTalkingClient(ws_url(embedded.url, FLASHTALK), **SMALL)
    client.ws.send(b"AUDI" + loud_chunk(CHUNK))
    client.ws.close()
    # Gone while idle, natively.
    native = connect(embedded, NATIVE)
    native.send(json.dumps({"type": "session.create", "config": SMALL}))
    assert answer(native, timeout=60)["type"] == "session.created"
    native.close()
    settle(baseline)
    assert channels.open_sessions() == []


def test_a_client_that_leaves_a_fleet_session_closes_it_on_the_worker(fleet: ApiServer) -> None:
    baseline = len(threading.enumerate())
    client = OpenTalkingClient(ws_url(fleet.url, FLASHTALK), **SMALL)
    key = f"omnirt:session:{client.init_ok['session_id']}"
    client.ws.send(b"AUDI" + loud_chunk(CHUNK))
    client.ws.close()
    store = _redis(fleet)
    wait_until(lambda: _last_kind(store, f"{key}:out") == Kind.CLOSED, timeout=15)
    assert 0 < store.ttl(key) <= CLOSED_TTL_S
    settle(baseline)


# -- helpers for the fleet's Redis --------------------------------------------------------------------------------


def _redis(api: ApiServer) -> redis.Redis:
    return redis.Redis.from_url(api.backplane.settings.redis_url)


def _session_keys(api: ApiServer) -> set[bytes]:
    if api.backplane.settings.embedded:
        return set()
    return set(_redis(api).scan_iter("omnirt:session:*"))


def _lingering_keys(api: ApiServer, before: set[bytes]) -> list[bytes]:
    """Session keys made since ``before`` that would outlive a closed session's short TTL."""
    store = _redis(api)
    return [key for key in set(store.scan_iter("omnirt:session:*")) - before if store.ttl(key) > CLOSED_TTL_S]


def _last_kind(store: redis.Redis, key: str) -> str | None:
    entries = store.xrevrange(key, count=1)
    return entries[0][1][b"kind"].decode() if entries else None
