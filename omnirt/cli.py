"""The ``omnirt`` command line (click): models, validate, generate, make-tiny.

Exit codes: 0 success, 2 a bad request (unknown model, invalid input), 1 a runtime failure. Errors are one line on
stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from omnirt.contracts.errors import ModelNotRegisteredError, OmniRTError, RequestValidationError
from omnirt.contracts.types import BACKENDS, TASKS, GenerateRequest
from omnirt.registry.presets import PRESETS

EXIT_RUNTIME_ERROR = 1
EXIT_BAD_REQUEST = 2

# (option name, destination: "inputs" | "config", click type)
REQUEST_OPTIONS: tuple[tuple[str, str, Any], ...] = (
    ("prompt", "inputs", str),
    ("negative-prompt", "inputs", str),
    ("image", "inputs", str),
    ("mask", "inputs", str),
    ("audio", "inputs", str),
    ("reference-text", "inputs", str),
    ("num-inference-steps", "config", int),
    ("guidance-scale", "config", float),
    ("true-cfg-scale", "config", float),
    ("scheduler", "config", str),
    ("seed", "config", int),
    ("strength", "config", float),
    ("width", "config", int),
    ("height", "config", int),
    ("num-frames", "config", int),
    ("fps", "config", float),
    ("frame-bucket", "config", int),
    ("decode-chunk-size", "config", int),
    ("noise-aug-strength", "config", float),
    ("num-images-per-prompt", "config", int),
    ("max-sequence-length", "config", int),
    ("dtype", "config", click.Choice(["fp16", "bf16", "fp32"])),
    ("preset", "config", click.Choice(PRESETS)),
    ("model-path", "config", str),
    ("device-map", "config", str),
    ("devices", "config", str),
    # script-backed models (an upstream checkout run per request): where it is and how it is launched
    ("repo-path", "config", str),
    ("ckpt-dir", "config", str),
    ("wav2vec-dir", "config", str),
    ("python-executable", "config", str),
    ("launcher", "config", click.Choice(["python", "torchrun", "accelerate"])),
    ("nproc-per-node", "config", int),
    ("num-processes", "config", int),
    ("accelerate-executable", "config", str),
    ("visible-devices", "config", str),
    ("env-script", "config", str),
    ("ascend-env-script", "config", str),
)


def request_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Attach the request flags shared by ``generate`` and ``validate``."""
    for name, _, kind in reversed(REQUEST_OPTIONS):
        command = click.option(f"--{name}", type=kind, default=None)(command)
    decorators = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Request file (JSON or YAML)."),
        click.option("--task", type=click.Choice(TASKS)),
        click.option("--model"),
        click.option("--backend", type=click.Choice([*BACKENDS, "cpu-stub"]), default=None),
        click.option("--size", help="WIDTHxHEIGHT, e.g. 512x512."),
        click.option("--lora", "loras", multiple=True, help="LoRA adapter PATH[@SCALE]; repeatable."),
        click.option("--set", "settings", multiple=True, help="Any config key: KEY=VALUE (VALUE parsed as JSON)."),
        click.option("--debug", is_flag=True, help="Show tracebacks."),
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_request(options: dict[str, Any]) -> GenerateRequest:
    """Merge a request file (if any) with the flags; flags win."""
    from omnirt.python_api import as_request

    if options.get("config_file"):
        base = as_request(options["config_file"]).to_dict()
    else:
        base = {"inputs": {}, "config": {}}
    for key in ("task", "model", "backend"):
        if options.get(key):
            base[key] = options[key]
    for name, destination, _ in REQUEST_OPTIONS:
        value = options.get(name.replace("-", "_"))
        if value is not None:
            base.setdefault(destination, {})[name.replace("-", "_")] = value
    if options.get("size"):
        width, _, height = options["size"].lower().partition("x")
        if not (width.isdigit() and height.isdigit()):
            raise RequestValidationError(f"--size must be WIDTHxHEIGHT, got {options['size']!r}.")
        base["config"].update(width=int(width), height=int(height))
    for setting in options.get("settings") or ():
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise RequestValidationError(f"--set takes KEY=VALUE, got {setting!r}.")
        base["config"][key.strip()] = _json_value(value)
    adapters = []
    for lora in options.get("loras") or ():
        path, _, scale = lora.partition("@")
        adapters.append({"kind": "lora", "path": path, "scale": float(scale) if scale else 1.0})
    if adapters:
        base["adapters"] = adapters
    missing = [key for key in ("task", "model") if not base.get(key)]
    if missing:
        raise RequestValidationError(f"Missing --{' and --'.join(missing)} (or a --config request file).")
    return as_request(base)


