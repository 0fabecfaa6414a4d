"""Kubernetes manifests from a profile: a Deployment per front end and per worker pool, PodDisruptionBudgets, KEDA
ScaledObjects, Services, the shared volumes, and Redis (a StatefulSet with its append-only file) when the profile owns
it.

* Front ends: readiness on ``/readyz`` (store and broker reachable, a live worker for the enabled models), liveness
  on ``/healthz``, Prometheus scrape annotations.
* Worker pools: ``celery -A omnirt worker`` with the pool's queues; a termination grace period above the worker's
  soft shutdown (25 s) so a running job can finish; GPUs (``nvidia.com/gpu``) or Ascend NPUs (``huawei.com/Ascend910``)
  as resource limits; liveness through ``celery inspect ping``.
* A KEDA ScaledObject per pool scales it on the length of its Celery queues in Redis (KEDA's ``redis`` scaler,
  ``listName`` = the queue name) and, for pools that host realtime sessions, on the session lists the front ends
  offer sessions on.

Files: ``storage.yaml``, ``redis.yaml`` (owned Redis), ``frontend-<name>.yaml``, ``pool-<name>.yaml``,
``flower.yaml``; ``kubectl apply -f DIR`` applies them all.
"""

from __future__ import annotations

from typing import Any

from omnirt.profiles.plan import (
    CONTAINER_ARTIFACTS,
    CONTAINER_AVATARS,
    CONTAINER_MODELS,
    WORKER_STOP_S,
    Process,
    container_placement,
    pool_queues,
    processes,
    redis_address,
    redis_argv,
)
from omnirt.profiles.render import dump_yaml, header
from omnirt.profiles.schema import Autoscale, Pool, Profile

REDIS_SERVICE = "omnirt-redis"
RUN_AS = 10001  # the image's omnirt user (deploy/docker)
WORKER_GRACE_S = WORKER_STOP_S + 35  # above Celery's soft shutdown, with room for the cold shutdown
FRONTEND_GRACE_S = 45  # gunicorn's graceful timeout (30 s) and some
ACCELERATOR_RESOURCE = {"cuda": "nvidia.com/gpu", "ascend": "huawei.com/Ascend910"}
VOLUMES = (
    ("models", CONTAINER_MODELS, True),
    ("artifacts", CONTAINER_ARTIFACTS, False),
    ("avatars", CONTAINER_AVATARS, False),
)


def labels(profile: Profile, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "omnirt",
        "app.kubernetes.io/instance": profile.name,
        "app.kubernetes.io/component": component,
    }


def _meta(profile: Profile, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "labels": labels(profile, component)}


def _env(process: Process) -> list[dict[str, str]]:
    return [{"name": key, "value": value} for key, value in process.env.items()]


def _storage_volumes() -> list[dict[str, Any]]:
    return [{"name": name, "persistentVolumeClaim": {"claimName": f"omnirt-{name}"}} for name, _, _ in VOLUMES]


def _storage_mounts() -> list[dict[str, Any]]:
    return [{"name": name, "mountPath": path, "readOnly": read_only} for name, path, read_only in VOLUMES]


def _pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS}


def _pdb(profile: Profile, name: str, component: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(profile, name, component),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels(profile, component)}},
    }


def _deployment(
    profile: Profile, name: str, component: str, replicas: int, pod: dict[str, Any], annotations: dict[str, str]
) -> dict[str, Any]:
    template_meta: dict[str, Any] = {"labels": labels(profile, component)}
    if annotations:
        template_meta["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(profile, name, component),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels(profile, component)},
            "template": {"metadata": template_meta, "spec": pod},
        },
    }


def _service(profile: Profile, name: str, component: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(profile, name, component),
        "spec": {
            "selector": labels(profile, component),
            "ports": [{"name": "http", "port": port, "targetPort": "http"}],
        },
    }


def frontend(profile: Profile, process: Process) -> list[dict[str, Any]]:
    spec = process.frontend
    assert spec is not None and process.port is not None
    name, component = f"omnirt-{process.name}", process.name
    mounts, volumes = _storage_mounts(), _storage_volumes()
    if spec.keys_file:
        directory, _, filename = spec.keys_file.rpartition("/")
        volumes.append(
            {
                "name": "api-keys",
                "secret": {"secretName": f"omnirt-{spec.name}-api-keys", "items": [{"key": "keys", "path": filename}]},
            }
        )
        mounts.append({"name": "api-keys", "mountPath": directory or "/", "readOnly": True})
    container = {
        "name": "frontend",
        "image": profile.image,
        "command": list(process.argv),
        "env": _env(process),
        "ports": [{"name": "http", "containerPort": process.port}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 10, "failureThreshold": 3},
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "initialDelaySeconds": 15,
            "periodSeconds": 20,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "volumeMounts": mounts,
    }
    pod = {
        "terminationGracePeriodSeconds": FRONTEND_GRACE_S,
        "securityContext": _pod_security(),
        "containers": [container],
        "volumes": volumes,
    }
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(process.port),
        "prometheus.io/path": "/metrics",
    }
    return [
        _deployment(profile, name, component, spec.replicas, pod, annotations),
        _service(profile, name, component, process.port),
        _pdb(profile, name, component),
    ]


def autoscale_of(pool: Pool) -> Autoscale:
    """The pool's autoscale settings, or the defaults: from its replica count up to four times that, one waiting job
    per worker slot."""
    return pool.autoscale or Autoscale(
        min_replicas=pool.replicas, max_replicas=max(pool.replicas * 4, 1), queue_length=pool.concurrency
    )


