"""Script-backed talking heads (SoulX-FlashHead, SoulX-LiveAct, LongCat-Video-Avatar) through the launcher layer,
against local fakes of their checkouts that follow each repository's command-line contract
(:mod:`tests.support.fake_talking_heads`)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from omnirt.contracts.errors import DependencyUnavailableError, JobCancelledError
from omnirt.contracts.types import GenerateRequest
from omnirt.runtime.launcher import Launch, ScriptFailedError, ScriptTimeoutError, build_command, shell_line
from tests.support.fake_talking_heads import (
    make_flashhead_repo,
    make_liveact_repo,
    make_longcat_repo,
    write_launcher_shims,
)

FLASHHEAD, LIVEACT, LONGCAT = "soulx-flashhead-1.3b", "soulx-liveact-14b", "longcat-video-avatar-1.5"
CHECKOUT_PATHS = {  # where each model's weights sit in its fake checkout, as the request config names them
    FLASHHEAD: {"ckpt_dir": "models/SoulX-FlashHead-1_3B", "wav2vec_dir": "models/wav2vec2-base-960h"},
    LIVEACT: {"ckpt_dir": "models/LiveAct", "wav2vec_dir": "models/chinese-wav2vec2-base"},
    LONGCAT: {"ckpt_dir": "weights/LongCat-Video-Avatar"},
}


def checkout_config(model: str, repo: Path, **extra: Any) -> dict[str, Any]:
    """The request config that runs ``model`` from its fake checkout at ``repo``, with ``extra`` on top."""
    return {"repo_path": str(repo), **CHECKOUT_PATHS[model], **extra}


# -- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A portrait PNG and 2.4 s of 16 kHz speech-like WAV."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("talking-media")
    image = root / "speaker.png"
    ramp = np.linspace(0, 255, 96, dtype=np.uint8)
    Image.fromarray(np.stack([np.tile(ramp, (96, 1))] * 3, -1)).save(image)
    audio = root / "voice.wav"
    t = np.arange(int(2.4 * 16000)) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2 * 32767).astype("<i2")
    with wave.open(str(audio), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(pcm.tobytes())
    return {"image": image, "audio": audio}


@pytest.fixture(scope="module")
def shims(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_launcher_shims(tmp_path_factory.mktemp("launchers"))


@pytest.fixture()
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    base = tmp_path / "record"
    monkeypatch.setenv("FAKE_RECORD", str(base))
    return base


def recorded(base: Path, label: str, rank: int = 0) -> dict[str, Any]:
    return json.loads(Path(f"{base}.{label}.{rank}.json").read_text())


def run(engine: Any, model: str, media: dict[str, Path], config: dict[str, Any], **kwargs: Any) -> Any:
    inputs = {"audio": str(media["audio"])}
    if "image" in media:
        inputs["image"] = str(media["image"])
    request = GenerateRequest(task="audio2video", model=model, inputs=inputs, config=config)
    events: list[Any] = []
    result = engine.run(request, on_event=events.append, **kwargs)
    return result, events


def streams(path: str) -> dict[str, Any]:
    import av

    with av.open(path) as container:
        video = container.streams.video[0]
        frames = sum(1 for packet in container.demux(video) if packet.size)
        return {
            "fps": float(video.average_rate),
            "frames": frames,
            "audio": [stream.rate for stream in container.streams.audio],
            "size": (video.codec_context.width, video.codec_context.height),
        }


def hang_with_helpers(pids: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make every rank of the fake scripts start a sleeping helper, write both pids to ``pids``, then hang."""
    monkeypatch.setenv("FAKE_SLEEP", "60")
    monkeypatch.setenv("FAKE_CHILD_PIDS", str(pids))
    return pids


def started(pids: Path) -> list[int]:
    """The pids the fake scripts have written so far (ranks and their helpers)."""
    return [int(pid) for pid in pids.read_text().split()] if pids.exists() else []


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its parent to reap it does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


# -- command construction ------------------------------------------------------------------------------------------