def fail(exc: BaseException, debug: bool) -> None:
    """Print one line (plus the traceback with --debug) and exit with the right code."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    bad_request = isinstance(exc, (RequestValidationError, ModelNotRegisteredError, click.BadParameter))
    message = exc.message if isinstance(exc, OmniRTError) else str(exc)
    code = exc.code if isinstance(exc, OmniRTError) else type(exc).__name__
    click.echo(f"error: [{code}] {' '.join(message.split())}", err=True)
    sys.exit(EXIT_BAD_REQUEST if bad_request else EXIT_RUNTIME_ERROR)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="omnirt")
def main() -> None:
    """OmniRT: inference runtime for digital humans and multimodal generation."""


@main.command()
@click.argument("model_id", required=False)
@click.option("--tier", type=click.Choice(["all", "core", "adjacent", "experimental"]), default="all")
@click.option("--manifest", is_flag=True, help="Print capability manifests (JSON).")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text")
def models(model_id: str | None, tier: str, manifest: bool, output_format: str) -> None:
    """List registered models, or describe one."""
    from omnirt.registry.manifest import build_manifest, render_markdown
    from omnirt.registry.registry import get_model, list_available_models, tasks_of

    if model_id is not None:
        try:
            specs = [get_model(model_id, task) for task in tasks_of(model_id)] or [get_model(model_id)]
        except ModelNotRegisteredError as exc:
            fail(exc, False)
            return
    else:
        specs = list_available_models(include_aliases=output_format == "markdown" or manifest, tier=tier)
    if manifest:
        manifests = [build_manifest(spec) for spec in specs]
        if model_id is not None:
            payload: Any = manifests[0] if len(manifests) == 1 else {m["task"]: m for m in manifests}
        else:
            payload = manifests
        click.echo(json.dumps(payload, indent=2))
        return
    if output_format == "markdown":
        click.echo(render_markdown(), nl=False)
        return
    if output_format == "json":
        click.echo(json.dumps([_describe(spec) for spec in specs], indent=2))
        return
    if model_id is None:
        for spec in specs:
            click.echo(f"{spec.id}\t{spec.task}\t{spec.tier}\t{spec.status}\t{spec.capabilities.summary}")
        return
    for spec in specs:
        for key, value in _describe(spec).items():
            click.echo(f"{key}={json.dumps(value) if isinstance(value, (dict, list)) else value}")
        click.echo("")


def _describe(spec: Any) -> dict[str, Any]:
    caps = spec.capabilities
    return {
        "model": spec.id,
        "task": spec.task,
        "status": spec.status,
        "tier": spec.tier,
        "maturity": caps.maturity,
        "hub_id": spec.hub_id,
        "default_backend": spec.default_backend,
        "summary": caps.summary,
        "alias_of": caps.alias_of,
        "resource_hint": spec.resource_hint,
        "required_inputs": list(caps.required_inputs),
        "optional_inputs": list(caps.optional_inputs),
        "supported_config": list(caps.supported_config),
        "default_config": caps.default_config,
        "supported_schedulers": list(caps.supported_schedulers),
        "presets": list(PRESETS),
        "adapter_kinds": list(caps.adapter_kinds),
        "artifact_kind": caps.artifact_kind,
        "example": caps.example,
    }


@main.command()
@request_options
@click.option("--json", "as_json", is_flag=True, help="Print the validation result as JSON.")
def validate(as_json: bool, debug: bool, **options: Any) -> None:
    """Check a request against the registry without running it."""
    try:
        request = build_request(options)
        from omnirt.python_api import validate as validate_request

        result = validate_request(request)
    except OmniRTError as exc:
        fail(exc, debug)
        return
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print_validation(result)
    sys.exit(0 if result.ok else EXIT_BAD_REQUEST)


def _print_validation(result: Any) -> None:
    click.echo(f"ok={'true' if result.ok else 'false'}")
    click.echo(f"task={result.request.task}")
    click.echo(f"model={result.request.model}")
    click.echo(f"resolved_backend={result.resolved_backend}")
    data = result.to_dict()
    click.echo(f"resolved_inputs={json.dumps(data['resolved_inputs'], sort_keys=True)}")
    click.echo(f"resolved_config={json.dumps(data['resolved_config'], sort_keys=True)}")
    for issue in result.issues:
        click.echo(f"{issue.level}: {issue.message}", err=issue.level == "error")


SUMMARY_KEYS = (
    "model_path",
    "scheduler",
    "height",
    "width",
    "num_frames",
    "fps",
    "num_inference_steps",
    "guidance_scale",
    "seed",
)


@main.command()
@request_options
@click.option("--dry-run", is_flag=True, help="Validate only.")
@click.option("--json", "as_json", is_flag=True, help="Print only the GenerateResult as compact JSON.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Directory for the artifacts.")
@click.option("--models-dir", type=click.Path(file_okay=False), help="Folder of weights, one per model id.")
def generate(
    dry_run: bool, as_json: bool, out_dir: str | None, models_dir: str | None, debug: bool, **options: Any
) -> None:
    """Run a request in this process and write its artifacts."""
    try:
        request = build_request(options)
        if dry_run:
            from omnirt.python_api import validate as validate_request

            result = validate_request(request)
            click.echo(json.dumps(result.to_dict(), indent=2)) if as_json else _print_validation(result)
            sys.exit(0 if result.ok else EXIT_BAD_REQUEST)
        from omnirt.workers.engine import Engine

        engine = Engine(
            models_dir=Path(models_dir) if models_dir else None, output_dir=Path(out_dir) if out_dir else None
        )
        with _StepProgress() as progress:
            outcome = engine.run(request, on_event=progress.on_event)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
        fail(exc, debug)
        return
    payload = outcome.to_dict()
    if as_json:
        click.echo(json.dumps(payload, separators=(",", ":")))
        return
    report = outcome.metadata
    click.echo(f"run_id={report.run_id}")
    click.echo(f"model={report.model}")
    click.echo(f"task={report.task}")
    click.echo(f"backend={report.backend}")
    for key in SUMMARY_KEYS:
        if report.config_resolved.get(key) is not None:
            click.echo(f"{key}={report.config_resolved[key]}")
    click.echo(f"artifacts={len(outcome.outputs)}")
    for artifact in outcome.outputs:
        click.echo(f"artifact: {artifact.path} ({artifact.mime})")
    click.echo(json.dumps(payload, indent=2))


class _StepProgress:
    """A progress bar on stderr that follows denoising steps."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __enter__(self) -> _StepProgress:
        return self

    def on_event(self, event: Any) -> None:
        if event.event != "progress":
            return
        total = event.data.get("total") or 0
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="denoising", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(1)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


