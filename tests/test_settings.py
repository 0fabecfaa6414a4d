"""Settings are declared once (type, default, variable, doc) and read from the environment the same way."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from omnirt.settings import Settings, unknown_variables


def test_every_option_is_declared_with_a_variable_and_a_doc() -> None:
    options = Settings.options()
    variables = [variable for _, variable, _, _ in options]
    assert len(variables) == len(set(variables)) and all(name.startswith("OMNIRT_") for name in variables)
    assert all(doc.strip() for _, _, doc, _ in options)
    defaults = Settings()
    assert all(getattr(defaults, name) == default for name, _, _, default in options)


def test_the_environment_is_read_by_each_declaration(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("k2\nk3\n")
    settings = Settings.from_env(
        {
            "OMNIRT_REDIS_URL": "redis://h:1/0",
            "OMNIRT_JOB_TTL_S": "60",
            "OMNIRT_SYNC_TIMEOUT_S": "2.5",
            "OMNIRT_MODELS": "sd15, wav2lip",
            "OMNIRT_API_KEYS": "k1",
            "OMNIRT_API_KEY_FILE": str(key_file),
            "OMNIRT_OUTPUT_DIR": str(tmp_path / "old-name"),
            "OMNIRT_INPUT_ROOTS": "/a:/b",
            "OMNIRT_CONFINE_MODEL_PATHS": "yes",
            "OMNIRT_LIMITS": json.dumps({"max_steps": 20}),
            "OMNIRT_SESSION_IDLE_S": "5",
        }
    )
    assert settings.redis_url == "redis://h:1/0" and not settings.embedded
    assert (settings.job_ttl_s, settings.sync_timeout_s, settings.session_idle_s) == (60, 2.5, 5.0)
    assert settings.models == ("sd15", "wav2lip") and settings.api_keys == ("k1", "k2", "k3")
    assert settings.artifact_dir == tmp_path / "old-name"  # the older name still works
    assert settings.input_roots == (Path("/a"), Path("/b")) and settings.confine_model_paths is True
    assert settings.limits == {"max_steps": 20.0}


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(ValueError, match="OMNIRT_JOB_TTL_S='soon'"):
        Settings.from_env({"OMNIRT_JOB_TTL_S": "soon"})
    with pytest.raises(ValueError, match="OMNIRT_LIMITS"):
        Settings.from_env({"OMNIRT_LIMITS": json.dumps({"max_stepz": 3})})


def test_unknown_variables_get_a_did_you_mean() -> None:
    warnings = unknown_variables({"OMNIRT_FRAME_LANE": "2", "OMNIRT_MODELS": "sd15", "PATH": "/bin"})
    assert warnings == ["OMNIRT_FRAME_LANE is not an OmniRT setting; did you mean OMNIRT_FRAME_LANES?"]


def test_omnirt_settings_prints_values_and_their_source() -> None:
    env = {"PATH": "/usr/bin:/bin", "OMNIRT_CACHE_SIZE": "7", "OMNIRT_TTL": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "omnirt.cli", "settings", "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    rows = {row["variable"]: row for row in json.loads(result.stdout)}
    assert rows["OMNIRT_CACHE_SIZE"]["value"] == 7 and rows["OMNIRT_CACHE_SIZE"]["source"] == "env"
    assert rows["OMNIRT_JOB_TTL_S"]["source"] == "default"
    assert "OMNIRT_TTL is not an OmniRT setting" in result.stderr


def test_the_readme_documents_every_option() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    environment = readme[readme.index("## Environment") : readme.index("\n## ", readme.index("## Environment") + 1)]
    missing = [variable for _, variable, _, _ in Settings.options() if f"`{variable}`" not in environment]
    assert missing == [], f"README's Environment section does not name {missing}"
