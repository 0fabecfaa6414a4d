"""Docker Compose from a profile: Redis with its append-only file, the front ends, one service per worker pool,
Flower, Prometheus (with its scrape configuration) and Grafana (its Prometheus datasource and a dashboards folder
provisioned).

Files: ``compose.yaml``, ``prometheus/prometheus.yml``, ``grafana/provisioning/datasources/prometheus.yml``,
``grafana/provisioning/dashboards/omnirt.yml`` and ``grafana/dashboards/README.md`` (dashboard JSON files put in
that folder are loaded by Grafana). Weights, artifacts and avatars live in named volumes mounted at the same paths in
every OmniRT container.
"""

from __future__ import annotations

from typing import Any

from omnirt.profiles.plan import (
    CONTAINER_ARTIFACTS,
    CONTAINER_AVATARS,
    CONTAINER_MODELS,
    STOP_GRACE_S,
    Process,
    container_placement,
    processes,
    redis_argv,
)
from omnirt.profiles.render import dump_yaml, header
from omnirt.profiles.schema import Pool, Profile

STORAGE_MOUNTS = [
    f"models:{CONTAINER_MODELS}",
    f"artifacts:{CONTAINER_ARTIFACTS}",
    f"avatars:{CONTAINER_AVATARS}",
]
GRAFANA_DASHBOARDS = "/etc/grafana/dashboards"


def _depends(profile: Profile) -> dict[str, Any]:
    return {"depends_on": {"redis": {"condition": "service_healthy"}}} if profile.redis.owned else {}


def _http_check(port: int, path: str) -> dict[str, Any]:
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=5)"
    return {"test": ["CMD", "python", "-c", probe], "interval": "15s", "timeout": "10s", "retries": 3}


def _frontend(profile: Profile, process: Process) -> dict[str, Any]:
    frontend = process.frontend
    assert frontend is not None and process.port is not None
    port = process.port
    published = f"{port}:{port}" if frontend.replicas == 1 else f"{port}-{port + frontend.replicas - 1}:{port}"
    service: dict[str, Any] = {
        "image": profile.image,
        "command": list(process.argv),
        "environment": dict(process.env),
        "ports": [published],
        "volumes": list(STORAGE_MOUNTS),
        **_depends(profile),
        "healthcheck": {**_http_check(port, "/healthz"), "start_period": "30s"},
        "stop_grace_period": f"{STOP_GRACE_S}s",
        "restart": "unless-stopped",
    }
    if frontend.replicas > 1:
        service["deploy"] = {"replicas": frontend.replicas}
    if frontend.keys_file:
        service["secrets"] = [{"source": f"{frontend.name}-api-keys", "target": frontend.keys_file}]
    return service


def _devices(pool: Pool) -> dict[str, Any]:
    """GPUs through the NVIDIA runtime; Ascend NPUs as device files with the host's driver mounted."""
    count = pool.devices_per_replica
    if pool.device == "cuda" and count:
        return {
            "deploy": {
                "replicas": pool.replicas,
                "resources": {
                    "reservations": {"devices": [{"driver": "nvidia", "count": count, "capabilities": ["gpu"]}]}
                },
            }
        }
    extra: dict[str, Any] = {"deploy": {"replicas": pool.replicas}}
    if pool.device == "ascend" and count:
        extra["devices"] = [f"/dev/davinci{index}" for index in range(count)] + [
            "/dev/davinci_manager",
            "/dev/devmm_svm",
            "/dev/hisi_hdc",
        ]
        extra["volumes_extra"] = [
            "/usr/local/Ascend/driver:/usr/local/Ascend/driver:ro",
            "/usr/local/dcmi:/usr/local/dcmi:ro",
            "/usr/local/bin/npu-smi:/usr/local/bin/npu-smi:ro",
        ]
    return extra


def _pool(profile: Profile, process: Process) -> dict[str, Any]:
    pool = process.pool
    assert pool is not None
    extra = _devices(pool)
    ping = f"celery -A omnirt inspect ping -d {pool.name}@$$HOSTNAME --timeout 10 > /dev/null"
    return {
        "image": pool.image or profile.image,
        "command": list(process.argv),
        "environment": dict(process.env),
        "volumes": STORAGE_MOUNTS + extra.pop("volumes_extra", []),
        **extra,
        **_depends(profile),
        "healthcheck": {
            "test": ["CMD-SHELL", ping],
            "interval": "60s",
            "timeout": "30s",
            "retries": 3,
            "start_period": "120s",
        },
        "stop_grace_period": f"{STOP_GRACE_S}s",
        "restart": "unless-stopped",
    }