@main.command("make-tiny")
@click.argument("model_id")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--task", default=None, help="A task with weights of its own (sd21 depth2image: folder sd21-depth).")
@click.option("--debug", is_flag=True)
def make_tiny(model_id: str, directory: str, task: str | None, debug: bool) -> None:
    """Write a tiny random-weight copy of MODEL_ID, in its real layout, into DIRECTORY."""
    try:
        from omnirt.models.tiny_common import make_tiny as build

        target = build(model_id, Path(directory), task)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
        fail(exc, debug)
        return
    click.echo(str(target))


@main.command("settings")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per option.")
@click.option("--markdown", is_flag=True, help="The README's table of every option (type, default, doc).")
@click.option("--readme", type=click.Path(dir_okay=False, exists=True), help="Rewrite that file's table in place.")
def settings_command(as_json: bool, markdown: bool, readme: str | None) -> None:
    """The effective configuration: every OMNIRT_* option, its value, and whether it came from the environment."""
    from omnirt.settings import Settings, environment_table, unknown_variables

    if readme:  # the table runs from its header line to the first blank line
        text = Path(readme).read_text()
        start = text.index("| variable | type |")
        end = text.index("\n\n", start) + 1
        Path(readme).write_text(text[:start] + environment_table() + text[end:])
        return
    if markdown:
        click.echo(environment_table(), nl=False)
        return
    rows = Settings.sources()
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
    else:
        width = max(len(row["variable"]) for row in rows)
        for row in rows:
            click.echo(f"{row['variable']:<{width}}  {row['source']:<7}  {row['value']!s:<24}  {row['doc']}")
    for warning in unknown_variables():
        click.echo(f"warning: {warning}", err=True)


def _export(name: str, value: Any) -> None:
    """Settings travel as environment variables, so gunicorn and Celery child processes see them too."""
    if value is None or value == () or value == "":
        return
    os.environ[name] = ",".join(value) if isinstance(value, (tuple, list)) else str(value)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--redis-url", envvar="OMNIRT_REDIS_URL", help="Fleet mode; without it the server runs embedded.")
