"""The runtime profile's format: a YAML (or JSON) file describing one deployment, parsed with marshmallow.

A profile names its worker pools (models or tiers, device, preload, concurrency, memory budget, session capacity,
replicas, queues), its front ends (port, gunicorn workers and threads, API keys file), Redis (a URL, or ``owned: true``
to start one with AOF), where artifacts, avatars and weights live, and the observability endpoints (Prometheus,
Grafana, Flower, an OTLP collector). Loading checks the structure only and reports every structural problem at once;
:mod:`omnirt.profiles.validation` checks the profile against the registry. :func:`json_schema` publishes the format
(``omnirt profile schema``).

Settings are never invented here: pool and front-end fields map onto the ``OMNIRT_*`` options declared in
:mod:`omnirt.settings` (see :mod:`omnirt.profiles.plan`), and ``settings:`` maps name any other declared option by
its field name (``torch_threads: 2``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

DEVICES = ("cpu", "cuda", "ascend")
TIER_NAMES = ("core", "adjacent", "experimental")
NAME = validate.Regexp(r"^[a-z][a-z0-9-]{0,39}$", error="lower-case letters, digits and '-', starting with a letter")
PORT = validate.Range(min=1, max=65535)
FORMAT_VERSION = 1


class ProfileError(Exception):
    """A profile that cannot be read: every structural problem, as ``path: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# -- the profile, as the rest of the package sees it -------------------------------------------------------------


@dataclass(frozen=True)
class ModelRef:
    """A model a pool serves, optionally with the tasks the profile expects of it."""

    id: str
    tasks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Autoscale:
    """How KEDA scales a pool on the length of its Celery queues (and its realtime session lists)."""

    min_replicas: int
    max_replicas: int
    queue_length: int  # waiting jobs per replica that trigger a scale-up
    polling_s: int = 15
    cooldown_s: int = 300


@dataclass(frozen=True)
class Pool:
    """Identical Celery worker processes on one device, serving a set of models (or whole tiers)."""

    name: str
    device: str
    models: tuple[ModelRef, ...] = ()
    tiers: tuple[str, ...] = ()
    preload: tuple[str, ...] = ()
    concurrency: int = 1
    memory_budget_gb: float = 0.0
    session_capacity: int | None = None
    replicas: int = 1
    queues: tuple[str, ...] = ()  # empty: derived from models and tiers (omnirt.tasks.routing)
    accelerators: int | None = None  # devices per replica (GPUs or NPUs); default 1 on cuda/ascend
    image: str | None = None
    autoscale: Autoscale | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def model_ids(self) -> tuple[str, ...]:
        return tuple(model.id for model in self.models)

    @property
    def devices_per_replica(self) -> int:
        if self.accelerators is not None:
            return self.accelerators
        return 0 if self.device == "cpu" else 1


@dataclass(frozen=True)
class Frontend:
    """An ``omnirt serve`` front end (gunicorn with gevent workers) in front of the fleet."""

    name: str
    port: int = 8000
    host: str = "127.0.0.1"
    workers: int = 2
    threads: int = 64
    keys_file: str | None = None
    replicas: int = 1
    models: tuple[str, ...] = ()  # OMNIRT_MODELS: what this front end enables (empty: every registered model)
    tiers: tuple[str, ...] = ()  # OMNIRT_MODEL_TIERS
    settings: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Redis:
    """The fleet's Redis: an existing one (``url``) or one the profile starts (``owned``, append-only file on)."""

    url: str | None = None
    owned: bool = False
    port: int = 6379
    bind: str = "127.0.0.1"
    dir: str | None = None  # where an owned Redis keeps its append-only file (up, systemd)
    image: str = "redis:7.4-alpine"


@dataclass(frozen=True)
class Storage:
    """Where weights, artifacts and prepared avatars live (shared by every process of the fleet)."""

    models: str | None = None
    artifacts: str | None = None
    avatars: str | None = None


