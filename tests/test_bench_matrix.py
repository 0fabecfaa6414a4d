"""``omnirt bench matrix --quick`` on a small CPU profile (a voice, the photoreal avatar, a tiny SD 1.5, plus a pool on
a device this machine lacks): the file validates against the published schema, every model has a row with plausible
figures or a skip reason, and ``omnirt bench report`` renders it as a markdown table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from omnirt.bench import matrix
from omnirt.cli import main

PROFILE = """\
name: matrix-test
redis:
  url: redis://127.0.0.1:6379/15
frontends:
  - name: api
    port: 8000
pools:
  - name: realtime
    device: cpu
    models: [hibari-tts, photoreal-avatar]
  - name: jobs
    device: cpu
    models: [sd15]
  - name: gpu
    device: {absent_device}
    models: [sd15]
"""


def _absent() -> str:
    """A device this machine lacks, for a pool that must show as a skipped row rather than vanish."""
    import torch

    return "ascend" if torch.cuda.is_available() else "cuda"


@pytest.fixture(scope="module")
def matrix_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("matrix")
    profile = folder / "profile.yaml"
    profile.write_text(PROFILE.format(absent_device=_absent()))
    out = folder / "matrix.json"
    result = CliRunner().invoke(
        main,
        ["bench", "matrix", "--profile", str(profile), "--out", str(out), "--quick", "--models-dir", str(folder)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return out


def test_schema_is_draft_2020_12_and_shipped() -> None:
    schema = matrix.schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    setup = (Path(__file__).parents[1] / "setup.cfg").read_text()
    assert "omnirt.bench = matrix.schema.json" in setup


def test_matrix_validates_and_has_a_row_per_model(matrix_file: Path) -> None:
    artifact = json.loads(matrix_file.read_text())
    Draft202012Validator(matrix.schema()).validate(artifact)
    assert artifact["quick"] is True and artifact["machine"]["cpu_count"] >= 1 and artifact["machine"]["torch"]
    rows = {(row["model"], row["device"]): row for row in artifact["rows"]}
    assert set(rows) == {("hibari-tts", "cpu"), ("photoreal-avatar", "cpu"), ("sd15", "cpu"), ("sd15", _absent())}
    for key in [("hibari-tts", "cpu"), ("photoreal-avatar", "cpu"), ("sd15", "cpu")]:
        row = rows[key]
        assert row["status"] == "ok", (key, row["failures"], row["details"].get("traceback"))
        assert row["failures"]["count"] == 0
        assert row["latency_ms"]["p50"] > 0 and row["latency_ms"]["p99"] >= row["latency_ms"]["p50"]
        assert row["throughput"]["value"] > 0
        assert row["peak_memory"]["rss_peak_mb"] > 0

    voice = rows["hibari-tts", "cpu"]
    assert voice["task"] == "text2audio" and voice["first_audio_packet_ms"] > 0 and voice["real_time_factor"] > 0
    assert voice["throughput"]["unit"] == "audio s/s"

    avatar = rows["photoreal-avatar", "cpu"]
    assert avatar["task"] == "audio2video" and avatar["ttff_ms"] > 0 and avatar["first_video_chunk_ms"] > 0
    assert avatar["throughput"]["unit"] == "frames/s" and 1 <= avatar["max_realtime_sessions"] <= 2

    image = rows["sd15", "cpu"]
    assert image["task"] == "text2image" and image["weights"] == "tiny-random"
    assert image["throughput"]["unit"] == "images/s" and image["latency_ms"]["n"] == 3

    absent = rows["sd15", _absent()]
    assert absent["status"] == "skipped" and absent["skipped"]


def test_report_prints_a_markdown_table_with_each_model(matrix_file: Path) -> None:
    result = CliRunner().invoke(main, ["bench", "report", str(matrix_file)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    table = [line for line in result.output.splitlines() if line.startswith("|")]
    assert table[0].startswith("| device | model | task |") and set(table[1]) <= {"|", "-"}
    assert len(table) == 2 + 4
    for model in ("hibari-tts", "photoreal-avatar", "sd15"):
        assert any(f"| {model} |" in line for line in table[2:]), model
    assert "skipped" in result.output


def test_report_refuses_a_file_that_does_not_match_the_schema(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"schema_version": 1, "rows": [{"model": "sd15"}]}))
    result = CliRunner().invoke(main, ["bench", "report", str(broken)])
    assert result.exit_code != 0