@click.option("--workers", type=int, default=2, show_default=True, help="gunicorn worker processes (fleet).")
@click.option("--threads", type=int, default=64, show_default=True, help="Threads per gunicorn worker (fleet).")
@click.option("--embedded-workers", type=int, help="Worker threads (embedded).")
@click.option("--artifact-dir", type=click.Path(file_okay=False), help="Where artifacts live (shared in a fleet).")
@click.option("--models-dir", type=click.Path(file_okay=False), help="Weights folder, one sub-folder per model id.")
@click.option("--api-key-file", type=click.Path(dir_okay=False, exists=True), help="One API key per line.")
@click.option("--model-tier", "model_tiers", multiple=True, type=click.Choice(["core", "adjacent", "experimental"]))
@click.option("--models", "models_", help="Comma-separated model ids this server enables.")
@click.option("--model-aliases", type=click.Path(dir_okay=False, exists=True), help="JSON/YAML alias map.")
@click.option("--max-request-mb", type=float, help="Largest request body accepted.")
@click.option("--default-device", type=click.Choice(["cuda", "ascend", "cpu"]), help="Device for backend=auto.")
@click.option("--max-batch-size", type=int, help="Compatible text2image/text2video jobs run as one call (1: off).")
@click.option("--batch-window-ms", type=float, help="How long a batch's first job waits for compatible ones.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Log lines: text, or JSON objects with job/trace/session ids.",
)
def serve(
    host: str,
    port: int,
    redis_url: str | None,
    workers: int,
    threads: int,
    embedded_workers: int | None,
    artifact_dir: str | None,
    models_dir: str | None,
    api_key_file: str | None,
    model_tiers: tuple[str, ...],
    models_: str | None,
    model_aliases: str | None,
    max_request_mb: float | None,
    default_device: str | None,
    max_batch_size: int | None,
    batch_window_ms: float | None,
    log_format: str | None,
) -> None:
    """Run the HTTP/WebSocket API: embedded without --redis-url, a fleet front end with it."""
    from omnirt.serve import serve_embedded, serve_fleet
    from omnirt.settings import Settings

    _export("OMNIRT_REDIS_URL", redis_url)
    _export("OMNIRT_EMBEDDED_WORKERS", embedded_workers)
    _export("OMNIRT_ARTIFACT_DIR", artifact_dir)
    _export("OMNIRT_MODELS_DIR", models_dir)
    _export("OMNIRT_API_KEY_FILE", api_key_file)
    _export("OMNIRT_MODEL_TIERS", model_tiers)
    _export("OMNIRT_MODELS", models_)
    _export("OMNIRT_MODEL_ALIASES", model_aliases)
    _export("OMNIRT_DEFAULT_DEVICE", default_device)
    _export("OMNIRT_MAX_BATCH_SIZE", max_batch_size)
    _export("OMNIRT_BATCH_WINDOW_MS", batch_window_ms)
    _export("OMNIRT_LOG_FORMAT", log_format)
    if max_request_mb is not None:
        _export("OMNIRT_MAX_REQUEST_BYTES", int(max_request_mb * 2**20))
    settings = Settings.from_env()
    from omnirt.tracing import configure_logging

    configure_logging(settings.log_format)
    if settings.embedded:
        serve_embedded(host, port, settings)
    else:
        serve_fleet(host, port, settings, workers=workers, threads=threads)


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--device", type=click.Choice(["auto", "cuda", "ascend", "cpu"]), default="auto", show_default=True)
@click.option("--tier", "tiers", multiple=True, type=click.Choice(["core", "adjacent", "experimental"]))
@click.option("--models", "models_", help="Comma-separated model ids: serve their queues.")
@click.option("--profile", type=click.Path(dir_okay=False, exists=True), help="Runtime profile: serve a pool's models.")
@click.option("--profile-pool", help="The profile's pool to serve (default: its only pool).")
@click.option("--preload", help="Comma-separated model ids to load at start.")
@click.option("--queues", help="Explicit comma-separated queues (overrides device/tier/models).")
@click.option("--pool", type=click.Choice(["prefork", "solo", "threads"]), default="prefork", show_default=True)
@click.option("--concurrency", type=int, default=1, show_default=True)
@click.option("--redis-url", envvar="OMNIRT_REDIS_URL", required=True)
@click.option("--name", help="Celery node name (default omnirt-<device>@<host>).")
@click.option("--idle-unload-s", type=float, help="Unload a model after this many idle seconds.")
@click.option("--memory-budget-gb", type=float, help="Evict least recently used models beyond this estimate.")
@click.option("--artifact-dir", type=click.Path(file_okay=False))
@click.option("--models-dir", type=click.Path(file_okay=False))
@click.option("--max-batch-size", type=int, help="Compatible text2image/text2video jobs run as one call (1: off).")
@click.option("--batch-window-ms", type=float, help="How long a batch's first job waits for compatible ones.")
@click.option("--dry-run", is_flag=True, help="Print the celery command instead of running it.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Log lines: text, or JSON objects with job/trace/session ids.",
)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(
    device: str,
    tiers: tuple[str, ...],
    models_: str | None,
    profile: str | None,
    profile_pool: str | None,
    preload: str | None,
    queues: str | None,
    pool: str,
    concurrency: int,
    redis_url: str,
    name: str | None,
    idle_unload_s: float | None,
    memory_budget_gb: float | None,
    artifact_dir: str | None,
    models_dir: str | None,
    max_batch_size: int | None,
    batch_window_ms: float | None,
    dry_run: bool,
    log_format: str | None,
    celery_args: tuple[str, ...],
) -> None:
    """Start a Celery worker on the queues a device, tiers, models or a profile need (a thin `celery worker`)."""
    import shlex
    import socket

    from omnirt.tasks.routing import worker_queues

    if device == "auto":
        device = _detect_device()
    model_ids = [item for item in (models_ or "").split(",") if item]
    if profile:
        model_ids += _profile_models(profile, profile_pool)
    selected = [item for item in (queues or "").split(",") if item] or worker_queues(
        device, tiers=tiers, models=model_ids
    )
    _export("OMNIRT_REDIS_URL", redis_url)
    _export("OMNIRT_WORKER_DEVICE", device)
    _export("OMNIRT_PRELOAD", preload)
    _export("OMNIRT_IDLE_UNLOAD_S", idle_unload_s)
    _export("OMNIRT_MEMORY_BUDGET_GB", memory_budget_gb)
    _export("OMNIRT_ARTIFACT_DIR", artifact_dir)
    _export("OMNIRT_MODELS_DIR", models_dir)
    _export("OMNIRT_MAX_BATCH_SIZE", max_batch_size)
    _export("OMNIRT_BATCH_WINDOW_MS", batch_window_ms)
    _export("OMNIRT_LOG_FORMAT", log_format)  # the worker's setup_logging signal reads it (omnirt.tracing)
    node = name or f"omnirt-{device}-{os.getpid()}@{socket.gethostname()}"
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "omnirt",
        "worker",
        "-Q",
        ",".join(selected),
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "-E",
        "-n",
        node,
        "--loglevel",
        "INFO",
        *celery_args,
    ]
    if dry_run:
        click.echo(shlex.join(argv))
        return
    os.execv(sys.executable, argv)


