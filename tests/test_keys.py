"""Redis keys have one owner (:mod:`omnirt.keys`), Lua scripts get every key through ``KEYS``, and a ``/metrics``
scrape reads maintained counters: no SCAN or KEYS, and as many commands with many models as with one."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from omnirt import keys

PACKAGE = Path(__file__).resolve().parents[1] / "omnirt"


def _strings(path: Path) -> Iterator[tuple[int, str]]:
    """Every string constant of a module (docstrings and f-string parts included), with its line."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _namespaces() -> set[str]:
    """The first segment after the prefix of every key :mod:`omnirt.keys` builds (``job``, ``proc``, ...)."""
    built = [
        keys.job("x"), keys.job_events("x"), keys.jobs(), keys.jobs_queued(), keys.jobs_running(),
        keys.idempotency("x"), keys.job_stats(), keys.stage_stats(), keys.process("x"), keys.workers(),
        keys.session("x"), keys.session_stream("x", "in"), keys.session_queue("x"), keys.avatars(),
        keys.relay_control("x"), keys.bench_hop(1), keys.batch_lobby("x"),
    ]  # fmt: skip
    return {key.split(":")[1] for key in built}


def test_no_key_is_written_outside_the_keys_module() -> None:
    """No key literal (``omnirt:job:...``, ``omnirt:avatars``) and no key fragment (``':proc:'``, as Lua used to
    build them) outside :mod:`omnirt.keys`. ``omnirt:cpu`` (an image tag) is no key."""
    names = "|".join(sorted(_namespaces()))
    key_like = re.compile(rf"\bomnirt:(?:{names})\b|\bomnirt:[\w.-]+:|(?<![\w]):(?:{names}):")
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {text.strip()[:80]!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "keys.py"
        for line, text in _strings(path)
        if key_like.search(text)
    ]
    assert found == [], "build these keys with omnirt.keys:\n" + "\n".join(found)


_CALL = re.compile(r"redis\.call\(\s*'(\w+)'\s*,\s*([^,)]+)")


def test_lua_scripts_take_every_key_through_KEYS() -> None:
    scripts = [
        (f"{path.relative_to(PACKAGE.parent)}:{line}", text)
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, text in _strings(path)
        if "redis.call(" in text
    ]
    assert len(scripts) >= 8  # the job store's five, the session channels' two, the stage statistics'
    built = [
        f"{where}: {command} {first.strip()}"
        for where, text in scripts
        for command, first in _CALL.findall(text)
        if not re.fullmatch(r"KEYS\[\d+\]", first.strip())
    ]
    assert built == [], "Lua scripts must not build keys:\n" + "\n".join(built)


def test_keys_round_trip() -> None:
    assert keys.job_of_events(keys.job_events("j:1")) == "j:1"
    assert keys.queue_of_session_queue(keys.session_queue("omnirt.core.cpu")) == "omnirt.core.cpu"
    assert keys.session_stream("s1", "in") == keys.session("s1") + ":in"
    with pytest.raises(ValueError):
        keys.job_of_events(keys.job("j1"))
    with pytest.raises(ValueError):
        keys.session_stream("s1", "sideways")
    names = [keys.job("x"), keys.jobs(), keys.process("w"), keys.workers(), keys.avatars(), keys.stage_stats()]
    assert all(name.startswith(keys.PREFIX + ":") for name in names) and len(set(names)) == len(names)


# -- /metrics against a real Redis ------------------------------------------------------------------------------------


@pytest.fixture()
def private_redis() -> Iterator[Any]:
    from tests.support.servers import RedisServer

    server = RedisServer().start()
    yield server
    server.stop()


def _command_counts(client: Any) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in client.info("commandstats").items()}


def _scrape_commands(client: Any, http: Any) -> tuple[dict[str, int], str]:
    before = _command_counts(client)
    response = http.get("/metrics")
    after = _command_counts(client)
    assert response.status_code == 200
    delta = {name: calls - before.get(name, 0) for name, calls in after.items() if calls != before.get(name, 0)}
    delta.pop("info", None)  # ours
    return delta, response.get_data(as_text=True)


def test_a_metrics_scrape_reads_counters_and_never_scans(private_redis: Any, tmp_path: Path) -> None:
    import redis

    from omnirt.api import create_app
    from omnirt.settings import Settings

    settings = Settings(
        redis_url=private_redis.url,
        artifact_dir=tmp_path / "artifacts",
        heartbeat_interval_s=3600.0,  # no reaper sweep during the measurement
    )
    app = create_app(settings)
    plane = app.extensions["omnirt"]
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    http = app.test_client()
    try:
        plane.workers.beat("w1", {"worker_id": "w1", "queues": ["omnirt.core.cpu"]}, ttl_s=60)
        plane.record_stage_timings("sd15", {"load_ms": 40.0, "denoise_loop_ms": 700.0})
        plane.record_stage_timings("sd15", {"load_ms": 3.0, "denoise_loop_ms": 650.0})
        http.get("/metrics")  # first scrape: scripts and connections set up

        one_model, text = _scrape_commands(client, http)
        assert 'omnirt_stage_duration_ms_count{model="sd15",stage="load"} 2.0' in text
        assert 'omnirt_stage_duration_ms_bucket{le="50",model="sd15",stage="load"} 2.0' in text
        assert 'omnirt_stage_duration_ms_bucket{le="1000",model="sd15",stage="denoise_loop"} 2.0' in text
        assert 'omnirt_live_workers{queue="omnirt.core.cpu"} 1.0' in text

        for index in range(40):
            plane.record_stage_timings(f"model-{index}", {"load_ms": 1.0, "decode_ms": 2.0})
            plane.workers.beat(f"w{index + 2}", {"worker_id": f"w{index + 2}", "queues": ["omnirt.core.cpu"]}, 60)
        many_models, text = _scrape_commands(client, http)
        assert 'omnirt_stage_duration_ms_count{model="model-39",stage="decode"} 1.0' in text
        assert 'omnirt_live_workers{queue="omnirt.core.cpu"} 41.0' in text
    finally:
        plane.close()

    scans = {"scan", "keys", "hscan", "sscan", "zscan"} & (set(one_model) | set(many_models))
    assert scans == set(), f"a scrape scanned the keyspace: {one_model}"
    assert many_models == one_model, "a scrape's commands must not grow with the number of models or workers"
