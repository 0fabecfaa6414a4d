"""Runtime settings shared by the API, the workers, the model families and the CLI, read from ``OMNIRT_*``
environment variables.

Each option is declared once on :class:`Settings` with :func:`option`: its type (the annotation), default,
environment variable and doc; :meth:`Settings.from_env` reads them all the same way, and :meth:`Settings.value` reads
one where code runs without a settings object at hand. This module is the only reader of ``OMNIRT_*`` variables
(``tests/test_architecture.py`` checks). The CLI turns its flags into environment variables before anything reads
them, so a gunicorn worker or a Celery child process sees the same settings as the command that started it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any


def option(
    env: str, doc: str, *, parse: Callable[[str], Any] | None = None, secret: bool = False, **kwargs: Any
) -> Any:
    """Declare one setting: its environment variable, a one-line doc, and how to read it (by default, from the
    field's type); ``secret`` options are never printed. Used as a dataclass ``field`` with its ``default`` or
    ``default_factory``."""
    return field(metadata={"env": env, "doc": doc, "parse": parse, "secret": secret}, **kwargs)


def _flag(raw: str) -> bool | None:
    """A yes/no variable; None when empty."""
    value = raw.strip().lower()
    return None if not value else value in ("1", "true", "yes", "on")


def _names(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _paths(raw: str) -> tuple[Path, ...]:
    return tuple(Path(root) for root in raw.split(os.pathsep) if root)


#: How a variable is read, by the declared type of its field.
_BY_TYPE: dict[str, Callable[[str], Any]] = {
    "int": int,
    "float": float,
    "str": str,
    "Path": Path,
    "str | None": lambda raw: raw or None,
    "Path | None": lambda raw: Path(raw) if raw else None,
    "bool | None": _flag,
    "tuple[str, ...]": _names,
    "tuple[Path, ...]": _paths,
}


@dataclass(frozen=True)
class Settings:
    """Every ``OMNIRT_*`` option, declared once: type, default, environment variable and doc (``omnirt settings``
    prints the effective values and where each came from)."""

    redis_url: str | None = option("OMNIRT_REDIS_URL", "Redis URL: fleet mode (unset: embedded)", default=None)
    home: Path = option("OMNIRT_HOME", "base of the default models dir", default=Path("~/.omnirt"))
    models_dir: Path | None = option(
        "OMNIRT_MODELS_DIR", "weights, one sub-folder per model id (default: <OMNIRT_HOME>/models)", default=None
    )
    backend: str = option("OMNIRT_BACKEND", "what a request's backend auto means in this process", default="auto")
    disable_compile: bool | None = option("OMNIRT_DISABLE_COMPILE", "1: never try torch.compile", default=None)
    plugins: tuple[str, ...] = option("OMNIRT_PLUGINS", "extra modules that register models", default=())
    preload: tuple[str, ...] = option("OMNIRT_PRELOAD", "models a worker process loads at start", default=())
    artifact_dir: Path = option(
        "OMNIRT_ARTIFACT_DIR", "where job artifacts live (shared by front ends and workers)", default=Path("outputs")
    )
    job_ttl_s: int = option("OMNIRT_JOB_TTL_S", "seconds a job record is kept", default=7 * 24 * 3600)
    events_ttl_s: int = option("OMNIRT_EVENTS_TTL_S", "seconds an event stream is kept after its end", default=3600)
    events_maxlen: int = option("OMNIRT_EVENTS_MAXLEN", "events kept per job stream (approximate)", default=10_000)
    heartbeat_interval_s: float = option("OMNIRT_HEARTBEAT_INTERVAL_S", "worker heartbeat period", default=2.0)
    heartbeat_ttl_s: float = option(
        "OMNIRT_HEARTBEAT_TTL_S", "a worker without a beat for this long is dead", default=6.0
    )
    max_attempts: int = option("OMNIRT_MAX_ATTEMPTS", "runs of a job whose worker died, at most", default=2)
    max_batch_size: int = option(
        "OMNIRT_MAX_BATCH_SIZE", "compatible text2image/text2video jobs run as one call, at most (1: off)", default=1
    )
    batch_window_ms: float = option(
        "OMNIRT_BATCH_WINDOW_MS",
        "how long a batch's first job waits for compatible ones (0: only those queued)",
        default=20.0,
    )
    visibility_timeout_s: int = option(
        "OMNIRT_VISIBILITY_TIMEOUT_S", "Redis broker visibility timeout", default=6 * 3600
    )
    sync_timeout_s: float = option("OMNIRT_SYNC_TIMEOUT_S", "how long a sync request waits for its job", default=300.0)
    max_request_bytes: int = option("OMNIRT_MAX_REQUEST_BYTES", "request body cap", default=64 * 1024 * 1024)
    max_queued_jobs: int = option("OMNIRT_MAX_QUEUED_JOBS", "queued jobs before 429 too_many_queued", default=10_000)
    api_keys: tuple[str, ...] = option(
        "OMNIRT_API_KEYS", "API keys, comma-separated (and OMNIRT_API_KEY_FILE, one per line)", default=(), secret=True
    )
    api_key_file: Path | None = option("OMNIRT_API_KEY_FILE", "a file of API keys, one per line", default=None)
    model_tiers: tuple[str, ...] = option("OMNIRT_MODEL_TIERS", "tiers this server enables (all if empty)", default=())
    models: tuple[str, ...] = option("OMNIRT_MODELS", "models this server enables (all if empty)", default=())
    model_aliases: dict[str, str] = option(
        "OMNIRT_MODEL_ALIASES", "alias map file (JSON or YAML)", default_factory=dict, parse=lambda raw: _aliases(raw)
    )
    default_voice_model: str = option(
        "OMNIRT_DEFAULT_VOICE_MODEL", "the voice when none is named; also tts-1, tts-1-hd", default="hibari-tts"
    )
    default_asr_model: str = option(
        "OMNIRT_DEFAULT_ASR_MODEL", "the recogniser when none is named; also whisper-1", default="pocketsphinx-en"
    )
    default_image_model: str = option(
        "OMNIRT_DEFAULT_IMAGE_MODEL", "the image model OpenAI's dall-e-2, dall-e-3, gpt-image-1 name", default="sd15"
    )
    default_device: str = option("OMNIRT_DEFAULT_DEVICE", "device when no live worker decides", default="cpu")
    embedded_workers: int = option("OMNIRT_EMBEDDED_WORKERS", "job threads of the embedded server", default=1)
    sse_keepalive_s: float = option("OMNIRT_SSE_KEEPALIVE_S", "SSE keep-alive comment period", default=15.0)
    idle_unload_s: float = option("OMNIRT_IDLE_UNLOAD_S", "unload a warm model idle this long (0: never)", default=0.0)
    memory_budget_gb: float = option(
        "OMNIRT_MEMORY_BUDGET_GB", "a worker's memory budget (0: what is free)", default=0.0
    )
    cache_size: int = option("OMNIRT_CACHE_SIZE", "warm pipelines a worker process keeps", default=4)
    prompt_cache_size: int = option(
        "OMNIRT_PROMPT_CACHE_SIZE", "prompt encodings a worker process keeps, LRU, in host memory (0: off)", default=256
    )
    avatar_dir: Path | None = option(
        "OMNIRT_AVATAR_DIR", "the avatar store (default: avatars/ beside the artifact dir)", default=None
    )
    max_avatar_video_bytes: int = option("OMNIRT_MAX_AVATAR_VIDEO_BYTES", "idle-video upload cap", default=50 * 2**20)
    max_image_bytes: int = option("OMNIRT_MAX_IMAGE_BYTES", "a session's reference image cap", default=10 * 2**20)
    session_flush_s: float = option("OMNIRT_SESSION_FLUSH_S", "flush streamed audio after this pause", default=0.3)
    session_capacity: int = option(
        "OMNIRT_SESSION_CAPACITY", "realtime sessions per worker process, beside its job slot", default=4
    )
    session_idle_s: float = option("OMNIRT_SESSION_IDLE_S", "a session without input this long ends", default=60.0)
    webrtc_max_peers: int = option(
        "OMNIRT_WEBRTC_MAX_PEERS", "WebRTC avatar peers per front-end process (beyond: 503 no_capacity)", default=8
    )
    session_admit_s: float = option(
        "OMNIRT_SESSION_ADMIT_S", "how long a session waits for a worker before no_capacity", default=10.0
    )
    torch_threads: int = option(
        "OMNIRT_TORCH_THREADS", "torch threads per worker process (0: torch's default, every core)", default=1
    )
    frame_lanes: int = option(
        "OMNIRT_FRAME_LANES",
        "parallel lip-sync model calls per process (0: one per core embedded, 1 in a fleet)",
        default=0,
    )
    input_roots: tuple[Path, ...] = option(
        "OMNIRT_INPUT_ROOTS", "server folders whose files requests may name as inputs", default=()
    )
    confine_model_paths: bool | None = option(
        "OMNIRT_CONFINE_MODEL_PATHS", "load model paths only inside the models dir (unset: in a fleet)", default=None
    )
    limits: dict[str, float] = option(
        "OMNIRT_LIMITS",
        "request size and job time limits, a JSON object",
        default_factory=dict,
        parse=lambda raw: _limits(raw),
    )
    redis_max_connections: int = option(
        "OMNIRT_REDIS_MAX_CONNECTIONS", "connections per Redis pool; past it, requests wait", default=2000
    )
    frontend_worker_class: str = option(
        "OMNIRT_FRONTEND_WORKER_CLASS", "fleet front end's gunicorn worker class: gevent or gthread", default="gevent"
    )
    frontend_connections: int = option(
        "OMNIRT_FRONTEND_CONNECTIONS", "open connections per gevent front-end process", default=10_000
    )
    worker_device: str | None = option(
        "OMNIRT_WORKER_DEVICE", "a worker's device (omnirt worker --device; unset: from its queues)", default=None
    )
    worker_node: str | None = option(
        "OMNIRT_WORKER_NODE", "a worker's Celery node name (set by the worker for its pool processes)", default=None
    )
    worker_queues: tuple[str, ...] = option(
        "OMNIRT_WORKER_QUEUES", "the queues a worker consumes (set by the worker for its pool processes)", default=()
    )
    flashtalk_upstream: str | None = option(
        "OMNIRT_FLASHTALK_UPSTREAM", "a running FlashTalk server, ws://host:port (proxy mode)", default=None
    )
    flashtalk_command: str | None = option(
        "OMNIRT_FLASHTALK_COMMAND",
        "a FlashTalk server command the worker launches and supervises, with {port}",
        default=None,
    )
    flashtalk_port: int = option(
        "OMNIRT_FLASHTALK_PORT", "the port a launched FlashTalk server listens on", default=8765
    )
    resident_backoff_s: float = option(
        "OMNIRT_RESIDENT_BACKOFF_S", "first restart delay of a crashed resident model server (doubles)", default=1.0
    )
    flashhead_repo: Path | None = option(
        "OMNIRT_FLASHHEAD_REPO", "a SoulX-FlashHead checkout (runs its generate_video.py)", default=None
    )
    flashhead_ckpt_dir: Path | None = option(
        "OMNIRT_FLASHHEAD_CKPT_DIR", "SoulX-FlashHead-1_3B weights (may be relative to the checkout)", default=None
    )
    flashhead_config: dict[str, Any] = option(
        "OMNIRT_FLASHHEAD_CONFIG",
        "this worker's defaults for soulx-flashhead-1.3b's config (JSON: wav2vec_dir, launcher, python_executable...)",
        default_factory=dict,
        parse=lambda raw: _json_object(raw, "OMNIRT_FLASHHEAD_CONFIG"),
    )
    liveact_repo: Path | None = option(
        "OMNIRT_LIVEACT_REPO", "a SoulX-LiveAct checkout (soulx-liveact-14b runs its generate.py)", default=None
    )
    liveact_ckpt_dir: Path | None = option(
        "OMNIRT_LIVEACT_CKPT_DIR", "LiveAct weights (may be relative to the checkout)", default=None
    )
    liveact_config: dict[str, Any] = option(
        "OMNIRT_LIVEACT_CONFIG",
        "this worker's defaults for soulx-liveact-14b's config (JSON object)",
        default_factory=dict,
        parse=lambda raw: _json_object(raw, "OMNIRT_LIVEACT_CONFIG"),
    )
    longcat_avatar_repo: Path | None = option(
        "OMNIRT_LONGCAT_AVATAR_REPO", "a LongCat-Video checkout (runs its avatar script)", default=None
    )
    longcat_avatar_ckpt_dir: Path | None = option(
        "OMNIRT_LONGCAT_AVATAR_CKPT_DIR", "LongCat-Video-Avatar weights (may be relative to the checkout)", default=None
    )
    longcat_avatar_config: dict[str, Any] = option(
        "OMNIRT_LONGCAT_AVATAR_CONFIG",
        "this worker's defaults for longcat-video-avatar-1.5's config (JSON object)",
        default_factory=dict,
        parse=lambda raw: _json_object(raw, "OMNIRT_LONGCAT_AVATAR_CONFIG"),
    )
    cosyvoice_triton: str = option(
        "OMNIRT_COSYVOICE_TRITON", "CosyVoice's Triton gRPC server, host:port", default="127.0.0.1:8001"
    )
    cosyvoice_model: str = option("OMNIRT_COSYVOICE_MODEL", "CosyVoice's model name on Triton", default="cosyvoice3")
    vllm_omni_url: str = option("OMNIRT_VLLM_OMNI_URL", "a vLLM-Omni speech server", default="http://127.0.0.1:8091")
    vllm_omni_model: str = option("OMNIRT_VLLM_OMNI_MODEL", "the model vLLM-Omni serves", default="default")
    vllm_omni_api_key: str | None = option(
        "OMNIRT_VLLM_OMNI_API_KEY", "vLLM-Omni's API key (sent as a bearer token)", default=None, secret=True
    )
    soulx_podcast_url: str = option(
        "OMNIRT_SOULX_PODCAST_URL", "a SoulX-Podcast server", default="http://127.0.0.1:18080"
    )
    indextts_url: str = option("OMNIRT_INDEXTTS_URL", "an IndexTTS-2 streaming server", default="http://127.0.0.1:9012")
    indextts_route_model: str | None = option(
        "OMNIRT_INDEXTTS_ROUTE_MODEL",
        "the voice that answers POST /v1/text2audio/indextts, OpenTalking's TTS call (unset: the default voice)",
        default=None,
    )
    log_format: str = option(
        "OMNIRT_LOG_FORMAT", "log lines: text, or json (one object per line with job/trace/session ids)", default="text"
    )

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
    def options(cls) -> list[tuple[str, str, str, Any]]:
        """(field, environment variable, doc, default) of every option, in declaration order."""
        return [
            (item.name, item.metadata["env"], item.metadata["doc"], _default(item))
            for item in fields(cls)
            if "env" in item.metadata
        ]

    @classmethod
    def as_environment(cls, values: Mapping[str, Any]) -> dict[str, str]:
        """``{field name: value}`` as ``{OMNIRT_VARIABLE: text}``, the way these declarations read it back (for a
        child process's environment, or this one's); None and empty values are left out. KeyError for an unknown
        field."""
        variables = {name: variable for name, variable, _, _ in cls.options()}
        return {
            variables[name]: variable_text(value)
            for name, value in values.items()
            if value is not None and value != () and value != []
        }

    @classmethod
    def is_set(cls, name: str, environ: Mapping[str, str] | None = None) -> bool:
        """Whether the environment gives option ``name`` (under its variable or an older name)."""
        env = os.environ if environ is None else environ
        variable = next(item for item in fields(cls) if item.name == name).metadata["env"]
        return bool(env.get(variable) or env.get(ALTERNATE_NAMES.get(variable, "")))

    @classmethod
    def value(cls, name: str, environ: Mapping[str, str] | None = None) -> Any:
        """One option's value from the environment (for code that needs a single setting at call time)."""
        env = os.environ if environ is None else environ
        item = next(item for item in fields(cls) if item.name == name)
        variable = item.metadata["env"]
        raw = env.get(variable) or env.get(ALTERNATE_NAMES.get(variable, ""), "")
        if not raw:
            return _default(item)
        try:
            return (item.metadata["parse"] or _BY_TYPE[str(item.type)])(raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{variable}={raw!r}: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings the environment gives: each declared variable that is set, read by its declaration."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in fields(cls):
            name = item.metadata.get("env")
            raw = (env.get(name) or env.get(ALTERNATE_NAMES.get(name, ""), "")) if name else ""
            if not raw:
                continue
            parse = item.metadata["parse"] or _BY_TYPE[str(item.type)]
            try:
                values[item.name] = parse(raw)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{name}={raw!r}: {exc}") from None
        key_file = values.get("api_key_file")
        if key_file:
            keys = [line.strip() for line in Path(key_file).read_text().splitlines() if line.strip()]
            values["api_keys"] = tuple(dict.fromkeys([*values.get("api_keys", ()), *keys]))
        return cls(**values)

    @classmethod
    def sources(cls, environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Each option's effective value and where it came from (``env`` or ``default``), for ``omnirt settings``."""
        env = os.environ if environ is None else environ
        current = cls.from_env(env)
        secret = {item.name for item in fields(cls) if item.metadata.get("secret")}
        rows = []
        for name, variable, doc, _ in cls.options():
            value = getattr(current, name)
            if name in secret and value:
                value = f"{len(value)} key(s)" if isinstance(value, tuple) else "(set)"
            given = cls.is_set(name, env)
            rows.append({"variable": variable, "value": value, "source": "env" if given else "default", "doc": doc})
        return rows


def variable_text(value: Any) -> str:
    """A setting's value as its variable holds it: lists comma-joined, yes/no as 1/0, mappings as JSON."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


def environment_table() -> str:
    """The README's Environment table, generated from the declarations: variable, type, default, doc."""
    types = {item.name: str(item.type) for item in fields(Settings)}

    def shown(value: Any) -> str:
        if value is None or value == () or value == {}:
            return "unset"
        if isinstance(value, tuple):
            return ",".join(str(part) for part in value)
        return str(value)

    rows = ["| variable | type | default | what it sets |", "|---|---|---|---|"]
    for name, variable, doc, default in Settings.options():
        rows.append(f"| `{variable}` | {types[name].replace('|', 'or')} | `{shown(default)}` | {doc} |")
    return "\n".join(rows) + "\n"


#: Older names still read when the current one is unset.
ALTERNATE_NAMES = {"OMNIRT_ARTIFACT_DIR": "OMNIRT_OUTPUT_DIR"}


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning per ``OMNIRT_*`` variable that nothing reads, with the closest known name."""
    import difflib

    env = os.environ if environ is None else environ
    known = {variable for _, variable, _, _ in Settings.options()} | set(ALTERNATE_NAMES.values())
    warnings = []
    for name in sorted(key for key in env if key.startswith("OMNIRT_") and key not in known):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{name} is not an OmniRT setting{hint}")
    return warnings


def _default(item: Any) -> Any:
    return item.default_factory() if item.default_factory is not MISSING else item.default


#: Request size and job time limits (applied in :mod:`omnirt.registry.limits`): steps and frames far past what any
#: published model card uses, 4 megapixels, 8 images, an hour per job. A model may raise its own; OMNIRT_LIMITS
#: overrides them.
DEFAULT_LIMITS: dict[str, float] = {
    "max_steps": 500,
    "max_pixels": 2048 * 2048,
    "max_frames": 257,
    "max_images": 8,
    "time_limit_s": 3600.0,
}


def _json_object(raw: str | None, variable: str) -> dict[str, Any]:
    """A variable holding a JSON object (empty when unset)."""
    if not raw:
        return {}

    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"{variable} must be a JSON object")
    return value


def _limits(raw: str | None) -> dict[str, float]:
    """``OMNIRT_LIMITS``: a JSON object of limits (``{"max_steps": 200, "time_limit_s": 900}``)."""
    if not raw:
        return {}

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

    text = Path(path).read_text()
    if path.endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    data = data.get("aliases", data) if isinstance(data, dict) else {}
    return {str(key): str(value) for key, value in data.items()}