def _detect_device() -> str:
    """Ask a short-lived child which device `auto` means, so that this process (soon the worker parent that forks)
    never initialises CUDA or an NPU."""
    import subprocess

    probe = "from omnirt.runtime.backends import resolve_backend; print(resolve_backend('auto').name)"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()


def _profile_models(path: str, pool_name: str | None) -> list[str]:
    """The models of one pool of a runtime profile (``omnirt profile up`` starts every pool; this starts one)."""
    from omnirt.profiles.schema import ProfileError, load_profile

    try:
        pools = {pool.name: pool for pool in load_profile(path).pools}
    except ProfileError as exc:
        raise click.UsageError(str(exc)) from None
    if pool_name is None and len(pools) == 1:
        pool_name = next(iter(pools))
    if pool_name not in pools:
        raise click.UsageError(f"Name the pool to serve with --profile-pool: one of {', '.join(sorted(pools))}.")
    return list(pools[pool_name].model_ids)


@main.group()
def bench() -> None:
    """Benchmarks, each against a baseline measured side by side."""


def _echo_rows(rows: list[dict[str, Any]], as_json: bool) -> None:
    """A benchmark's rows as JSON, or as a tab-separated table under a header of the row keys."""
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if rows:
        click.echo("\t".join(rows[0]))
    for row in rows:
        click.echo("\t".join(str(value) for value in row.values()))


@bench.command("warm-cache")
@click.option("--model", "models", multiple=True, help="Model id (repeatable); default: sd15, flux-schnell, wan2.1.")
@click.option("--repeats", type=click.IntRange(1, 100), default=5)
@click.option("--json", "as_json", is_flag=True)
def bench_warm_cache(models: tuple[str, ...], repeats: int, as_json: bool) -> None:
    """Per-request time with weights kept warm versus reloaded, on tiny models on this CPU."""
    from omnirt.bench.warm_cache import DEFAULT_MODELS, measure

    _echo_rows(measure(models or DEFAULT_MODELS, repeats), as_json)