@dataclass(frozen=True)
class Observability:
    prometheus_port: int | None = None  # Prometheus (compose), scraping the front ends and Flower
    prometheus_image: str = "prom/prometheus:v3.5.0"
    scrape_interval_s: int = 15
    grafana_port: int | None = None  # Grafana (compose), its Prometheus datasource provisioned
    grafana_image: str = "grafana/grafana:12.1.0"
    flower_port: int | None = None  # Flower, on every target
    otlp_endpoint: str | None = None  # OTEL_EXPORTER_OTLP_ENDPOINT for every process


@dataclass(frozen=True)
class Install:
    """Where systemd finds OmniRT on a host: the virtual environment, the user and the working directory."""

    prefix: str = "/opt/omnirt/venv"
    user: str = "omnirt"
    workdir: str = "/var/lib/omnirt"


@dataclass(frozen=True)
class Kubernetes:
    storage_class: str | None = None
    volume_sizes: dict[str, str] = field(
        default_factory=lambda: {"models": "200Gi", "artifacts": "100Gi", "avatars": "10Gi", "redis": "20Gi"}
    )


@dataclass(frozen=True)
class Profile:
    name: str
    pools: tuple[Pool, ...]
    frontends: tuple[Frontend, ...]
    redis: Redis
    description: str = ""
    version: int = FORMAT_VERSION
    image: str = "omnirt:cpu"
    storage: Storage = field(default_factory=Storage)
    observability: Observability = field(default_factory=Observability)
    install: Install = field(default_factory=Install)
    kubernetes: Kubernetes = field(default_factory=Kubernetes)
    settings: dict[str, Any] = field(default_factory=dict)  # options for every process, by field name
    env: dict[str, str] = field(default_factory=dict)  # other variables for every process (HF_HUB_OFFLINE, ...)
    source: str | None = None  # the file it came from


