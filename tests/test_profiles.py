"""Runtime profiles: the published schema, validation against the registry (every planted problem reported at once,
exit 2), the OMNIRT_* environment each process gets, the restart wrapper, and ``omnirt profile up`` bringing up a
working fleet (a job, an avatar session, Flower) that Ctrl-C stops with no process left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import jsonschema
import pytest
import requests
import yaml
from click.testing import CliRunner

from omnirt.cli import main
from omnirt.profiles.plan import local_placement, processes
from omnirt.profiles.schema import ProfileError, json_schema, load_profile, parse_profile
from omnirt.profiles.validation import validate_profile
from omnirt.settings import Settings
from tests.support.servers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted((ROOT / "deploy" / "profiles").glob("*.yaml"))


def write(tmp_path: Path, data: dict[str, Any], name: str = "profile.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# -- schema and validation --------------------------------------------------------------------------------------------


def test_the_published_schema_accepts_the_examples_and_rejects_nonsense() -> None:
    result = CliRunner().invoke(main, ["profile", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema == json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in PROFILES:
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text()))), path.name
    broken = yaml.safe_load(PROFILES[0].read_text())
    broken["pools"][0]["concurrency"] = 0
    broken["pools"][0]["gpus"] = 1
    assert len(list(validator.iter_errors(broken))) >= 2


@pytest.mark.parametrize("path", PROFILES, ids=[path.stem for path in PROFILES])
def test_the_example_profiles_are_valid(path: Path) -> None:
    result = CliRunner().invoke(main, ["profile", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    assert not validate_profile(load_profile(path)).problems


def test_structural_problems_are_all_listed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "name": "Bad Name",
            "redis": {"url": "redis://x:6379/0", "owned": True},
            "frontends": [{"name": "api", "port": 70000, "colour": "blue"}],
            "pools": [{"name": "gpu", "device": "tpu", "concurrency": 0, "models": [{"task": "text2image"}]}],
        },
    )
    result = CliRunner().invoke(main, ["profile", "validate", str(path)])
    assert result.exit_code == 2
    for expected in (
        "name:",
        "redis: give either url",
        "frontends.0.port:",
        "frontends.0.colour: Unknown field",
        "pools.0.device:",
        "pools.0.concurrency:",
        "pools.0.models.0: unknown key(s) task",
    ):
        assert expected in result.output, expected
    with pytest.raises(ProfileError, match="a profile is a mapping"):
        parse_profile(["not", "a", "mapping"])


BROKEN = {
    "name": "broken",
    "redis": {"owned": True, "port": 6400},
    "storage": {"artifacts": "/srv/artifacts"},
    "frontends": [{"name": "api", "port": 8000, "models": ["sd15", "whisper-small", "photoreal-avatar"]}],
    "pools": [
        {
            "name": "avatar",
            "device": "cpu",
            "models": ["photoreal-avatar", "hibari-ttts", {"id": "sd15", "tasks": ["text2video"]}],
            "preload": ["sdxl-base-1.0"],
            "memory_budget_gb": 2,
            "settings": {"torch_thread": 2, "preload": ["sd15"]},
            "env": {"OMNIRT_SESSION_CAPACITY": "2", "OMNIRT_NOT_A_THING": "1"},
        },
        {"name": "avatar", "device": "cpu", "models": ["sdxl-base-1.0"], "memory_budget_gb": 4, "queues": ["x.y"]},
    ],
    "observability": {"flower": {"port": 8000}, "grafana": {"port": 6400}},
}


def test_validate_reports_every_planted_problem_at_once(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["profile", "validate", str(write(tmp_path, BROKEN))])
    assert result.exit_code == 2
    out = result.output
    planted = {
        "unknown model (did you mean)": "unknown model 'hibari-ttts'; did you mean hibari-tts",
        "task mismatch": "'sd15' does not do text2video; its tasks: text2image, image2image, inpaint",
        "preload not served": "'sdxl-base-1.0' is preloaded but not among the models this pool serves",
        "memory budget": "'sd15' needs about 4 GB, above the pool's budget of 2 GB",
        "memory budget, second pool": "'sdxl-base-1.0' needs about 12 GB, above the pool's budget of 4 GB",
        "queue no pool serves": "'whisper-small' (audio2text) goes to omnirt.adjacent.{cuda,ascend,cpu}, which no pool",
        "model outside explicit queues": "'sdxl-base-1.0' is routed to omnirt.adjacent.cpu, which this pool does not",
        "port clash (flower)": "observability.flower.port: port 8000 is also used by front end api",
        "port clash (grafana)": "observability.grafana.port: port 6400 is also used by redis",
        "duplicate name": "the name 'avatar' is already used by pools.avatar",
        "unknown setting": "'torch_thread' is not an OmniRT setting; did you mean torch_threads",
        "structural setting": "'preload' is set through pools[].preload, not settings",
        "declared option in env": "OMNIRT_SESSION_CAPACITY is a setting: write settings: {session_capacity: ...}",
        "undeclared variable": "OMNIRT_NOT_A_THING is not an OmniRT variable",
    }
    missing = [what for what, text in planted.items() if text not in out]
    assert not missing, f"not reported: {missing}\n{out}"
    assert "error(s)" in out.splitlines()[-1]


def test_memory_of_preloaded_models_adds_up() -> None:
    data = {
        "name": "memory",
        "redis": {"url": "redis://127.0.0.1:6379/0"},
        "storage": {"artifacts": "/srv/a"},
        "frontends": [{"name": "api"}],
        "pools": [
            {
                "name": "gpu",
                "device": "cuda",
                "models": ["sdxl-base-1.0", "flux-dev"],
                "preload": True,
                "memory_budget_gb": 30,
            }
        ],
    }
    report = validate_profile(parse_profile(data))
    assert [str(problem) for problem in report.errors] == [
        "error: pools.gpu.memory_budget_gb: the preloaded models need about 36 GB together "
        "(sdxl-base-1.0 12 GB, flux-dev 24 GB), above 30 GB"
    ]


def test_auto_routing_to_a_pool_that_does_not_list_the_model_is_a_warning() -> None:
    data = {
        "name": "routing",
        "redis": {"url": "redis://127.0.0.1:6379/0"},
        "storage": {"artifacts": "/srv/a"},
        "frontends": [{"name": "api"}],
        "pools": [
            {"name": "lipsync", "device": "cuda", "models": ["wav2lip"]},
            {"name": "speech", "device": "cpu", "models": ["hibari-tts"]},
        ],
    }
    report = validate_profile(parse_profile(data))
    assert report.ok
    assert any("'hibari-tts' with backend auto goes to omnirt.core.cuda" in str(item) for item in report.warnings)


# -- what each process gets ------------------------------------------------------------------------------------------


def test_each_process_gets_its_settings_as_declared_variables(tmp_path: Path) -> None:
    loaded = load_profile(ROOT / "deploy" / "profiles" / "cpu-single-host.yaml")
    planned = {process.name: process for process in processes(loaded, local_placement(loaded, tmp_path))}
    declared = {variable for _, variable, _, _ in Settings.options()}
    for process in planned.values():
        assert {key for key in process.env if key.startswith("OMNIRT_")} <= declared, process.name
    realtime = Settings.from_env(planned["realtime"].env)
    assert realtime.preload == ("photoreal-avatar", "hibari-tts")
    assert realtime.session_capacity == 4 and realtime.memory_budget_gb == 4.0
    assert realtime.redis_url == "redis://127.0.0.1:6380/0" and realtime.torch_threads == 1
    assert realtime.artifact_dir == tmp_path / "outputs"
    assert Settings.value("worker_device", planned["realtime"].env) == "cpu"
    argv = planned["realtime"].argv
    assert argv[:4] == ("celery", "-A", "omnirt", "worker")
    assert argv[argv.index("-Q") + 1] == "omnirt.core.cpu" and argv[argv.index("-n") + 1] == "realtime@%h"
    assert planned["jobs"].argv[planned["jobs"].argv.index("-Q") + 1] == "omnirt.experimental.cpu"
    assert planned["api"].argv[:2] == ("omnirt", "serve")
    redis = planned["redis"].argv
    assert redis[redis.index("--appendonly") + 1] == "yes"


# -- the restart wrapper ----------------------------------------------------------------------------------------------


def test_respawn_restarts_with_backoff_then_gives_up(tmp_path: Path) -> None:
    marker = tmp_path / "runs"
    command = f"echo run >> {marker}; exit 3"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "omnirt.profiles.respawn",
            "--name",
            "flaky",
            "--backoff",
            "0.05",
            "--give-up-after",
            "3",
            "--",
            "sh",
            "-c",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3
    assert marker.read_text().count("run") == 4  # the first run and three restarts
    assert result.stdout.count("restarting in") == 3
    assert "restarting in 0.05 s" in result.stdout and "restarting in 0.1 s" in result.stdout
    assert "giving up" in result.stdout


def test_respawn_stops_its_command_and_the_command_group(tmp_path: Path) -> None:
    import psutil

    pid_file = tmp_path / "pids"
    # a main process that ignores SIGTERM, with a child of its own: the wrapper kills the group after its grace
    command = f"trap '' TERM; sleep 300 & echo $$ $! > {pid_file}; wait"
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "omnirt.profiles.respawn", "--grace", "1", "--", "sh", "-c", command],
        stdout=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2, timeout=20)
    pids = [int(pid) for pid in pid_file.read_text().split()]
    wrapper.send_signal(signal.SIGTERM)
    assert wrapper.wait(timeout=20) == 0
    assert "killing it" in wrapper.stdout.read()
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_respawn_stops_when_its_supervisor_is_gone(tmp_path: Path) -> None:
    import psutil

    supervisor = subprocess.Popen(["sleep", "300"])
    pid_file = tmp_path / "pid"
    wrapper = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "omnirt.profiles.respawn",
            "--watch-pid",
            str(supervisor.pid),
            "--",
            "sh",
            "-c",
            f"echo $$ > {pid_file}; exec sleep 300",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=20)
    child = int(pid_file.read_text())
    supervisor.kill()
    supervisor.wait()
    assert wrapper.wait(timeout=20) == 0
    assert "supervisor exited; stopping" in wrapper.stdout.read()
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


# -- omnirt profile up: a real fleet ----------------------------------------------------------------------------------


def fleet_profile(tmp_path: Path, models_dir: Path) -> tuple[Path, dict[str, int]]:
    ports = {"redis": free_port(), "api": free_port(), "flower": free_port()}
    data = {
        "name": "test-fleet",
        "redis": {"owned": True, "port": ports["redis"], "dir": str(tmp_path / "redis")},
        "storage": {
            "models": str(models_dir),
            "artifacts": str(tmp_path / "artifacts"),
            "avatars": str(tmp_path / "avatars"),
        },
        "frontends": [{"name": "api", "port": ports["api"], "workers": 1}],
        "pools": [
            {
                "name": "avatar",
                "device": "cpu",
                "models": ["photoreal-avatar", "sd15"],
                "concurrency": 1,
                "session_capacity": 2,
                "memory_budget_gb": 8,
            }
        ],
        "observability": {"flower": {"port": ports["flower"]}},
        "settings": {"heartbeat_interval_s": 0.5, "heartbeat_ttl_s": 3, "torch_threads": 1},
        "env": {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    }
    return write(tmp_path, data, "fleet.yaml"), ports


def descendants(pid: int) -> list[Any]:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def alive(process: Any) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_profile_up_runs_a_working_fleet_and_stops_cleanly(tmp_path: Path, tiny_model: Callable[[str], Path]) -> None:
    from tests.test_avatar import OpenTalkingClient, loud_chunk, ws_url

    models_dir = tiny_model("sd15").parent  # what `omnirt make-tiny sd15 DIR/sd15` writes
    path, ports = fleet_profile(tmp_path, models_dir)
    log_path = tmp_path / "up.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("OMNIRT_")}
    with log_path.open("w") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "omnirt.cli", "profile", "up", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    api = f"http://127.0.0.1:{ports['api']}"

    def log_text() -> str:
        return log_path.read_text(errors="replace")

    def ready() -> bool:
        if up.poll() is not None:
            raise AssertionError(f"profile up exited ({up.returncode}):\n{log_text()[-4000:]}")
        try:
            return requests.get(f"{api}/readyz", timeout=5).status_code == 200
        except requests.RequestException:  # not listening yet, or busy starting
            return False

    try:
        wait_until(ready, timeout=180, interval=0.5)
        # a job runs
        reply = requests.post(
            f"{api}/v1/generate",
            json={"task": "text2image", "model": "sd15", "inputs": {"prompt": "a cat"}, "timeout_s": 120},
            timeout=150,
        )
        assert reply.status_code == 200, reply.text
        result = reply.json()
        assert result["outputs"][0]["mime"] == "image/png"
        assert result["metadata"]["worker_id"].startswith("avatar@")
        assert requests.get(result["outputs"][0]["url"], timeout=10).status_code == 200
        # an avatar session runs (the FlashTalk protocol, the default portrait)
        client = OpenTalkingClient(ws_url(api, "/v1/audio2video/photoreal-avatar"))
        frames = client.chunk(loud_chunk())
        assert len(frames) == client.init_ok["slice_len"] and frames[0].shape[:2] == (704, 416)
        client.close()
        # Flower lists the worker
        flower = f"http://127.0.0.1:{ports['flower']}"

        def flower_workers() -> list[str]:
            try:
                data = requests.get(f"{flower}/workers?json=1&refresh=1", timeout=5).json()["data"]
            except (requests.ConnectionError, ValueError):
                return []
            return [worker["hostname"] for worker in data if worker.get("status")]

        assert any(name.startswith("avatar@") for name in wait_until(flower_workers, timeout=60, interval=1))
        # a crashed process comes back (the restart wrapper), with its output prefixed
        import psutil

        flower_process = next(
            proc
            for proc in descendants(up.pid)
            if "flower" in " ".join(proc.cmdline()) and "respawn" not in " ".join(proc.cmdline())
        )
        flower_process.send_signal(signal.SIGKILL)
        wait_until(lambda: "flower: exited (signal 9); restarting" in log_text(), timeout=30)
        wait_until(flower_workers, timeout=60, interval=1)
        assert isinstance(flower_process, psutil.Process)
        text = log_text()
        for name in ("redis", "api", "avatar", "flower"):
            assert f" {name} " in text and "| " in text, name
        assert (tmp_path / "redis").exists() and any((tmp_path / "redis").iterdir())  # the append-only file
    finally:
        children = descendants(up.pid)
        up.send_signal(signal.SIGINT)
        try:
            code = up.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            for child in descendants(up.pid) + children:
                if alive(child):
                    child.kill()
            raise
    assert code == 0, log_text()[-3000:]
    time.sleep(0.5)
    left = [f"{child.pid} {' '.join(child.cmdline())}" for child in children if alive(child)]
    assert not left, left
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{api}/healthz", timeout=2)


def test_worker_serves_one_pool_of_a_profile() -> None:
    """``omnirt worker --profile FILE --profile-pool NAME`` listens on that pool's queues; a profile with several
    pools needs the name."""
    from click.testing import CliRunner

    from omnirt.cli import main

    profile = str(Path(__file__).resolve().parents[1] / "deploy" / "profiles" / "cpu-single-host.yaml")
    base = ["worker", "--device", "cpu", "--redis-url", "redis://127.0.0.1:1/0", "--profile", profile, "--dry-run"]
    with mock.patch.dict(os.environ):  # the command exports the worker's settings to its environment
        served = CliRunner().invoke(main, [*base, "--profile-pool", "realtime"])
        unnamed = CliRunner().invoke(main, base)
    assert served.exit_code == 0, served.output
    assert " -Q omnirt.core.cpu " in served.output
    assert unnamed.exit_code == 2 and "jobs, realtime" in unnamed.output