@bench.command("prompt-cache")
@click.option(
    "--model",
    "variants",
    multiple=True,
    help="sd15, flux-schnell or flux-schnell+t5-base (repeatable); default: all three.",
)
@click.option("--repeats", type=click.IntRange(1, 100), default=5)
@click.option("--json", "as_json", is_flag=True)
def bench_prompt_cache(variants: tuple[str, ...], repeats: int, as_json: bool) -> None:
    """Per-request time for a repeated prompt with the prompt-embedding cache versus without, on this CPU."""
    from omnirt.bench.prompt_cache import DEFAULT_VARIANTS, VARIANTS, measure

    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise click.UsageError(f"Unknown --model {', '.join(unknown)}; one of {', '.join(VARIANTS)}.")
    _echo_rows(measure(variants or DEFAULT_VARIANTS, repeats), as_json)


@bench.command("batching")
@click.option("--model", "models", multiple=True, help="Model ids; default: sd15, wan2.1-t2v-14b.")
@click.option("--requests", "count", type=click.IntRange(2, 64), default=4, show_default=True)
@click.option("--repeats", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--models-dir", type=click.Path(file_okay=False), help="Real weights (cuda); cpu builds tiny ones.")
@click.option("--steps", type=int, help="num_inference_steps (default: the weights' own default).")
@click.option("--width", type=int)
@click.option("--height", type=int)
@click.option("--json", "as_json", is_flag=True)
def bench_batching(
    models: tuple[str, ...],
    count: int,
    repeats: int,
    device: str,
    models_dir: str | None,
    steps: int | None,
    width: int | None,
    height: int | None,
    as_json: bool,
) -> None:
    """Throughput of compatible requests as one batched call versus one after another, side by side."""
    from omnirt.bench.batching import DEFAULT_MODELS, measure

    config = {
        key: value
        for key, value in (("num_inference_steps", steps), ("width", width), ("height", height))
        if value is not None
    }
    rows = measure(
        models or DEFAULT_MODELS,
        requests=count,
        repeats=repeats,
        device=device,
        models_dir=Path(models_dir) if models_dir else None,
        config=config,
    )
    _echo_rows(rows, as_json)


@bench.command("dispatch")
@click.option("--redis-url", envvar="OMNIRT_REDIS_URL", default="redis://127.0.0.1:6379/15", show_default=True)
@click.option("--rounds", type=click.IntRange(10, 10000), default=200, show_default=True)
@click.option("--submits", type=click.IntRange(100, 100000), default=2000, show_default=True)
@click.option("--clients", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--events", type=click.IntRange(10, 10000), default=500, show_default=True)
@click.option("--api-workers", type=click.IntRange(1, 16), default=2, show_default=True)
def bench_dispatch(redis_url: str, rounds: int, submits: int, clients: int, events: int, api_workers: int) -> None:
    """Fleet overhead beside raw Celery and raw Redis, with the no-op model (starts its own API and workers)."""
    from omnirt.bench.dispatch import run

    click.echo(
        json.dumps(
            run(redis_url, rounds=rounds, submits=submits, clients=clients, events=events, api_workers=api_workers),
            indent=2,
        )
    )


@bench.command("matrix")
@click.option("--profile", "profile_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", default="matrix.json", show_default=True, type=click.Path(dir_okay=False))
@click.option("--quick", is_flag=True, help="A few rounds and at most 2 sessions per scenario (smoke figures).")
@click.option("--models-dir", type=click.Path(file_okay=False), help="Weights folder (default: the profile's).")
def bench_matrix(profile_path: str, out: str, quick: bool, models_dir: str | None) -> None:
    """Every scenario the profile's models allow, here, as one JSON file (schema: omnirt/bench/matrix.schema.json)."""
    from omnirt.bench.matrix import run, write

    artifact = run(profile_path, quick=quick, models_dir=models_dir)
    path = write(artifact, out)
    counts = {
        status: sum(row["status"] == status for row in artifact["rows"]) for status in ("ok", "failed", "skipped")
    }
    click.echo(f"{path}: {len(artifact['rows'])} rows ({', '.join(f'{n} {s}' for s, n in counts.items())})")


@bench.command("report")
@click.argument("matrix_file", type=click.Path(exists=True, dir_okay=False))
def bench_report(matrix_file: str) -> None:
    """A benchmark matrix file as a markdown table (validated against its schema first)."""
    from omnirt.bench.matrix import report, validate

    artifact = json.loads(Path(matrix_file).read_text())
    validate(artifact)
    click.echo(report(artifact), nl=False)


@bench.command("tts")
@click.option("--model", default="hibari-tts", show_default=True)
@click.option("--rounds", type=click.IntRange(4, 1000), default=20, show_default=True)
@click.option("--redis-url", help="Measure through a fleet (omnirt serve + one worker) on this Redis.")
@click.option(
    "--compare", is_flag=True, help="Old packets (one per sentence, no leading phrase) against today's, embedded."
)
def bench_tts(model: str, rounds: int, redis_url: str | None, compare: bool) -> None:
    """TTS first packet and real-time factor, engine alone and through the API (embedded, or a fleet)."""
    if compare:
        if redis_url:
            raise click.UsageError("--compare runs embedded (it switches the voice's packets in this process).")
        from omnirt.bench.tts import compare as run_compare

        click.echo(json.dumps(run_compare(model, rounds), indent=2))
        return
    from omnirt.bench.tts import run

    click.echo(json.dumps(run(model, rounds, redis_url), indent=2))


@bench.command("avatar")
@click.option("--rounds", type=click.IntRange(2, 1000), default=10, show_default=True)
@click.option("--chunks", type=click.IntRange(2, 1000), default=10, show_default=True)
@click.option("--sessions", "--max-sessions", "max_sessions", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--model", default="photoreal-avatar", show_default=True, help="Avatar model id.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "ascend"]), default="auto", show_default=True)
@click.option("--weights", type=click.Path(exists=True), default=None, help="Weights folder (default: make-tiny).")
def bench_avatar(rounds: int, chunks: int, max_sessions: int, model: str, device: str, weights: str | None) -> None:
    """Avatar TTFF, per-chunk latency and real-time concurrent sessions (embedded server, FlashTalk defaults)."""
    from omnirt.bench.avatar import run

    result = run(rounds=rounds, chunks=chunks, max_sessions=max_sessions, model=model, device=device, weights=weights)
    click.echo(json.dumps(result, indent=2))


