"""The `omnirt` command line, run as a user runs it: listing, validation, make-tiny + generate, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from omnirt.cli import main


def omnirt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "OMNIRT_MODELS_DIR": str(cwd or "/nonexistent")}
    return subprocess.run(
        [sys.executable, "-m", "omnirt.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_models_lists_ids_with_task_and_tier() -> None:
    result = invoke("models")
    assert result.exit_code == 0
    rows = [line.split("\t") for line in result.output.splitlines()]
    assert len({row[0] for row in rows}) >= 25
    assert ["sd15", "text2image", "experimental", "preview/stable"] == rows[[r[0] for r in rows].index("sd15")][:4]
    assert all(row[2] in ("core", "adjacent", "experimental") for row in rows)


def test_models_filters_by_tier_and_prints_json() -> None:
    adjacent = invoke("models", "--tier", "adjacent")
    assert adjacent.exit_code == 0 and all(line.split("\t")[2] == "adjacent" for line in adjacent.output.splitlines())
    listing = json.loads(invoke("models", "--format", "json").output)
    assert {"model", "task", "tier", "default_config"} <= set(listing[0])


def test_models_detail_and_manifest() -> None:
    detail = invoke("models", "sd15")
    assert detail.exit_code == 0 and 'required_inputs=["prompt"]' in detail.output
    manifest = json.loads(invoke("models", "sd15", "--manifest").output)
    assert set(manifest) == {"text2image", "image2image", "inpaint"}
    assert manifest["text2image"]["schema_version"] == "1.0.0" and manifest["text2image"]["role"] == "avatar-asset"
    single = json.loads(invoke("models", "svd", "--manifest").output)
    assert single["task"] == "image2video" and single["outputs"] == ["video"]


def test_unknown_model_detail_exits_2() -> None:
    result = invoke("models", "sd-15")
    assert result.exit_code == 2 and "Did you mean: sd15" in result.output


def test_validate_suggests_and_exits_2() -> None:
    result = omnirt("validate", "--task", "text2image", "--model", "sd-15", "--prompt", "x")
    assert result.returncode == 2
    assert "sd15" in result.stderr and "Did you mean" in result.stderr


def test_validate_json_ok_and_request_file(tmp_path: Path) -> None:
    request = tmp_path / "request.yaml"
    request.write_text("task: text2image\nmodel: sd15\ninputs: {prompt: a cat}\nconfig: {seed: 4}\n")
    result = invoke("validate", "--config", str(request), "--width", "256", "--backend", "cpu", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] and data["resolved_config"]["width"] == 256 and data["resolved_config"]["seed"] == 4


def test_generate_dry_run_and_bad_flags() -> None:
    dry = invoke(
        "generate", "--task", "text2image", "--model", "sd15", "--prompt", "x", "--backend", "cpu", "--dry-run"
    )
    assert dry.exit_code == 0 and "ok=true" in dry.output
    bad = invoke("generate", "--task", "text2image", "--model", "sd15", "--backend", "cpu", "--size", "big")
    assert bad.exit_code == 2 and bad.output.startswith("error: [invalid_request]")


def test_runtime_failure_exits_1_with_one_line(tmp_path: Path) -> None:
    result = omnirt(
        "generate", "--task", "text2image", "--model", "sd15", "--prompt", "x", "--backend", "cpu", cwd=tmp_path
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: [weights_not_found] No weights found for 'sd15'")
    assert "Traceback" not in result.stderr
    debug = omnirt(
        "generate",
        "--task",
        "text2image",
        "--model",
        "sd15",
        "--prompt",
        "x",
        "--backend",
        "cpu",
        "--debug",
        cwd=tmp_path,
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr


@pytest.mark.parametrize(
    ("model", "task", "mime"), [("sd15", "text2image", "image/png"), ("wan2.1-t2v-14b", "text2video", "video/mp4")]
)
def test_make_tiny_then_generate_json(tmp_path: Path, model: str, task: str, mime: str) -> None:
    made = omnirt("make-tiny", model, str(tmp_path / "weights"))
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "weights" / "model_index.json").is_file()
    result = omnirt(
        "generate",
        "--task",
        task,
        "--model",
        model,
        "--model-path",
        str(tmp_path / "weights"),
        "--prompt",
        "a cat",
        "--num-inference-steps",
        "2",
        "--json",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["metadata"]["schema_version"] == "1.0.0"
    artifact = payload["outputs"][0]
    assert artifact["mime"] == mime and Path(artifact["path"]).is_file()
    if mime == "video/mp4":
        import av

        with av.open(artifact["path"]) as container:
            assert sum(1 for _ in container.decode(video=0)) == artifact["num_frames"]
    else:
        from PIL import Image

        with Image.open(artifact["path"]) as image:
            assert image.format == "PNG"
    assert "denoising" in result.stderr  # the progress bar follows the steps on stderr


def test_generate_text_output_lists_artifacts(tiny_model, tmp_path: Path) -> None:
    result = invoke(
        "generate",
        "--task",
        "text2image",
        "--model",
        "sd15",
        "--model-path",
        str(tiny_model("sd15")),
        "--prompt",
        "a cat",
        "--seed",
        "3",
        "--out",
        str(tmp_path),
        "--lora",
        str(tmp_path / "none.bin"),
    )
    assert result.exit_code == 2 and "Adapter file does not exist" in result.output
    ok = invoke(
        "generate",
        "--task",
        "text2image",
        "--model",
        "sd15",
        "--model-path",
        str(tiny_model("sd15")),
        "--prompt",
        "a cat",
        "--seed",
        "3",
        "--out",
        str(tmp_path),
        "--set",
        "guidance_scale=2.5",
    )
    assert ok.exit_code == 0, ok.output
    assert "guidance_scale=2.5" in ok.output and "artifacts=1" in ok.output
    assert any(line.startswith("artifact: ") and line.endswith("(image/png)") for line in ok.output.splitlines())