# -- marshmallow schemas ---------------------------------------------------------------------------------------------


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class ModelRefField(fields.Field):
    """A model id (``sd15``), or a mapping ``{id: sd15, tasks: [text2image]}``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> ModelRef:
        if isinstance(value, str) and value.strip():
            return ModelRef(value.strip())
        if isinstance(value, dict):
            unknown = set(value) - {"id", "tasks"}
            if unknown:
                raise ValidationError(f"unknown key(s) {', '.join(sorted(unknown))}; a model is an id or {{id, tasks}}")
            model_id, tasks = value.get("id"), value.get("tasks", [])
            if not isinstance(model_id, str) or not model_id.strip():
                raise ValidationError("a model needs an id")
            if isinstance(tasks, str):
                tasks = [tasks]
            if not isinstance(tasks, list) or not all(isinstance(task, str) for task in tasks):
                raise ValidationError("tasks must be a list of task names")
            return ModelRef(model_id.strip(), tuple(tasks))
        raise ValidationError("a model is an id or a mapping {id, tasks}")


def _settings_field(description: str) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]*$", error="a settings field name")),
        values=fields.Raw(),
        load_default=dict,
        metadata={"description": description},
    )


def _env_field() -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]*$", error="an environment variable")),
        values=fields.String(),
        load_default=dict,
        metadata={"description": "other environment variables (not declared OMNIRT_* options: use settings)"},
    )


class AutoscaleSchema(_Strict):
    min_replicas = fields.Integer(validate=validate.Range(min=0), metadata={"description": "default: replicas"})
    max_replicas = fields.Integer(validate=validate.Range(min=1), metadata={"description": "default: 4 x replicas"})
    queue_length = fields.Integer(
        validate=validate.Range(min=1), metadata={"description": "waiting jobs per replica (default: concurrency)"}
    )
    polling_s = fields.Integer(load_default=15, validate=validate.Range(min=1))
    cooldown_s = fields.Integer(load_default=300, validate=validate.Range(min=0))


class PoolSchema(_Strict):
    name = fields.String(required=True, validate=NAME)
    device = fields.String(required=True, validate=validate.OneOf(DEVICES))
    models = fields.List(
        ModelRefField(
            metadata={
                "oneOf": [
                    {"type": "string"},
                    {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "tasks": {"type": "array", "items": {"type": "string"}},
                        },
                        "required": ["id"],
                        "additionalProperties": False,
                    },
                ]
            }
        ),
        load_default=list,
        metadata={"description": "model ids (or {id, tasks}) this pool serves"},
    )
    tiers = fields.List(
        fields.String(validate=validate.OneOf(TIER_NAMES)),
        load_default=list,
        metadata={"description": "whole tiers this pool serves on its device (omnirt.<tier>.<device>)"},
    )
    preload = fields.Raw(
        load_default=list,
        metadata={
            "description": "models loaded at start (OMNIRT_PRELOAD); true: every model listed",
            "oneOf": [{"type": "boolean"}, {"type": "array", "items": {"type": "string"}}],
        },
    )
    concurrency = fields.Integer(load_default=1, validate=validate.Range(min=1, max=64))
    memory_budget_gb = fields.Float(
        load_default=0.0, validate=validate.Range(min=0), metadata={"description": "OMNIRT_MEMORY_BUDGET_GB (0: free)"}
    )
    session_capacity = fields.Integer(
        validate=validate.Range(min=0, max=256), metadata={"description": "OMNIRT_SESSION_CAPACITY"}
    )
    replicas = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1000))
    queues = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        load_default=list,
        metadata={"description": "Celery queues (default: derived from models and tiers)"},
    )
    accelerators = fields.Integer(
        validate=validate.Range(min=0, max=64), metadata={"description": "GPUs/NPUs per replica (default 1 off cpu)"}
    )
    image = fields.String(metadata={"description": "container image (default: the profile's)"})
    autoscale = fields.Nested(AutoscaleSchema)
    settings = _settings_field("other OMNIRT_* options for this pool, by settings field name")
    env = _env_field()

    @validates_schema
    def _preload_shape(self, data: dict[str, Any], **_: Any) -> None:
        preload = data.get("preload")
        if isinstance(preload, bool):
            return
        if not isinstance(preload, list) or not all(isinstance(item, str) for item in preload):
            raise ValidationError("a list of model ids, or true", "preload")


class FrontendSchema(_Strict):
    name = fields.String(required=True, validate=NAME)
    port = fields.Integer(load_default=8000, validate=PORT)
    host = fields.String(load_default="127.0.0.1", metadata={"description": "bind address (up and systemd)"})
    workers = fields.Integer(load_default=2, validate=validate.Range(min=1, max=256))
    threads = fields.Integer(load_default=64, validate=validate.Range(min=1, max=4096))
    keys_file = fields.String(metadata={"description": "API keys, one per line (OMNIRT_API_KEY_FILE)"})
    replicas = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1000))
    models = fields.List(fields.String(), load_default=list, metadata={"description": "OMNIRT_MODELS"})
    tiers = fields.List(
        fields.String(validate=validate.OneOf(TIER_NAMES)),
        load_default=list,
        metadata={"description": "OMNIRT_MODEL_TIERS"},
    )
    settings = _settings_field("other OMNIRT_* options for this front end, by settings field name")
    env = _env_field()


class RedisSchema(_Strict):
    url = fields.String(validate=validate.Regexp(r"^rediss?://", error="a redis:// or rediss:// URL"))
    owned = fields.Boolean(load_default=False, metadata={"description": "start a Redis with AOF persistence"})
    port = fields.Integer(load_default=6379, validate=PORT)
    bind = fields.String(load_default="127.0.0.1")
    dir = fields.String(metadata={"description": "where an owned Redis keeps its append-only file"})
    image = fields.String(load_default="redis:7.4-alpine")

    @validates_schema
    def _url_or_owned(self, data: dict[str, Any], **_: Any) -> None:
        if bool(data.get("url")) == bool(data.get("owned")):
            raise ValidationError("give either url (an existing Redis) or owned: true (start one)", "_schema")


class StorageSchema(_Strict):
    models = fields.String(metadata={"description": "OMNIRT_MODELS_DIR"})
    artifacts = fields.String(metadata={"description": "OMNIRT_ARTIFACT_DIR"})
    avatars = fields.String(metadata={"description": "OMNIRT_AVATAR_DIR"})


class PrometheusSchema(_Strict):
    port = fields.Integer(load_default=9090, validate=PORT)
    image = fields.String(load_default="prom/prometheus:v3.5.0")
    scrape_interval_s = fields.Integer(load_default=15, validate=validate.Range(min=1))


class GrafanaSchema(_Strict):
    port = fields.Integer(load_default=3000, validate=PORT)
    image = fields.String(load_default="grafana/grafana:12.1.0")


class FlowerSchema(_Strict):
    port = fields.Integer(load_default=5555, validate=PORT)


class ObservabilitySchema(_Strict):
    prometheus = fields.Nested(PrometheusSchema)
    grafana = fields.Nested(GrafanaSchema)
    flower = fields.Nested(FlowerSchema)
    otlp_endpoint = fields.String(
        validate=validate.Regexp(r"^https?://", error="an http(s):// URL"),
        metadata={"description": "OTLP collector (OTEL_EXPORTER_OTLP_ENDPOINT)"},
    )


class InstallSchema(_Strict):
    prefix = fields.String(load_default="/opt/omnirt/venv", metadata={"description": "virtualenv holding omnirt"})
    user = fields.String(load_default="omnirt")
    workdir = fields.String(load_default="/var/lib/omnirt")


class KubernetesSchema(_Strict):
    storage_class = fields.String()
    volume_sizes = fields.Dict(
        keys=fields.String(validate=validate.OneOf(("models", "artifacts", "avatars", "redis"))),
        values=fields.String(validate=validate.Regexp(r"^[0-9]+(Mi|Gi|Ti)$", error="a size such as 100Gi")),
    )


class ProfileSchema(_Strict):
    name = fields.String(required=True, validate=NAME)
    description = fields.String(load_default="")
    version = fields.Integer(load_default=FORMAT_VERSION, validate=validate.Equal(FORMAT_VERSION))
    image = fields.String(load_default="omnirt:cpu", metadata={"description": "container image for compose/kubernetes"})
    redis = fields.Nested(RedisSchema, required=True)
    storage = fields.Nested(StorageSchema, load_default=dict)
    frontends = fields.List(fields.Nested(FrontendSchema), required=True, validate=validate.Length(min=1))
    pools = fields.List(fields.Nested(PoolSchema), required=True, validate=validate.Length(min=1))
    observability = fields.Nested(ObservabilitySchema, load_default=dict)
    install = fields.Nested(InstallSchema, load_default=dict)
    kubernetes = fields.Nested(KubernetesSchema, load_default=dict)
    settings = _settings_field("OMNIRT_* options for every process, by settings field name")
    env = _env_field()

    @post_load
    def _build(self, data: dict[str, Any], **_: Any) -> Profile:
        return _profile(data)


# -- building the dataclasses ------------------------------------------------------------------------------------------


def _pool(data: dict[str, Any]) -> Pool:
    models = tuple(data["models"])
    preload = data["preload"]
    preload_ids = tuple(model.id for model in models) if preload is True else tuple(preload or ())
    scale = data.get("autoscale")
    replicas = data["replicas"]
    autoscale = None
    if scale is not None:
        autoscale = Autoscale(
            min_replicas=scale.get("min_replicas", replicas),
            max_replicas=scale.get("max_replicas", max(replicas * 4, scale.get("min_replicas", replicas), 1)),
            queue_length=scale.get("queue_length", data["concurrency"]),
            polling_s=scale["polling_s"],
            cooldown_s=scale["cooldown_s"],
        )
    return Pool(
        name=data["name"],
        device=data["device"],
        models=models,
        tiers=tuple(data["tiers"]),
        preload=preload_ids,
        concurrency=data["concurrency"],
        memory_budget_gb=data["memory_budget_gb"],
        session_capacity=data.get("session_capacity"),
        replicas=replicas,
        queues=tuple(data["queues"]),
        accelerators=data.get("accelerators"),
        image=data.get("image"),
        autoscale=autoscale,
        settings=dict(data["settings"]),
        env=dict(data["env"]),
    )


def _frontend(data: dict[str, Any]) -> Frontend:
    return Frontend(
        name=data["name"],
        port=data["port"],
        host=data["host"],
        workers=data["workers"],
        threads=data["threads"],
        keys_file=data.get("keys_file"),
        replicas=data["replicas"],
        models=tuple(data["models"]),
        tiers=tuple(data["tiers"]),
        settings=dict(data["settings"]),
        env=dict(data["env"]),
    )


def _profile(data: dict[str, Any]) -> Profile:
    observability = data["observability"]
    prometheus, grafana, flower = (observability.get(key) for key in ("prometheus", "grafana", "flower"))
    kubernetes = data["kubernetes"]
    return Profile(
        name=data["name"],
        description=data["description"],
        version=data["version"],
        image=data["image"],
        redis=Redis(**data["redis"]),
        storage=Storage(**data["storage"]),
        frontends=tuple(_frontend(item) for item in data["frontends"]),
        pools=tuple(_pool(item) for item in data["pools"]),
        observability=Observability(
            prometheus_port=prometheus["port"] if prometheus else None,
            prometheus_image=prometheus["image"] if prometheus else Observability.prometheus_image,
            scrape_interval_s=prometheus["scrape_interval_s"] if prometheus else Observability.scrape_interval_s,
            grafana_port=grafana["port"] if grafana else None,
            grafana_image=grafana["image"] if grafana else Observability.grafana_image,
            flower_port=flower["port"] if flower else None,
            otlp_endpoint=observability.get("otlp_endpoint"),
        ),
        install=Install(**data["install"]),
        kubernetes=Kubernetes(
            storage_class=kubernetes.get("storage_class"),
            volume_sizes={**Kubernetes().volume_sizes, **kubernetes.get("volume_sizes", {})},
        ),
        settings=dict(data["settings"]),
        env=dict(data["env"]),
    )


def _flatten(messages: Any, path: str = "") -> list[str]:
    """marshmallow's nested error dict as ``path: message`` lines, in document order."""
    if isinstance(messages, dict):
        lines = []
        for key, value in messages.items():
            part = "" if key == "_schema" else str(key)
            lines += _flatten(value, f"{path}.{part}" if path and part else path or part)
        return lines
    if isinstance(messages, list):
        if all(isinstance(item, str) for item in messages):
            return [f"{path or '(profile)'}: {item}" for item in messages]
        return [line for item in messages for line in _flatten(item, path)]
    return [f"{path or '(profile)'}: {messages}"]