def test_launcher_commands(tmp_path: Path) -> None:
    base = Launch(repo_path=tmp_path, script="generate.py", args=["--fps", "20"], python_executable="/venv/bin/python")
    assert build_command(base) == ["/venv/bin/python", "generate.py", "--fps", "20"]
    torchrun = Launch(**{**base.__dict__, "launcher": "torchrun", "nproc_per_node": 4})
    assert build_command(torchrun) == [
        "/venv/bin/python",
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=4",
        "generate.py",
        "--fps",
        "20",
    ]
    accelerate = Launch(**{**base.__dict__, "launcher": "accelerate", "nproc_per_node": 4, "num_processes": 2})
    assert build_command(accelerate) == ["accelerate", "launch", "--num_processes", "2", "generate.py", "--fps", "20"]
    line = shell_line(Launch(**{**base.__dict__, "env_script": "/opt/my env.sh"}))
    assert line == f"cd {tmp_path} && source '/opt/my env.sh' && exec /venv/bin/python generate.py --fps 20"
    with pytest.raises(ValueError, match="launcher"):
        build_command(Launch(**{**base.__dict__, "launcher": "mpirun"}))


# -- each model, end to end against its fake checkout --------------------------------------------------------------


def test_flashhead_runs_generate_video_and_returns_its_muxed_video(
    tmp_path: Path, engine: Any, media: dict[str, Path], shims: dict[str, Path], record: Path
) -> None:
    repo = make_flashhead_repo(tmp_path / "SoulX-FlashHead")
    config = checkout_config(FLASHHEAD, repo, python_executable=str(shims["python"]), nproc_per_node=2, seed=7)
    result, events = run(engine, FLASHHEAD, media, config)

    video = result.outputs[0]
    assert video.mime == "video/mp4" and video.fps == 25.0 and video.sample_rate
    info = streams(video.path)
    assert info["fps"] == 25.0 and info["audio"] and info["frames"] == 2 * 28  # two 1.12 s chunks of 28 frames
    assert video.num_frames == 56 and Path(video.path).name == f"{FLASHHEAD}.mp4"
    argv = recorded(record, "generate_video")["argv"]
    assert argv[argv.index("--ckpt_dir") + 1] == str((repo / "models/SoulX-FlashHead-1_3B").resolve())
    assert argv[argv.index("--model_type") + 1] == "pro"
    assert argv[argv.index("--audio_encode_mode") + 1] == "stream"
    assert argv[argv.index("--base_seed") + 1] == "7"
    env = recorded(record, "generate_video")["env"]
    assert env["WORLD_SIZE"] == "2"  # torchrun with nproc_per_node ranks
    assert env["FLASHHEAD_SAMPLE_STEPS"] == "2" and env["FLASHHEAD_VAE_2D_SPLIT"] == "1"
    assert recorded(record, "generate_video", rank=1)["env"]["RANK"] == "1"
    steps = [event.data for event in events if event.event == "progress"]
    assert steps == [{"step": 1, "total": None}, {"step": 2, "total": None}]
    lines = [event.data["line"] for event in events if event.event == "script_output"]
    assert "Finished." in lines
    assert not list(Path(video.path).parent.glob(".soulx-flashhead*"))  # the scratch folder is gone
    assert result.metadata.execution_mode == "subprocess"


def test_liveact_runs_generate_py_and_moves_its_video_out_of_the_checkout(
    tmp_path: Path, engine: Any, media: dict[str, Path], shims: dict[str, Path], record: Path
) -> None:
    repo = make_liveact_repo(tmp_path / "SoulX-LiveAct")
    config = checkout_config(
        LIVEACT,
        repo,
        python_executable=str(shims["python"]),
        launcher="python",
        platform="cuda",  # the public checkout: none of the Ascend extensions
        fps=24,
        dura_print=True,
    )
    request = GenerateRequest(
        task="audio2video",
        model=LIVEACT,
        inputs={"image": str(media["image"]), "audio": str(media["audio"]), "prompt": "a calm presenter"},
        config=config,
    )
    result = engine.run(request)

    video = result.outputs[0]
    info = streams(video.path)
    assert info["fps"] == 24.0 and info["audio"] and info["size"] == (52, 90)  # 416*720, the fake renders 1/8
    argv = recorded(record, "generate")["argv"]
    assert "--rank0_t5_only" not in argv and "--sample_steps" not in argv
    assert {"--steam_audio", "--dura_print"} <= set(argv) and "--t5_cpu" not in argv
    assert argv[argv.index("--size") + 1] == "416*720" and argv[argv.index("--fps") + 1] == "24"
    assert recorded(record, "generate")["cwd"] == str(repo)
    assert not list(repo.glob("*.mp4"))  # the video upstream writes into its checkout was moved out


