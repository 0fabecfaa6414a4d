"""Runtime settings shared by the API, the workers and the CLI, read from ``OMNIRT_*`` environment variables.

The CLI turns its flags into environment variables before anything reads them, so a gunicorn worker or a Celery
child process sees the same settings as the command that started it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _flag(name: str) -> bool | None:
    """A yes/no variable; None when unset or empty."""
    value = os.environ.get(name, "").strip().lower()
    return None if not value else value in ("1", "true", "yes", "on")


def _list(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None
    artifact_dir: Path = Path("outputs")
    job_ttl_s: int = 7 * 24 * 3600
    events_ttl_s: int = 3600
    events_maxlen: int = 10_000
    heartbeat_interval_s: float = 2.0
    heartbeat_ttl_s: float = 6.0
    max_attempts: int = 2
    visibility_timeout_s: int = 6 * 3600
    sync_timeout_s: float = 300.0
    max_request_bytes: int = 64 * 1024 * 1024
    max_queued_jobs: int = 10_000
    api_keys: tuple[str, ...] = ()
    model_tiers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    model_aliases: dict[str, str] = field(default_factory=dict)
    default_device: str = "cpu"
    embedded_workers: int = 1
    sse_keepalive_s: float = 15.0
    idle_unload_s: float = 0.0
    memory_budget_gb: float = 0.0
    cache_size: int = 4
    avatar_dir: Path | None = None  # default: "avatars" beside the artifact directory
    max_avatar_video_bytes: int = 50 * 2**20
    session_flush_s: float = 0.3
    session_capacity: int = 4  # realtime sessions one worker process hosts at once, beside its job slot
    torch_threads: int = 1  # intra-op threads per worker process; 0 leaves torch's default (every core)
    frame_lanes: int = 0  # parallel lip-sync model calls per worker process, each on one core; 0: see lanes()
    input_roots: tuple[Path, ...] = ()  # server folders whose files requests may name as inputs (OMNIRT_INPUT_ROOTS)
    # model_path only a hub id or inside the models dir (runtime/weights.py); None: yes in fleet processes
    confine_model_paths: bool | None = None
    limits: dict[str, float] = field(default_factory=dict)  # request size and job time limits (registry/limits.py)
    redis_max_connections: int = 2000  # per Redis client pool of a process; past it, requests wait for a connection
    # fleet front end (serve.py): "gevent" (event-driven: a stream holds a greenlet, not a thread) or "gthread"
    frontend_worker_class: str = "gevent"
    frontend_connections: int = 10_000  # open connections per gevent front-end process (streams included)

    @property
    def avatar_root(self) -> Path:
        """Where prepared avatars live (OMNIRT_AVATAR_DIR), shared by every process of the fleet."""
        return self.avatar_dir or self.artifact_dir.resolve().parent / "avatars"

    def lanes(self) -> int:
        """Frame lanes for this process: ``OMNIRT_FRAME_LANES``, else one per core (at most 4) when embedded (one
        process serves everything) and one in a fleet worker process (a host runs several)."""
        if self.frame_lanes > 0:
            return self.frame_lanes
        return min(4, len(os.sched_getaffinity(0))) if self.embedded else 1

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    @classmethod
    def from_env(cls) -> Settings:
        keys = list(_list("OMNIRT_API_KEYS"))
        key_file = os.environ.get("OMNIRT_API_KEY_FILE")
        if key_file:
            keys += [line.strip() for line in Path(key_file).read_text().splitlines() if line.strip()]
        return cls(
            redis_url=os.environ.get("OMNIRT_REDIS_URL") or None,
            artifact_dir=Path(os.environ.get("OMNIRT_ARTIFACT_DIR", os.environ.get("OMNIRT_OUTPUT_DIR", "outputs"))),
            job_ttl_s=_int("OMNIRT_JOB_TTL_S", cls.job_ttl_s),
            events_ttl_s=_int("OMNIRT_EVENTS_TTL_S", cls.events_ttl_s),
            events_maxlen=_int("OMNIRT_EVENTS_MAXLEN", cls.events_maxlen),
            heartbeat_interval_s=_float("OMNIRT_HEARTBEAT_INTERVAL_S", cls.heartbeat_interval_s),
            heartbeat_ttl_s=_float("OMNIRT_HEARTBEAT_TTL_S", cls.heartbeat_ttl_s),
            max_attempts=_int("OMNIRT_MAX_ATTEMPTS", cls.max_attempts),
            visibility_timeout_s=_int("OMNIRT_VISIBILITY_TIMEOUT_S", cls.visibility_timeout_s),
            sync_timeout_s=_float("OMNIRT_SYNC_TIMEOUT_S", cls.sync_timeout_s),
            max_request_bytes=_int("OMNIRT_MAX_REQUEST_BYTES", cls.max_request_bytes),
            max_queued_jobs=_int("OMNIRT_MAX_QUEUED_JOBS", cls.max_queued_jobs),
            api_keys=tuple(dict.fromkeys(keys)),
            model_tiers=_list("OMNIRT_MODEL_TIERS"),
            models=_list("OMNIRT_MODELS"),
            model_aliases=_aliases(os.environ.get("OMNIRT_MODEL_ALIASES")),
            default_device=os.environ.get("OMNIRT_DEFAULT_DEVICE", cls.default_device),
            embedded_workers=_int("OMNIRT_EMBEDDED_WORKERS", cls.embedded_workers),
            sse_keepalive_s=_float("OMNIRT_SSE_KEEPALIVE_S", cls.sse_keepalive_s),
            idle_unload_s=_float("OMNIRT_IDLE_UNLOAD_S", cls.idle_unload_s),
            memory_budget_gb=_float("OMNIRT_MEMORY_BUDGET_GB", cls.memory_budget_gb),
            cache_size=_int("OMNIRT_CACHE_SIZE", cls.cache_size),
            avatar_dir=Path(os.environ["OMNIRT_AVATAR_DIR"]) if os.environ.get("OMNIRT_AVATAR_DIR") else None,
            max_avatar_video_bytes=_int("OMNIRT_MAX_AVATAR_VIDEO_BYTES", cls.max_avatar_video_bytes),
            session_flush_s=_float("OMNIRT_SESSION_FLUSH_S", cls.session_flush_s),
            session_capacity=_int("OMNIRT_SESSION_CAPACITY", cls.session_capacity),
            torch_threads=_int("OMNIRT_TORCH_THREADS", cls.torch_threads),
            frame_lanes=_int("OMNIRT_FRAME_LANES", cls.frame_lanes),
            input_roots=tuple(
                Path(root) for root in os.environ.get("OMNIRT_INPUT_ROOTS", "").split(os.pathsep) if root
            ),
            confine_model_paths=_flag("OMNIRT_CONFINE_MODEL_PATHS"),
            limits=_limits(os.environ.get("OMNIRT_LIMITS")),
            redis_max_connections=_int("OMNIRT_REDIS_MAX_CONNECTIONS", cls.redis_max_connections),
            frontend_worker_class=os.environ.get("OMNIRT_FRONTEND_WORKER_CLASS", cls.frontend_worker_class),
            frontend_connections=_int("OMNIRT_FRONTEND_CONNECTIONS", cls.frontend_connections),
        )


def _limits(raw: str | None) -> dict[str, float]:
    """``OMNIRT_LIMITS``: a JSON object of limits (``{"max_steps": 200, "time_limit_s": 900}``)."""
    if not raw:
        return {}
    import json

    from omnirt.registry.limits import DEFAULT_LIMITS

    value = json.loads(raw)
    if not isinstance(value, dict) or not all(
        key in DEFAULT_LIMITS and isinstance(number, (int, float)) and number > 0 for key, number in value.items()
    ):
        raise ValueError(f"OMNIRT_LIMITS must be a JSON object with positive numbers for {', '.join(DEFAULT_LIMITS)}")
    return {key: float(number) for key, number in value.items()}


def _aliases(path: str | None) -> dict[str, str]:
    """A model alias map from a JSON or YAML file: a flat mapping, or one nested under ``aliases``."""
    if not path:
        return {}
    import json

    text = Path(path).read_text()
    if path.endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    data = data.get("aliases", data) if isinstance(data, dict) else {}
    return {str(key): str(value) for key, value in data.items()}
