"""What a profile runs: each process's command and its ``OMNIRT_*`` environment, for every target.

``omnirt profile up`` and the compose, Kubernetes and systemd renderers all start the same processes: an owned Redis
(with its append-only file), one ``omnirt serve`` per front end, one ``celery -A omnirt worker -Q ... -c N -n
<pool>@%h`` per pool replica, and Flower when the profile asks for it. What differs between targets is only where
things are (:class:`Placement`: the Redis URL, the storage paths, the bind address), so the commands and environments
are built here once.

Settings reach a process as environment variables, and only as the variables :mod:`omnirt.settings` declares: a
profile field or ``settings:`` entry names a :class:`~omnirt.settings.Settings` field, and
:meth:`Settings.as_environment` turns it into that field's variable, written so that the field's own parser reads it
back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from omnirt.profiles.schema import Frontend, Pool, Profile
from omnirt.settings import Settings

#: Options a profile sets through its own structure; ``settings:`` maps may not set them as well.
STRUCTURAL_OPTIONS = {
    "redis_url": "redis",
    "models_dir": "storage.models",
    "artifact_dir": "storage.artifacts",
    "avatar_dir": "storage.avatars",
    "preload": "pools[].preload",
    "memory_budget_gb": "pools[].memory_budget_gb",
    "session_capacity": "pools[].session_capacity",
    "models": "frontends[].models",
    "model_tiers": "frontends[].tiers",
    "api_keys": "frontends[].keys_file",
    "api_key_file": "frontends[].keys_file",
    "worker_device": "pools[].device",
    "worker_node": "pools[].name (the worker sets it)",
    "worker_queues": "pools[].queues (the worker sets it)",
}

#: Container paths (compose, Kubernetes).
CONTAINER_MODELS = "/var/lib/omnirt/models"
CONTAINER_ARTIFACTS = "/var/lib/omnirt/artifacts"
CONTAINER_AVATARS = "/var/lib/omnirt/avatars"

#: Seconds a worker may take to stop: Celery's soft shutdown (25 s, omnirt.tasks.app) plus its cold shutdown.
WORKER_STOP_S = 25
STOP_GRACE_S = 40  # what a supervisor waits before SIGKILL: above the worker's soft shutdown


def declared_variables() -> set[str]:
    """Every ``OMNIRT_*`` variable :mod:`omnirt.settings` declares (its options and their older names)."""
    from omnirt.settings import ALTERNATE_NAMES

    return {variable for _, variable, _, _ in Settings.options()} | set(ALTERNATE_NAMES.values())


@dataclass(frozen=True)
class Placement:
    """Where the fleet's shared things are, seen from its processes on one target."""

    redis_url: str
    models_dir: str | None
    artifact_dir: str | None
    avatar_dir: str | None
    bind_host: str | None = None  # front ends' bind address (None: each front end's own host)
    redis_dir: str = "/data"  # an owned Redis's data directory (its append-only file)


def local_placement(profile: Profile, base: Path | None = None) -> Placement:
    """Placement on this host (``up``, systemd): the profile's paths, relative ones resolved against ``base``."""

    def resolve(path: str | None) -> str | None:
        if path is None:
            return None
        candidate = Path(path).expanduser()
        return str(candidate if candidate.is_absolute() or base is None else (base / candidate).resolve())

    return Placement(
        redis_url=owned_redis_url(profile) if profile.redis.owned else str(profile.redis.url),
        models_dir=resolve(profile.storage.models),
        artifact_dir=resolve(profile.storage.artifacts),
        avatar_dir=resolve(profile.storage.avatars),
        redis_dir=str(resolve(profile.redis.dir or f".omnirt/redis/{profile.name}")),
    )


def container_placement(profile: Profile, redis_host: str = "redis") -> Placement:
    """Placement in containers (compose, Kubernetes): the ``redis_host`` service when owned, fixed volume paths."""
    return Placement(
        redis_url=f"redis://{redis_host}:6379/0" if profile.redis.owned else str(profile.redis.url),
        models_dir=CONTAINER_MODELS,
        artifact_dir=CONTAINER_ARTIFACTS,
        avatar_dir=CONTAINER_AVATARS,
        bind_host="0.0.0.0",
    )


def owned_redis_url(profile: Profile) -> str:
    host = "127.0.0.1" if profile.redis.bind in ("0.0.0.0", "::", "") else profile.redis.bind
    return f"redis://{host}:{profile.redis.port}/0"


def redis_address(url: str) -> tuple[str, int, int]:
    """(host, port, database index) of a Redis URL."""
    parts = urlsplit(url)
    database = parts.path.strip("/") or "0"
    return parts.hostname or "127.0.0.1", parts.port or 6379, int(database) if database.isdigit() else 0


@dataclass(frozen=True)
class Process:
    """One process (or, for containers, one service) of the fleet."""

    name: str
    role: str  # redis | frontend | pool | flower
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    replicas: int = 1
    pool: Pool | None = None
    frontend: Frontend | None = None