def test_liveact_ascend_checkout_prepares_the_text_cache_on_one_device_first(
    tmp_path: Path, engine: Any, media: dict[str, Path], shims: dict[str, Path], record: Path
) -> None:
    repo = make_liveact_repo(tmp_path / "SoulX-LiveAct-ascend", ascend=True)
    config = checkout_config(
        LIVEACT, repo, python_executable=str(shims["python"]), nproc_per_node=2, visible_devices="4,5"
    )
    result, _ = run(engine, LIVEACT, media, config)

    assert streams(result.outputs[0].path)["fps"] == 20.0  # the reference's default
    text = recorded(record, "prepare_text_cache")
    assert text["env"]["ASCEND_RT_VISIBLE_DEVICES"] == "4" and text["env"]["WORLD_SIZE"] is None
    assert text["argv"][text["argv"].index("--device") + 1] == "npu"
    generate = recorded(record, "generate")
    assert generate["env"]["ASCEND_RT_VISIBLE_DEVICES"] == "4,5" and generate["env"]["PLATFORM"] == "ascend_npu"
    assert generate["env"]["GPU_NUM"] == "2" and generate["env"]["WORLD_SIZE"] == "2"
    argv = generate["argv"]
    assert "--rank0_t5_only" in argv and argv[argv.index("--sample_steps") + 1] == "3"
    assert text["argv"][text["argv"].index("--input_json") + 1] == argv[argv.index("--input_json") + 1]


def test_longcat_runs_the_avatar_script_under_torchrun_with_enough_segments(
    tmp_path: Path, engine: Any, media: dict[str, Path], shims: dict[str, Path], record: Path
) -> None:
    repo = make_longcat_repo(tmp_path / "LongCat-Video")
    config = checkout_config(LONGCAT, repo, python_executable=str(shims["python"]), nproc_per_node=2)
    result, events = run(engine, LONGCAT, media, config)

    video = result.outputs[0]
    info = streams(video.path)
    # 2.4 s at 25 fps is 60 frames: one 93-frame segment covers it
    assert info["fps"] == 25.0 and info["audio"] and info["frames"] == 93
    argv = recorded(record, "longcat")["argv"]
    assert argv[argv.index("--stage_1") + 1] == "ai2v" and argv[argv.index("--num_segments") + 1] == "1"
    assert argv[argv.index("--model_type") + 1] == "avatar-v1.5" and "--use_distill" in argv
    assert argv[argv.index("--context_parallel_size") + 1] == "2"
    assert argv[argv.index("--num_inference_steps") + 1] == "8"
    assert [event.data for event in events if event.event == "progress"] == [{"step": 1, "total": 1}]


def test_longcat_continuation_segments_cover_long_audio(
    tmp_path: Path, engine: Any, media: dict[str, Path], shims: dict[str, Path], record: Path
) -> None:
    repo = make_longcat_repo(tmp_path / "LongCat-Video")
    config = checkout_config(
        LONGCAT, repo, python_executable=str(shims["python"]), nproc_per_node=1, num_segments=3, stage="at2v"
    )
    result, _ = run(engine, LONGCAT, {"audio": media["audio"]}, config)
    assert streams(result.outputs[0].path)["frames"] == 93 + 2 * 80  # video_continue_3.mp4: the whole video


# -- failures: crash, time-out, cancel, missing checkout -----------------------------------------------------------