def _flower(profile: Profile, process: Process) -> dict[str, Any]:
    assert process.port is not None
    return {
        "image": profile.image,
        "command": list(process.argv),
        "environment": dict(process.env),
        "ports": [f"{process.port}:{process.port}"],
        **_depends(profile),
        "healthcheck": _http_check(process.port, "/healthcheck"),
        "restart": "unless-stopped",
    }


def _redis(profile: Profile) -> dict[str, Any]:
    return {
        "image": profile.redis.image,
        "command": redis_argv(profile, data_dir="/data", bind="0.0.0.0", port=6379),
        "volumes": ["redis-data:/data"],
        "healthcheck": {"test": ["CMD", "redis-cli", "ping"], "interval": "5s", "timeout": "3s", "retries": 20},
        "stop_grace_period": "30s",
        "restart": "unless-stopped",
    }


def prometheus_config(profile: Profile, planned: list[Process]) -> dict[str, Any]:
    """Scrape every front end replica (DNS service discovery over the compose service name) and Flower."""
    interval = f"{profile.observability.scrape_interval_s}s"
    jobs: list[dict[str, Any]] = []
    for process in planned:
        if process.role == "frontend":
            jobs.append(
                {
                    "job_name": f"omnirt-{process.name}",
                    "metrics_path": "/metrics",
                    "dns_sd_configs": [{"names": [process.name], "type": "A", "port": process.port}],
                }
            )
        elif process.role == "flower":
            jobs.append(
                {
                    "job_name": "flower",
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": [f"flower:{process.port}"]}],
                }
            )
    return {"global": {"scrape_interval": interval, "evaluation_interval": interval}, "scrape_configs": jobs}


def grafana_datasource() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": "prometheus",
                "type": "prometheus",
                "access": "proxy",
                "url": "http://prometheus:9090",
                "isDefault": True,
            }
        ],
    }


def grafana_dashboards() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "omnirt",
                "folder": "OmniRT",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "options": {"path": GRAFANA_DASHBOARDS, "foldersFromFilesStructure": False},
            }
        ],
    }


DASHBOARDS_README = """# Grafana dashboards

Grafana (the `grafana` service of `compose.yaml`) loads every dashboard JSON file in this folder at start, into the
folder "OmniRT", with the provisioned Prometheus datasource (uid `prometheus`). Add a file and restart Grafana:
`docker compose -f deploy/compose.yaml restart grafana`.
"""


def render(profile: Profile) -> dict[str, str]:
    placement = container_placement(profile)
    planned = processes(profile, placement)
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    if profile.redis.owned:
        services["redis"] = _redis(profile)
        volumes["redis-data"] = {}
    for process in planned:
        if process.role == "frontend":
            services[process.name] = _frontend(profile, process)
        elif process.role == "pool":
            services[process.name] = _pool(profile, process)
        elif process.role == "flower":
            services["flower"] = _flower(profile, process)
    volumes.update({"models": {}, "artifacts": {}, "avatars": {}})
    observability = profile.observability
    files: dict[str, str] = {}
    if observability.prometheus_port:
        services["prometheus"] = {
            "image": observability.prometheus_image,
            "command": ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"],
            "volumes": ["./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro", "prometheus-data:/prometheus"],
            "ports": [f"{observability.prometheus_port}:9090"],
            "restart": "unless-stopped",
        }
        volumes["prometheus-data"] = {}
        files["prometheus/prometheus.yml"] = header(profile) + dump_yaml(prometheus_config(profile, planned))
    if observability.grafana_port:
        services["grafana"] = {
            "image": observability.grafana_image,
            "volumes": [
                "./grafana/provisioning:/etc/grafana/provisioning:ro",
                f"./grafana/dashboards:{GRAFANA_DASHBOARDS}:ro",
                "grafana-data:/var/lib/grafana",
            ],
            "ports": [f"{observability.grafana_port}:3000"],
            "restart": "unless-stopped",
        }
        if observability.prometheus_port:
            services["grafana"]["depends_on"] = ["prometheus"]
        volumes["grafana-data"] = {}
        files["grafana/provisioning/datasources/prometheus.yml"] = header(profile) + dump_yaml(grafana_datasource())
        files["grafana/provisioning/dashboards/omnirt.yml"] = header(profile) + dump_yaml(grafana_dashboards())
        files["grafana/dashboards/README.md"] = DASHBOARDS_README
    compose: dict[str, Any] = {"name": f"omnirt-{profile.name}", "services": services, "volumes": volumes}
    secrets = {
        f"{frontend.name}-api-keys": {"file": f"./secrets/{frontend.name}-api-keys"}
        for frontend in profile.frontends
        if frontend.keys_file
    }
    if secrets:
        compose["secrets"] = secrets
    files["compose.yaml"] = header(profile) + dump_yaml(compose)
    return files
