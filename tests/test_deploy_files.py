"""Deploy files rendered from the example profiles: the committed ones are current, and every target validates:
Kubernetes manifests with kubernetes-validate (KEDA's ScaledObject against its schema), compose files against the
compose-spec JSON schema, systemd units with ``systemd-analyze verify``; plus the Dockerfiles' essentials."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from omnirt.profiles.render import render
from omnirt.profiles.schema import Profile, load_profile

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DATA = Path(__file__).parent / "data"
PROFILES = sorted((DEPLOY / "profiles").glob("*.yaml"))
KUBERNETES_VERSION = "1.30"

#: (profile, target, folder): the deploy files committed under deploy/, rendered from the example profiles.
COMMITTED = [
    ("cpu-single-host", "compose", DEPLOY),
    ("cpu-single-host", "systemd", DEPLOY / "systemd"),
    ("gpu-digital-human", "kubernetes", DEPLOY / "kubernetes" / "gpu-digital-human"),
    ("asset-production", "kubernetes", DEPLOY / "kubernetes" / "asset-production"),
]


def profile(name: str) -> Profile:
    return load_profile(DEPLOY / "profiles" / f"{name}.yaml")


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_the_example_profiles_are_the_three_named() -> None:
    assert [path.stem for path in PROFILES] == ["asset-production", "cpu-single-host", "gpu-digital-human"]


@pytest.mark.parametrize(("name", "target", "folder"), COMMITTED, ids=[f"{n}-{t}" for n, t, _ in COMMITTED])
def test_committed_deploy_files_equal_a_fresh_render(name: str, target: str, folder: Path) -> None:
    rendered = render(profile(name), target)
    stale = [
        rel for rel, text in rendered.items() if not (folder / rel).is_file() or (folder / rel).read_text() != text
    ]
    command = f"omnirt profile render deploy/profiles/{name}.yaml --to {target} {folder.relative_to(ROOT)}"
    assert not stale, f"stale or missing: {', '.join(stale)}; run: {command}"
    if target == "kubernetes":  # the folder holds only rendered manifests: none left over from an older render
        assert sorted(path.name for path in folder.glob("*.yaml")) == sorted(rendered)


# -- Kubernetes ----------------------------------------------------------------------------------------------------


def keda_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((DATA / "keda-scaledobject.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate_manifest(doc: dict[str, Any]) -> None:
    if doc["kind"] == "ScaledObject":
        keda_validator().validate(doc)
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("path", PROFILES, ids=[path.stem for path in PROFILES])
def test_kubernetes_manifests_validate(path: Path) -> None:
    loaded = load_profile(path)
    manifests = [doc for text in render(loaded, "kubernetes").values() for doc in documents(text)]
    for doc in manifests:
        validate_manifest(doc)
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in manifests:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    from omnirt.profiles.plan import pool_queues
    from omnirt.settings import Settings
    from omnirt.tasks.app import make_celery

    soft_shutdown = make_celery(Settings()).conf.worker_soft_shutdown_timeout
    for frontend in loaded.frontends:
        pod = by_kind["Deployment"][f"omnirt-{frontend.name}"]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert f"omnirt-{frontend.name}" in by_kind["PodDisruptionBudget"]
    for pool in loaded.pools:
        name = f"omnirt-{pool.name}"
        pod = by_kind["Deployment"][name]["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] > soft_shutdown
        assert name in by_kind["PodDisruptionBudget"]
        scaled = by_kind["ScaledObject"][name]["spec"]
        assert scaled["scaleTargetRef"]["name"] == name
        lists = {trigger["metadata"]["listName"] for trigger in scaled["triggers"] if trigger["type"] == "redis"}
        assert set(pool_queues(pool)) <= lists  # KEDA's redis scaler on each Celery queue of the pool


def test_kubernetes_validation_rejects_what_a_cluster_would() -> None:
    manifests = documents(render(profile("gpu-digital-human"), "kubernetes")["pool-avatar.yaml"])
    deployment, _, scaled = manifests
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_manifest(broken)
    broken = json.loads(json.dumps(scaled))
    broken["spec"]["triggers"][0]["metadata"]["listLength"] = 5  # KEDA's metadata values are strings
    with pytest.raises(jsonschema.ValidationError):
        validate_manifest(broken)
    del broken["spec"]["triggers"][0]["metadata"]["listName"]
    broken["spec"]["triggers"][0]["metadata"]["listLength"] = "5"
    with pytest.raises(jsonschema.ValidationError):
        validate_manifest(broken)


# -- compose ---------------------------------------------------------------------------------------------------------


def compose_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((DATA / "compose-spec.json").read_text())
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", PROFILES, ids=[path.stem for path in PROFILES])
def test_compose_files_validate_against_the_compose_spec(path: Path) -> None:
    loaded = load_profile(path)
    files = render(loaded, "compose")
    compose = yaml.safe_load(files["compose.yaml"])
    errors = [f"{error.json_path}: {error.message}" for error in compose_validator().iter_errors(compose)]
    assert not errors, errors
    services = compose["services"]
    assert {frontend.name for frontend in loaded.frontends} <= set(services)
    assert {pool.name for pool in loaded.pools} <= set(services)
    if loaded.redis.owned:
        assert services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1] == "yes"
    for pool in loaded.pools:
        assert f"{pool.name}@%h" in services[pool.name]["command"]
    if loaded.observability.prometheus_port:
        prometheus = yaml.safe_load(files["prometheus/prometheus.yml"])
        jobs = {job["job_name"] for job in prometheus["scrape_configs"]}
        assert {f"omnirt-{frontend.name}" for frontend in loaded.frontends} <= jobs


def test_compose_validation_rejects_an_unknown_key() -> None:
    compose = yaml.safe_load(render(profile("cpu-single-host"), "compose")["compose.yaml"])
    compose["services"]["api"]["stop_grace"] = "40s"
    assert list(compose_validator().iter_errors(compose))


def test_compose_brings_prometheus_and_grafana_with_a_provisioned_datasource() -> None:
    files = render(profile("cpu-single-host"), "compose")
    compose = yaml.safe_load(files["compose.yaml"])
    assert {"redis", "api", "realtime", "jobs", "flower", "prometheus", "grafana"} <= set(compose["services"])
    datasource = yaml.safe_load(files["grafana/provisioning/datasources/prometheus.yml"])["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(files["grafana/provisioning/dashboards/omnirt.yml"])["providers"][0]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert (DEPLOY / "grafana" / "dashboards").is_dir()


# -- systemd ----------------------------------------------------------------------------------------------------------


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed (.ci/run installs Debian's systemd)")
    return found


def verify_units(files: dict[str, str], folder: Path) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    units = sorted(str(path) for path in folder.iterdir())
    return subprocess.run([systemd_analyze(), "verify", *units], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("path", PROFILES, ids=[path.stem for path in PROFILES])
def test_systemd_units_verify(path: Path, tmp_path: Path) -> None:
    # systemd-analyze checks that each ExecStart program exists: point the units at this checkout's environment.
    loaded = load_profile(path)
    here = replace(loaded, install=replace(loaded.install, prefix=sys.prefix))
    if here.redis.owned and not Path("/usr/bin/redis-server").exists():
        pytest.skip("redis-server is not installed")
    files = render(here, "systemd")
    result = verify_units(files, tmp_path / "units")
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result.stderr
    pools = [name for name in files if name.endswith("@.service")]
    assert len(pools) == len(loaded.pools)
    for name in pools:
        text = files[name]
        assert re.search(r"-n \S+-%i@%%h", text)  # one Celery node per instance: %i the replica, %%h celery's host
        stop = int(re.search(r"TimeoutStopSec=(\d+)", text).group(1))
        assert stop > 25 and "KillMode=mixed" in text


def test_systemd_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    loaded = profile("cpu-single-host")
    files = render(replace(loaded, install=replace(loaded.install, prefix=sys.prefix)), "systemd")
    files["omnirt-api.service"] = files["omnirt-api.service"].replace("Restart=on-failure", "Restart=sometimes")
    result = verify_units(files, tmp_path / "units")
    assert "omnirt-api.service" in result.stderr and "sometimes" in result.stderr


# -- images ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.cuda"])
def test_dockerfiles_run_as_a_user_and_check_healthz(name: str) -> None:
    text = (DEPLOY / "docker" / name).read_text()
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.MULTILINE)
    index = re.search(r"ARG TORCH_INDEX=(\S+)", text).group(1)
    assert index.startswith("https://download.pytorch.org/whl/")
    if name == "Dockerfile.cuda":
        assert index in (ROOT / "README.md").read_text()  # the CUDA wheel index the README names
