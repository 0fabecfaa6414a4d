"""Settings are declared once (type, default, variable, doc) and read from the environment the same way."""

from __future__ import annotations

import ast
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


def test_the_readme_table_is_generated_from_the_declarations() -> None:
    """The README's Environment table is ``omnirt settings --markdown`` as it stands (``make docs`` rewrites it)."""
    from omnirt.settings import environment_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    environment = readme[readme.index("## Environment") : readme.index("\n## ", readme.index("## Environment") + 1)]
    assert environment_table() in environment, "README's Environment table is stale: run `make docs`"
    missing = [variable for _, variable, _, _ in Settings.options() if f"`{variable}`" not in environment]
    assert missing == []


def _environ_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, variable or '?') of each read of the process environment by name: ``os.environ[...]`` (not assigned),
    ``os.environ.get/pop/setdefault(...)``, ``os.getenv(...)`` and ``... in os.environ``."""

    def is_environ(node: ast.AST) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
            isinstance(node, ast.Name) and node.id == "environ"
        )

    def name_of(node: ast.AST | None) -> str:
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else "?"

    reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            first = node.args[0] if node.args else None
            if isinstance(func, ast.Attribute) and func.attr in ("get", "pop", "setdefault") and is_environ(func.value):
                reads.append((node.lineno, name_of(first)))
            elif (isinstance(func, ast.Attribute) and func.attr == "getenv") or (
                isinstance(func, ast.Name) and func.id == "getenv"
            ):
                reads.append((node.lineno, name_of(first)))
        elif isinstance(node, ast.Subscript) and is_environ(node.value) and isinstance(node.ctx, ast.Load):
            reads.append((node.lineno, name_of(node.slice)))
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            if any(is_environ(item) for item in node.comparators):
                reads.append((node.lineno, name_of(node.left)))
    return reads


def test_only_the_settings_module_reads_omnirt_variables() -> None:
    """Every OMNIRT_* variable is read through :class:`Settings`; elsewhere the code may read standard variables by
    their literal name (HF_HUB_OFFLINE, PROMETHEUS_MULTIPROC_DIR, ...), write variables for child processes, and hand
    the whole environment to a child, but never read an OMNIRT_* variable (or one whose name it computes)."""
    package = Path(__file__).resolve().parents[1] / "omnirt"
    found = []
    for path in sorted(package.rglob("*.py")):
        if path == package / "settings.py":
            continue
        for line, name in _environ_reads(ast.parse(path.read_text(), str(path))):
            if name == "?" or name.startswith("OMNIRT_"):
                found.append(f"{path.relative_to(package.parent)}:{line} reads {name}")
    assert found == [], "read these through omnirt.settings.Settings:\n" + "\n".join(found)


def test_the_environ_check_finds_every_kind_of_read() -> None:
    source = (
        "import os\n"
        "a = os.environ.get('OMNIRT_A')\n"
        "b = os.environ['OMNIRT_B']\n"
        "c = os.getenv('OMNIRT_C', '1')\n"
        "d = 'OMNIRT_D' in os.environ\n"
        "e = os.environ.get(name)\n"
        "os.environ['OMNIRT_F'] = '1'\n"
        "g = {**os.environ}\n"
        "h = os.environ.get('HF_HUB_OFFLINE')\n"
    )
    reads = sorted(_environ_reads(ast.parse(source)))
    expected = [(2, "OMNIRT_A"), (3, "OMNIRT_B"), (4, "OMNIRT_C"), (5, "OMNIRT_D"), (6, "?"), (9, "HF_HUB_OFFLINE")]
    assert reads == expected


def test_every_omnirt_variable_is_a_declared_option() -> None:
    """No list of variables read elsewhere: the declarations (and the older names) are all the settings there are."""
    import omnirt.settings as settings_module

    assert not hasattr(settings_module, "OTHER_VARIABLES")
    given = {"OMNIRT_WORKER_QUEUES": "a", "OMNIRT_FLASHTALK_PORT": "1", "OMNIRT_OUTPUT_DIR": "x"}
    assert unknown_variables(given) == []
    assert Settings.from_env({"OMNIRT_WORKER_QUEUES": "omnirt.core.cpu,flashtalk"}).worker_queues == (
        "omnirt.core.cpu",
        "flashtalk",
    )


def test_secret_options_are_not_printed() -> None:
    rows = {row["variable"]: row for row in Settings.sources({"OMNIRT_VLLM_OMNI_API_KEY": "sk-123"})}
    row = rows["OMNIRT_VLLM_OMNI_API_KEY"]
    assert row["value"] == "(set)" and row["source"] == "env"