@bench.command("photoreal")
@click.option("--rounds", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option("--width", type=int, default=416, show_default=True)
@click.option("--height", type=int, default=704, show_default=True)
def bench_photoreal(rounds: int, width: int, height: int) -> None:
    """Photoreal avatar ms per frame on one core (JPEG included) beside the removed ellipse renderer."""
    from omnirt.bench.photoreal import run

    click.echo(json.dumps(run(width=width, height=height, rounds=rounds), indent=2))


@bench.command("webrtc")
@click.option("--sentences", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--model", default=None, help="Avatar model (default: the server's default avatar).")
@click.option("--tts-model", default=None, help="text2audio model (default: the server's).")
@click.option("--chromium", type=click.Path(), default=None, help="Chromium binary (default: chromium on PATH).")
def bench_webrtc(sentences: int, model: str | None, tts_model: str | None, chromium: str | None) -> None:
    """Text -> first audible audio and first mouth movement in headless Chromium over WebRTC (the playground)."""
    from omnirt.bench.webrtc import BenchUnavailable, run

    try:
        result = run(sentences, model=model, tts_model=tts_model, chromium=chromium)
    except BenchUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(result, indent=2))


@bench.command("sessions-beside-jobs")
@click.option("--jobs", type=click.IntRange(1, 10000), default=100, show_default=True, help="Diffusion jobs queued.")
@click.option("--sessions", type=click.IntRange(1, 64), default=10, show_default=True)
@click.option("--steps", type=click.IntRange(1, 500), default=50, show_default=True, help="Denoising steps per job.")
@click.option("--width", type=click.IntRange(64, 2048), default=416, show_default=True)
@click.option("--height", type=click.IntRange(64, 2048), default=704, show_default=True)
@click.option("--slice-len", type=click.IntRange(1, 120), default=28, show_default=True, help="Frames per chunk.")
def bench_sessions_beside_jobs(jobs: int, sessions: int, steps: int, width: int, height: int, slice_len: int) -> None:
    """Avatar sessions admitted and their TTFF on a worker whose one job slot is busy, session list beside the old
    Celery-task path (starts its own Redis, API and worker)."""
    from omnirt.bench.sessions_beside_jobs import run

    result = run(jobs=jobs, sessions=sessions, steps=steps, width=width, height=height, slice_len=slice_len)
    click.echo(json.dumps(result, indent=2))


@bench.command("lipsync")
@click.option("--model", type=click.Choice(["wav2lip", "wav2lip-256", "musetalk-1.5"]), default="wav2lip")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "ascend"]), default="cpu", show_default=True)
@click.option("--weights", type=click.Path(exists=True), default=None, help="Weights folder (default: make-tiny).")
@click.option("--seconds", type=float, default=3.0, show_default=True, help="Time per measurement.")
def bench_lipsync(model: str, device: str, weights: str | None, seconds: float) -> None:
    """Lip-sync network speed (fp32 eager beside OmniRT's path), batching across sessions, avatar preparation."""
    from omnirt.bench.lipsync import run

    click.echo(json.dumps(run(model=model, device=device, weights=weights, seconds=seconds), indent=2))