def test_a_crashing_script_fails_with_its_log_tail(
    tmp_path: Path, engine: Any, media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_flashhead_repo(tmp_path / "SoulX-FlashHead")
    monkeypatch.setenv("FAKE_CRASH", "1")
    config = checkout_config(FLASHHEAD, repo, python_executable=sys.executable, launcher="python")
    with pytest.raises(ScriptFailedError) as caught:
        run(engine, FLASHHEAD, media, config)
    assert caught.value.code == "script_failed"
    assert "exit code 3" in caught.value.message
    assert "RuntimeError: NPU out of memory" in caught.value.message
    assert not list((tmp_path / "outputs").rglob(".soulx-flashhead*"))  # no scratch left behind


def test_a_script_past_its_timeout_is_stopped_with_everything_it_started(
    tmp_path: Path, engine: Any, media: dict[str, Path], shims: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_flashhead_repo(tmp_path / "SoulX-FlashHead")
    pids = hang_with_helpers(tmp_path / "pids", monkeypatch)
    config = checkout_config(FLASHHEAD, repo, python_executable=str(shims["python"]), nproc_per_node=2, timeout=1.5)
    began = time.monotonic()
    with pytest.raises(ScriptTimeoutError) as caught:
        run(engine, FLASHHEAD, media, config)
    assert time.monotonic() - began < 15
    assert caught.value.code == "timeout" and "loading weights" in caught.value.message
    started_pids = started(pids)
    assert len(started_pids) == 4  # two ranks, each with a helper
    assert not [pid for pid in started_pids if alive(pid)]


def test_runs_in_one_liveact_checkout_take_turns(
    tmp_path: Path, engine: Any, media: dict[str, Path], shims: dict[str, Path], record: Path
) -> None:
    """LiveAct writes fixed paths inside its checkout: while another run holds the checkout, a run waits (and a
    cancel ends the wait); once it is free, the run goes ahead."""
    from omnirt.runtime.launcher import checkout_lock

    repo = make_liveact_repo(tmp_path / "SoulX-LiveAct")
    config = checkout_config(LIVEACT, repo, python_executable=str(shims["python"]), launcher="python", platform="cuda")
    outcomes: dict[str, Any] = {}

    def job(name: str, should_cancel: Any) -> None:
        try:
            outcomes[name] = run(engine, LIVEACT, media, config, should_cancel=should_cancel)[0]
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcomes[name] = exc

    with checkout_lock(repo):  # another worker's run
        cancel = threading.Event()
        waiting = threading.Thread(target=job, args=("cancelled", cancel.is_set))
        waiting.start()
        time.sleep(1.0)
        assert waiting.is_alive() and not Path(f"{record}.generate.0.json").exists()  # the script never started
        cancel.set()
        waiting.join(timeout=10)
        assert isinstance(outcomes["cancelled"], JobCancelledError)

        patient = threading.Thread(target=job, args=("ran", lambda: False))
        patient.start()
        time.sleep(0.5)
        assert patient.is_alive() and not Path(f"{record}.generate.0.json").exists()
    patient.join(timeout=30)
    assert outcomes["ran"].outputs[0].mime == "video/mp4"
    assert recorded(record, "generate")["cwd"] == str(repo)


def test_cancel_mid_run_ends_the_whole_process_group(
    tmp_path: Path, engine: Any, media: dict[str, Path], shims: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_longcat_repo(tmp_path / "LongCat-Video")
    pids = hang_with_helpers(tmp_path / "pids", monkeypatch)
    config = checkout_config(LONGCAT, repo, python_executable=str(shims["python"]), nproc_per_node=3)
    cancel = threading.Event()
    outcome: dict[str, Any] = {}

    def job() -> None:
        try:
            run(engine, LONGCAT, media, config, should_cancel=cancel.is_set)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=job)
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(started(pids)) < 6:
        time.sleep(0.05)
    started_pids = started(pids)
    assert len(started_pids) == 6 and all(alive(pid) for pid in started_pids)
    cancel.set()
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), JobCancelledError)
    assert not [pid for pid in started_pids if alive(pid)]  # ranks and their helpers: no orphan left
    assert not list((tmp_path / "outputs").rglob(".longcat*"))