def parse_profile(data: Any, source: str | None = None) -> Profile:
    """A :class:`Profile` from already-parsed YAML/JSON; :class:`ProfileError` lists every structural problem."""
    if not isinstance(data, dict):
        raise ProfileError(["(profile): a profile is a mapping (name, redis, frontends, pools, ...)"])
    try:
        profile = ProfileSchema().load(data)
    except ValidationError as exc:
        raise ProfileError(_flatten(exc.messages)) from None
    return _with_source(profile, source)


def _with_source(profile: Profile, source: str | None) -> Profile:
    from dataclasses import replace

    return replace(profile, source=source)


def load_profile(path: str | Path) -> Profile:
    """Read and parse a profile file (YAML or JSON)."""
    import yaml

    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text())
    except OSError as exc:
        raise ProfileError([f"{file}: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ProfileError([f"{file}: not YAML: {' '.join(str(exc).split())}"]) from None
    return parse_profile(data, str(file))


def json_schema() -> dict[str, Any]:
    """The profile format as a JSON Schema (2020-12), generated from the marshmallow schemas."""
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    plugin = MarshmallowPlugin(schema_name_resolver=lambda schema: None)  # nested schemas inline
    APISpec("omnirt-profile", str(FORMAT_VERSION), "3.1.0", plugins=[plugin])
    assert plugin.converter is not None
    schema = plugin.converter.schema2jsonschema(ProfileSchema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://omnirt.dev/schemas/profile-v1.json",
        "title": "OmniRT runtime profile",
        "description": (__doc__ or "").strip().split("\n\n")[0],
        **schema,
        "additionalProperties": False,
    }


__all__ = [
    "DEVICES",
    "Autoscale",
    "Frontend",
    "Install",
    "Kubernetes",
    "ModelRef",
    "Observability",
    "Pool",
    "Profile",
    "ProfileError",
    "Redis",
    "Storage",
    "json_schema",
    "load_profile",
    "parse_profile",
]