def hosts_sessions(pool: Pool) -> bool:
    """Whether realtime sessions can reach this pool (a realtime model listed, or whole tiers served)."""
    from omnirt.registry.registry import all_specs

    if pool.tiers:
        return True
    listed = set(pool.model_ids)
    return any(spec.capabilities.realtime for spec in all_specs() if spec.id in listed)


def scaled_object(profile: Profile, pool: Pool, redis_url: str, name: str) -> dict[str, Any]:
    from omnirt import keys

    host, port, database = redis_address(redis_url)
    scale = autoscale_of(pool)
    base = {"address": f"{host}:{port}", "databaseIndex": str(database), "activationListLength": "0"}
    triggers: list[dict[str, Any]] = []
    for queue in pool_queues(pool):
        triggers.append(
            {
                "type": "redis",
                "name": f"jobs-{len(triggers)}",
                "metadata": {**base, "listName": queue, "listLength": str(scale.queue_length)},
            }
        )
        if hosts_sessions(pool):
            waiting = {**base, "listName": keys.session_queue(queue), "listLength": "1"}
            triggers.append({"type": "redis", "name": f"sessions-{len(triggers)}", "metadata": waiting})
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _meta(profile, name, pool.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "pollingInterval": scale.polling_s,
            "cooldownPeriod": scale.cooldown_s,
            "minReplicaCount": scale.min_replicas,
            "maxReplicaCount": scale.max_replicas,
            "triggers": triggers,
        },
    }


def pool_manifests(profile: Profile, process: Process, redis_url: str) -> list[dict[str, Any]]:
    pool = process.pool
    assert pool is not None
    name, component = f"omnirt-{pool.name}", pool.name
    container: dict[str, Any] = {
        "name": "worker",
        "image": pool.image or profile.image,
        "command": list(process.argv),
        "env": _env(process),
        "livenessProbe": {
            "exec": {"command": ["sh", "-c", f"celery -A omnirt inspect ping -d {pool.name}@$HOSTNAME --timeout 10"]},
            "initialDelaySeconds": 120,
            "periodSeconds": 60,
            "timeoutSeconds": 30,
            "failureThreshold": 3,
        },
        "volumeMounts": _storage_mounts(),
    }
    resource = ACCELERATOR_RESOURCE.get(pool.device)
    if resource and pool.devices_per_replica:
        container["resources"] = {"limits": {resource: pool.devices_per_replica}}
    pod = {
        "terminationGracePeriodSeconds": WORKER_GRACE_S,
        "securityContext": _pod_security(),
        "containers": [container],
        "volumes": _storage_volumes(),
    }
    return [
        _deployment(profile, name, component, pool.replicas, pod, {}),
        _pdb(profile, name, component),
        scaled_object(profile, pool, redis_url, name),
    ]


def flower(profile: Profile, process: Process) -> list[dict[str, Any]]:
    assert process.port is not None
    name, component = "omnirt-flower", "flower"
    container = {
        "name": "flower",
        "image": profile.image,
        "command": list(process.argv),
        "env": _env(process),
        "ports": [{"name": "http", "containerPort": process.port}],
        "readinessProbe": {"httpGet": {"path": "/healthcheck", "port": "http"}, "periodSeconds": 15},
    }
    pod = {"securityContext": _pod_security(), "containers": [container]}
    return [_deployment(profile, name, component, 1, pod, {}), _service(profile, name, component, process.port)]


def redis(profile: Profile) -> list[dict[str, Any]]:
    component = "redis"
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": profile.kubernetes.volume_sizes["redis"]}},
    }
    if profile.kubernetes.storage_class:
        claim["storageClassName"] = profile.kubernetes.storage_class
    container = {
        "name": "redis",
        "image": profile.redis.image,
        "command": redis_argv(profile, data_dir="/data", bind="0.0.0.0", port=6379),
        "ports": [{"name": "redis", "containerPort": 6379}],
        "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 15},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(profile, REDIS_SERVICE, component),
            "spec": {
                "selector": labels(profile, component),
                "ports": [{"name": "redis", "port": 6379, "targetPort": "redis"}],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": _meta(profile, REDIS_SERVICE, component),
            "spec": {
                "serviceName": REDIS_SERVICE,
                "replicas": 1,
                "selector": {"matchLabels": labels(profile, component)},
                "template": {
                    "metadata": {"labels": labels(profile, component)},
                    "spec": {"terminationGracePeriodSeconds": 30, "containers": [container]},
                },
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim}],
            },
        },
    ]


def storage(profile: Profile) -> list[dict[str, Any]]:
    claims = []
    for name, _, _ in VOLUMES:
        spec: dict[str, Any] = {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": profile.kubernetes.volume_sizes[name]}},
        }
        if profile.kubernetes.storage_class:
            spec["storageClassName"] = profile.kubernetes.storage_class
        claims.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": _meta(profile, f"omnirt-{name}", "storage"),
                "spec": spec,
            }
        )
    return claims


def render(profile: Profile) -> dict[str, str]:
    placement = container_placement(profile, redis_host=REDIS_SERVICE)
    files = {"storage.yaml": header(profile) + dump_yaml(*storage(profile))}
    if profile.redis.owned:
        files["redis.yaml"] = header(profile) + dump_yaml(*redis(profile))
    for process in processes(profile, placement):
        if process.role == "frontend":
            files[f"frontend-{process.name}.yaml"] = header(profile) + dump_yaml(*frontend(profile, process))
        elif process.role == "pool":
            manifests = pool_manifests(profile, process, placement.redis_url)
            files[f"pool-{process.name}.yaml"] = header(profile) + dump_yaml(*manifests)
        elif process.role == "flower":
            files["flower.yaml"] = header(profile) + dump_yaml(*flower(profile, process))
    return files