def test_a_worker_without_the_checkout_says_what_to_configure(engine: Any, media: dict[str, Path]) -> None:
    with pytest.raises(DependencyUnavailableError) as caught:
        run(engine, FLASHHEAD, media, {})
    assert caught.value.code == "dependency_unavailable"
    assert "OMNIRT_FLASHHEAD_REPO" in caught.value.message


def test_env_script_visible_devices_and_accelerate_reach_the_script(
    tmp_path: Path, engine: Any, media: dict[str, Path], shims: dict[str, Path], record: Path
) -> None:
    repo = make_flashhead_repo(tmp_path / "SoulX-FlashHead")
    env_script = tmp_path / "set_env.sh"
    env_script.write_text("export FAKE_MARK=sourced\n")
    config = checkout_config(
        FLASHHEAD,
        repo,
        python_executable=sys.executable,
        launcher="accelerate",
        accelerate_executable=str(shims["accelerate"]),
        num_processes=2,
        env_script=str(env_script),
        visible_devices="2,3",
    )
    run(engine, FLASHHEAD, media, config)
    for rank in (0, 1):
        env = recorded(record, "generate_video", rank)["env"]
        assert env["FAKE_MARK"] == "sourced"
        assert env["CUDA_VISIBLE_DEVICES"] == "2,3" and env["ASCEND_RT_VISIBLE_DEVICES"] == "2,3"
        assert env["WORLD_SIZE"] == "2" and env["RANK"] == str(rank)