def pool_queues(pool: Pool) -> list[str]:
    """The Celery queues a pool consumes: its own list, else derived from its models and tiers."""
    if pool.queues:
        return list(dict.fromkeys(pool.queues))
    from omnirt.tasks.routing import worker_queues

    return worker_queues(pool.device, tiers=pool.tiers, models=pool.model_ids)


def common_env(profile: Profile, placement: Placement) -> dict[str, str]:
    """What every process of the fleet shares: Redis, storage, the profile's settings and variables, OTLP."""
    env = dict(profile.env)
    env.update(
        Settings.as_environment(
            {
                "redis_url": placement.redis_url,
                "models_dir": placement.models_dir,
                "artifact_dir": placement.artifact_dir,
                "avatar_dir": placement.avatar_dir,
                **profile.settings,
            }
        )
    )
    if profile.observability.otlp_endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = profile.observability.otlp_endpoint
    return env


def frontend_env(profile: Profile, frontend: Frontend, placement: Placement) -> dict[str, str]:
    env = common_env(profile, placement)
    env.update(frontend.env)
    values = {
        "models": frontend.models,
        "model_tiers": frontend.tiers,
        "api_key_file": frontend.keys_file,
        **frontend.settings,
    }
    env.update(Settings.as_environment(values))
    if profile.observability.otlp_endpoint:
        env["OTEL_SERVICE_NAME"] = f"omnirt-{frontend.name}"
    return env


def pool_env(profile: Profile, pool: Pool, placement: Placement) -> dict[str, str]:
    env = common_env(profile, placement)
    env.update(pool.env)
    values: dict[str, Any] = {
        "backend": pool.device,
        "preload": pool.preload,
        "memory_budget_gb": pool.memory_budget_gb or None,
        "session_capacity": pool.session_capacity,
        "worker_device": pool.device,
        **pool.settings,
    }
    env.update(Settings.as_environment(values))
    if profile.observability.otlp_endpoint:
        env["OTEL_SERVICE_NAME"] = f"omnirt-{pool.name}"
    return env


def redis_argv(profile: Profile, *, data_dir: str, bind: str | None = None, port: int | None = None) -> list[str]:
    """An owned Redis: append-only file on (fsync every second), no RDB snapshots, its data in ``data_dir``."""
    return [
        "redis-server",
        "--bind",
        bind or profile.redis.bind,
        "--port",
        str(port or profile.redis.port),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--dir",
        data_dir,
    ]


def frontend_argv(frontend: Frontend, placement: Placement) -> list[str]:
    return [
        "omnirt",
        "serve",
        "--host",
        placement.bind_host or frontend.host,
        "--port",
        str(frontend.port),
        "--workers",
        str(frontend.workers),
        "--threads",
        str(frontend.threads),
    ]


def worker_argv(pool: Pool, node: str) -> list[str]:
    """``celery -A omnirt worker`` on the pool's queues; ``node`` is its Celery node name (``%h``: the host)."""
    return [
        "celery",
        "-A",
        "omnirt",
        "worker",
        "-Q",
        ",".join(pool_queues(pool)),
        "-c",
        str(pool.concurrency),
        "-n",
        node,
        "--pool",
        "prefork",
        "-E",
        "--loglevel",
        "INFO",
    ]


def flower_argv(port: int, address: str) -> list[str]:
    return ["celery", "-A", "omnirt", "flower", f"--port={port}", f"--address={address}"]


def processes(profile: Profile, placement: Placement, *, one_per_replica: bool = False) -> list[Process]:
    """The fleet's processes. ``one_per_replica`` (``up``): a process per pool replica (``<pool>-<n>@%h``);
    otherwise one entry per pool with its replica count (containers name their own hosts)."""
    result: list[Process] = []
    if profile.redis.owned:
        argv = redis_argv(profile, data_dir=placement.redis_dir)
        result.append(Process("redis", "redis", tuple(argv), port=profile.redis.port))
    for frontend in profile.frontends:
        result.append(
            Process(
                frontend.name,
                "frontend",
                tuple(frontend_argv(frontend, placement)),
                frontend_env(profile, frontend, placement),
                port=frontend.port,
                replicas=frontend.replicas,
                frontend=frontend,
            )
        )
    for pool in profile.pools:
        env = pool_env(profile, pool, placement)
        if one_per_replica and pool.replicas > 1:
            for index in range(1, pool.replicas + 1):
                name = f"{pool.name}-{index}"
                result.append(Process(name, "pool", tuple(worker_argv(pool, f"{name}@%h")), env, pool=pool))
        else:
            replicas = 1 if one_per_replica else pool.replicas
            argv = tuple(worker_argv(pool, f"{pool.name}@%h"))
            result.append(Process(pool.name, "pool", argv, env, replicas=replicas, pool=pool))
    if profile.observability.flower_port:
        port = profile.observability.flower_port
        env = common_env(profile, placement)
        argv = flower_argv(port, placement.bind_host or "127.0.0.1")
        result.append(Process("flower", "flower", tuple(argv), env, port=port))
    return result