@bench.command("streams")
@click.option("--streams", type=click.IntRange(1, 100000), default=1000, show_default=True, help="Open job streams.")
@click.option("--sessions", type=click.IntRange(0, 64), default=20, show_default=True, help="Paced avatar sessions.")
@click.option("--seconds", type=click.FloatRange(1), default=300.0, show_default=True, help="Time under load.")
@click.option("--redis-url", help="Use this Redis (default: a private redis-server on a free port).")
@click.option("--worker-class", type=click.Choice(["gevent", "gthread"]), default="gevent", show_default=True)
@click.option("--api-workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--threads", type=click.IntRange(1, 1024), default=64, show_default=True, help="gthread only.")
@click.option("--ws-share", type=click.FloatRange(0, 1), default=0.1, show_default=True, help="Streams over WS.")
@click.option("--open-concurrency", type=click.IntRange(1), default=50, show_default=True, help="Opening at once.")
def bench_streams(
    streams: int,
    sessions: int,
    seconds: float,
    redis_url: str | None,
    worker_class: str,
    api_workers: int,
    threads: int,
    ws_share: float,
    open_concurrency: int,
) -> None:
    """A fleet front end under many open SSE/WS streams and paced avatar sessions: health and submit latency."""
    from omnirt.bench.streams import run

    result = run(
        streams=streams,
        sessions=sessions,
        seconds=seconds,
        redis_url=redis_url,
        worker_class=worker_class,
        api_workers=api_workers,
        threads=threads,
        ws_share=ws_share,
        open_concurrency=open_concurrency,
    )
    click.echo(json.dumps(result, indent=2))
    if not result["ok"]:
        sys.exit(EXIT_RUNTIME_ERROR)


# -- runtime profiles (omnirt/profiles) -------------------------------------------------------------------------------


@main.group()
def profile() -> None:
    """Runtime profiles: a deployment in YAML, validated, started on this host (up) or rendered to deploy files."""


def _load_checked(file: str, *, quiet: bool = False) -> Any:
    """The profile in ``file`` with every problem printed; exits 2 when it has errors."""
    from omnirt.profiles.schema import ProfileError, load_profile
    from omnirt.profiles.validation import validate_profile

    try:
        loaded = load_profile(file)
    except ProfileError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        click.echo(f"{file}: {len(exc.problems)} error(s)", err=True)
        sys.exit(EXIT_BAD_REQUEST)
    report = validate_profile(loaded)
    for problem in report.problems:
        if problem.level == "error" or not quiet:
            click.echo(str(problem), err=True)
    if not report.ok:
        click.echo(f"{file}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)", err=True)
        sys.exit(EXIT_BAD_REQUEST)
    return loaded


@profile.command("schema")
def profile_schema() -> None:
    """Print the profile format as a JSON Schema."""
    from omnirt.profiles.schema import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@profile.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def profile_validate(file: str) -> None:
    """Check a profile against the registry: every problem at once (exit 2 when there are errors)."""
    from omnirt.profiles.validation import summary

    loaded = _load_checked(file)
    for line in summary(loaded):
        click.echo(line)
    click.echo(f"{file}: valid")


@profile.command("up")
@click.argument("file", type=click.Path(dir_okay=False))
def profile_up(file: str) -> None:
    """Start and supervise the whole profile on this host (Redis if owned, front ends, worker pools, Flower), with
    prefixed logs and restarts; Ctrl-C or SIGTERM stops everything."""
    from omnirt.profiles.launch import LaunchError, up

    loaded = _load_checked(file, quiet=True)
    try:
        code = up(loaded)
    except LaunchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_RUNTIME_ERROR)
    sys.exit(code)


@profile.command("render")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--to", "target", type=click.Choice(["compose", "kubernetes", "systemd"]), required=True)
@click.argument("directory", type=click.Path(file_okay=False))
def profile_render(file: str, target: str, directory: str) -> None:
    """Write the deploy files of TARGET for the profile into DIRECTORY."""
    from omnirt.profiles.render import render, write

    loaded = _load_checked(file, quiet=True)
    for path in write(render(loaded, target), Path(directory)):
        click.echo(str(path))


if __name__ == "__main__":
    main()