def test_a_silent_video_gets_the_request_audio(
    tmp_path: Path, engine: Any, media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_flashhead_repo(tmp_path / "SoulX-FlashHead")
    monkeypatch.setenv("FAKE_SILENT", "1")
    config = checkout_config(
        FLASHHEAD,
        repo,
        python_executable=sys.executable,
        launcher="python",
        fps=30,  # FlashHead renders at its own 25: said, not hidden
    )
    result, events = run(engine, FLASHHEAD, media, config)
    info = streams(result.outputs[0].path)
    assert info["audio"] == [16000] and info["frames"] == 56 and result.outputs[0].fps == 25.0
    warnings = [event.data["message"] for event in events if event.event == "warning"]
    assert any("muxed" in message for message in warnings)
    assert any("rendered at 25 fps; the request asked for 30" in message for message in warnings)


def test_bad_switch_values_fail_before_anything_runs(engine: Any, media: dict[str, Path], tmp_path: Path) -> None:
    """A request's bad choice is refused by validation (before a job exists); the worker's own defaults
    (``OMNIRT_FLASHHEAD_CONFIG``) are checked the same way when the job runs."""
    from omnirt.contracts.errors import InvalidInputError, RequestValidationError

    repo = make_flashhead_repo(tmp_path / "SoulX-FlashHead")
    config = checkout_config(FLASHHEAD, repo, latent_carry="no", model_type="max", nproc_per_node=True)
    with pytest.raises(RequestValidationError) as refused:
        run(engine, FLASHHEAD, media, config)
    assert "config.latent_carry must be one of true, false, got 'no'" in refused.value.message
    assert "config.model_type must be one of pro, lite, got 'max'" in refused.value.message
    assert "config.nproc_per_node must be an integer >= 1, got True" in refused.value.message

    with mock.patch.dict(os.environ, {"OMNIRT_FLASHHEAD_CONFIG": '{"model_type": "max"}'}):
        with pytest.raises(InvalidInputError) as caught:
            run(engine, FLASHHEAD, media, checkout_config(FLASHHEAD, repo))
    assert "config.model_type must be one of pro, lite" in caught.value.message


def test_discovery_says_these_need_a_checkout_and_an_accelerator() -> None:
    from omnirt.registry.manifest import build_manifest
    from omnirt.registry.registry import get_model

    for model in (FLASHHEAD, LIVEACT, LONGCAT):
        spec = get_model(model, "audio2video")
        manifest = build_manifest(spec)
        assert spec.weightless and spec.tier == "core" and manifest["maturity"] == "beta"
        assert "cpu" not in manifest["backends"] and "checkout" in manifest["summary"]
        assert "accelerator" in spec.resource_hint
        assert spec.pipeline_cls.upstream_configured() is False
    assert "fps" in get_model(FLASHHEAD, "audio2video").capabilities.supported_config


# -- OpenTalking's FlashHead HTTP client ----------------------------------------------------------------------------


@pytest.fixture()
def flashhead_api(
    tmp_path: Path, media: dict[str, Path], shims: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """An embedded server whose worker has a FlashHead checkout configured the operator's way (settings only)."""
    from tests.conftest import service_settings
    from tests.support.servers import ApiServer

    repo = make_flashhead_repo(tmp_path / "SoulX-FlashHead")
    monkeypatch.setenv("OMNIRT_FLASHHEAD_REPO", str(repo))
    monkeypatch.setenv("OMNIRT_FLASHHEAD_CKPT_DIR", "models/SoulX-FlashHead-1_3B")
    monkeypatch.setenv(
        "OMNIRT_FLASHHEAD_CONFIG",
        json.dumps({"wav2vec_dir": "models/wav2vec2-base-960h", "python_executable": str(shims["python"])}),
    )
    shared = media["image"].parent
    dirs = {"artifacts": tmp_path / "artifacts"}
    server = ApiServer(service_settings(None, dirs, input_roots=(shared,)))
    yield server
    server.stop()


def test_opentalking_flashhead_http_job(flashhead_api: Any, media: dict[str, Path]) -> None:
    import requests

    body = {
        "task": "audio2video",
        "model": FLASHHEAD,
        "inputs": {"image": str(media["image"]), "audio": str(media["audio"])},
        "config": {"preset": "balanced", "fps": 25},
    }
    response = requests.post(f"{flashhead_api.url}/v1/generate", json=body, timeout=60)
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    path = outputs[0]["path"]
    assert os.path.isfile(path) and outputs[0]["mime"] == "video/mp4"
    info = streams(path)
    assert info["fps"] == 25.0 and info["audio"]


def test_a_crash_over_http_is_a_failed_job_with_a_stable_code(
    flashhead_api: Any, media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import requests

    monkeypatch.setenv("FAKE_CRASH", "1")
    body = {
        "task": "audio2video",
        "model": FLASHHEAD,
        "inputs": {"image": str(media["image"]), "audio": str(media["audio"])},
        "async_run": True,
    }
    job = requests.post(f"{flashhead_api.url}/v1/generate", json=body, timeout=30).json()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = requests.get(f"{flashhead_api.url}/v1/jobs/{job['id']}", timeout=10).json()
        if record["state"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.1)
    assert record["state"] == "failed"
    assert record["error"]["code"] == "script_failed"
    assert "NPU out of memory" in record["error"]["message"]


def test_cli_flags_for_script_backed_models(tmp_path: Path, media: dict[str, Path]) -> None:
    from click.testing import CliRunner

    from omnirt.cli import main

    repo = make_flashhead_repo(tmp_path / "SoulX-FlashHead")
    args = ["validate", "--json", "--task", "audio2video", "--model", FLASHHEAD]
    args += ["--image", str(media["image"]), "--audio", str(media["audio"]), "--repo-path", str(repo)]
    args += ["--ckpt-dir", "models/SoulX-FlashHead-1_3B", "--wav2vec-dir", "models/wav2vec2-base-960h"]
    args += ["--launcher", "accelerate", "--num-processes", "2", "--visible-devices", "0,1", "--fps", "25"]
    outcome = CliRunner().invoke(main, args)
    assert outcome.exit_code == 0, outcome.output
    config = json.loads(outcome.output)["resolved_config"]
    assert config["launcher"] == "accelerate" and config["num_processes"] == 2 and config["visible_devices"] == "0,1"
    assert config["ckpt_dir"] == "models/SoulX-FlashHead-1_3B" and config["fps"] == 25
