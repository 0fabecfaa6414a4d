"""``omnirt bench matrix``: every scenario a runtime profile's models allow, run here, written as one JSON artifact.

For each distinct (model, device) the profile's pools name, the matrix runs the scenarios the model's tasks allow, in
this process, reusing the single-purpose benchmarks:

- ``text2audio`` (streaming voices): :func:`omnirt.bench.tts.run` on an embedded server: first audio packet p50/p99
  at the client, and real-time factor as synthesised seconds per wall second;
- ``audio2video`` realtime avatars: :func:`omnirt.bench.avatar.run` on an embedded server: TTFF (FlashTalk protocol,
  ``init`` .. first ``VIDX``), first video chunk (native protocol, ``session.create`` .. first ``VIDX``), per-chunk
  latency p50/p99, frames per second of one session, and the most real-time sessions (capped small with ``--quick``);
- ``text2image`` / ``text2video``: a few requests on a warm engine in this process (weights from the profile's models
  folder when present, else ``make_tiny`` random weights, marked ``tiny-random``): latency p50/p99 and images or
  frames per second;
- ``audio2text``: a few requests on a synthetic speech-like clip: latency and real-time factor (audio seconds per wall
  second).

A model the matrix cannot run here (unknown, no scenario for its tasks, device absent, no weights and no tiny builder)
gets a row with ``status: skipped`` and the reason; one that fails gets ``status: failed`` with its first error. The
artifact is validated against ``matrix.schema.json`` (JSON Schema 2020-12, shipped beside this module) before it is
written. ``omnirt bench report FILE`` renders it as a markdown table.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omnirt.bench.dispatch import summary
from omnirt.settings import Settings

SCHEMA_VERSION = 1
GENERATION_TASKS = ("text2image", "text2video")
MATRIX_TASKS = ("text2audio", "audio2video", *GENERATION_TASKS, "audio2text")
SCENARIOS = {
    "text2audio": "tts-stream",
    "audio2video": "realtime-avatar",
    "text2image": "generate",
    "text2video": "generate",
    "audio2text": "transcribe",
}


@dataclass(frozen=True)
class Budget:
    """How much each scenario measures: ``quick`` for tests and smoke runs, ``full`` for figures."""

    tts_rounds: int
    avatar_rounds: int
    avatar_chunks: int
    avatar_sessions: int
    avatar_pace_chunks: int
    requests: int
    steps: int

    @classmethod
    def for_run(cls, quick: bool) -> Budget:
        if quick:
            return cls(
                tts_rounds=3,
                avatar_rounds=2,
                avatar_chunks=3,
                avatar_sessions=2,
                avatar_pace_chunks=2,
                requests=3,
                steps=2,
            )
        return cls(
            tts_rounds=20,
            avatar_rounds=10,
            avatar_chunks=10,
            avatar_sessions=8,
            avatar_pace_chunks=5,
            requests=10,
            steps=4,
        )


# -- memory ----------------------------------------------------------------------------------------------------------


class _PeakMemory:
    """RSS of this process sampled while a scenario runs (psutil), plus the CUDA allocator's peak on CUDA."""

    def __init__(self, device: str, interval_s: float = 0.05) -> None:
        self.device = device
        self.interval_s = interval_s
        self.rss_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        process = psutil.Process()
        while True:
            self.rss_peak = max(self.rss_peak, process.memory_info().rss)
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> _PeakMemory:
        if self.device == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def report(self) -> dict[str, Any]:
        cuda_mb = None
        if self.device == "cuda":
            import torch

            cuda_mb = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return {
            "rss_peak_mb": round(self.rss_peak / 2**20, 1),
            "process_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "cuda_peak_mb": cuda_mb,
        }


# -- rows ------------------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """The machine the matrix ran on."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count() or 1,
        "torch": None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cuda_device": None,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["cuda_device"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def _row(device: str, model: str, task: str | None, host: dict[str, Any]) -> dict[str, Any]:
    return {
        "device": device,
        "model": model,
        "task": task,
        "scenario": SCENARIOS.get(task or "", "none"),
        "status": "ok",
        "skipped": None,
        "ttff_ms": None,
        "first_audio_packet_ms": None,
        "first_video_chunk_ms": None,
        "latency_ms": None,
        "throughput": None,
        "real_time_factor": None,
        "max_realtime_sessions": None,
        "peak_memory": None,
        "failures": {"count": 0, "first_error": None},
        "weights": None,
        "machine": host,
        "details": {},
    }


def _skip(row: dict[str, Any], reason: str) -> dict[str, Any]:
    row.update(status="skipped", skipped=reason)
    return row


def _latency(values: list[float]) -> dict[str, Any]:
    stats = summary(values)
    return {"p50": stats["p50_ms"], "p99": stats["p99_ms"], "mean": stats["mean_ms"], "n": stats["n"]}


# -- weights ---------------------------------------------------------------------------------------------------------


def _weights(model: str, models_dir: Path | None, scratch: Path) -> tuple[str, Path | None]:
    """(label, folder) for ``model``: the profile's folder when present, else a make-tiny copy in ``scratch``."""
    from omnirt.registry.registry import get_model

    spec = get_model(model)
    if spec.weightless:
        return "none (weightless)", None
    if models_dir is not None and (models_dir / model).is_dir():
        return str((models_dir / model).resolve()), models_dir / model
    from omnirt.models.tiny_common import make_tiny

    return "tiny-random", make_tiny(model, scratch / "models" / model)


def _has_tiny_builder(model: str) -> bool:
    import importlib.util

    from omnirt.registry.registry import get_model

    family = get_model(model).pipeline_cls.__module__.rsplit(".", 1)[0]
    return importlib.util.find_spec(f"{family}.tiny") is not None


def _device_absent(device: str) -> str | None:
    if device == "cpu":
        return None
    if device == "cuda":
        try:
            import torch
        except ImportError:
            return "torch is not installed"
        return None if torch.cuda.is_available() else "no CUDA device on this machine"
    return f"device {device!r} is not available to the matrix on this machine"


# -- scenarios -------------------------------------------------------------------------------------------------------


def _tts(row: dict[str, Any], model: str, device: str, budget: Budget, scratch: Path, models_dir: Path | None) -> None:
    from omnirt.bench import tts

    label, folder = _weights(model, models_dir, scratch)
    row["weights"] = label
    if folder is not None:  # the engine finds the voice in the models dir
        os.environ.update(Settings.as_environment({"models_dir": folder.parent}))
    result = tts.run(model, budget.tts_rounds, None, backend=device)
    first = result["api_first_packet"]
    row["first_audio_packet_ms"] = first["p50_ms"]
    row["latency_ms"] = {"p50": first["p50_ms"], "p99": first["p99_ms"], "mean": first["mean_ms"], "n": first["n"]}
    speed = round(1 / result["api_rtf_mean"], 3) if result["api_rtf_mean"] > 0 else 0.0
    row["real_time_factor"] = speed
    row["throughput"] = {"value": speed, "unit": "audio s/s"}
    row["details"] = {"engine_first_packet_p50_ms": result["engine_first_packet"]["p50_ms"], "rounds": result["rounds"]}


def _avatar(
    row: dict[str, Any], model: str, device: str, budget: Budget, scratch: Path, models_dir: Path | None
) -> None:
    from omnirt.bench import avatar
    from omnirt.registry.registry import get_model

    weights = None
    if get_model(model, "audio2video").weightless:
        row["weights"] = "none (weightless)"
    elif models_dir is not None and (models_dir / model).is_dir():
        weights = str((models_dir / model).resolve())
        row["weights"] = weights
    else:
        row["weights"] = "tiny-random"  # avatar.run builds a make-tiny copy itself
    result = avatar.run(
        rounds=budget.avatar_rounds,
        chunks=budget.avatar_chunks,
        max_sessions=budget.avatar_sessions,
        pace_chunks=budget.avatar_pace_chunks,
        model=model,
        device=device,
        weights=weights,
    )
    chunk = result["chunk_latency"]
    frames = result["frame"]["frames_per_chunk"]
    row["ttff_ms"] = result["ttff"]["p50_ms"]
    row["first_video_chunk_ms"] = result["ttff_native"]["p50_ms"]
    row["latency_ms"] = {"p50": chunk["p50_ms"], "p99": chunk["p99_ms"], "mean": chunk["mean_ms"], "n": chunk["n"]}
    row["throughput"] = {"value": round(frames / (chunk["p50_ms"] / 1000), 2), "unit": "frames/s"}
    row["real_time_factor"] = round(1 / result["chunk_work_over_duration_p50"], 3)
    row["max_realtime_sessions"] = result["max_real_time_sessions"]
    row["details"] = {
        "chunk_duration_ms": result["chunk_duration_ms"],
        "worst_chunk_ms_by_sessions": {str(k): v for k, v in result["worst_chunk_ms_by_sessions"].items()},
        "max_sessions_tried": result["max_sessions_tried"],
        "frame": result["frame"],
    }


def _engine_requests(
    row: dict[str, Any],
    make_request: Callable[[int], Any],
    budget: Budget,
    scratch: Path,
) -> list[tuple[float, Any]]:
    """Run one warm-up request and ``budget.requests`` measured ones; returns (seconds, result) per success."""
    from omnirt.workers.engine import Engine

    engine = Engine(output_dir=scratch / "outputs")
    engine.run(make_request(0))  # loads the weights: not measured
    done: list[tuple[float, Any]] = []
    failures = row["failures"]
    for index in range(1, budget.requests + 1):
        started = time.perf_counter()
        try:
            result = engine.run(make_request(index))
        except Exception as exc:  # noqa: BLE001 - a failed request is a figure of the matrix
            failures["count"] += 1
            failures["first_error"] = failures["first_error"] or f"{type(exc).__name__}: {exc}"
            continue
        done.append((time.perf_counter() - started, result))
    if not done:
        raise RuntimeError(failures["first_error"] or "every request failed")
    return done


def _generate(
    row: dict[str, Any], model: str, task: str, device: str, budget: Budget, scratch: Path, models_dir: Path | None
) -> None:
    from omnirt.contracts.types import GenerateRequest

    label, folder = _weights(model, models_dir, scratch)
    row["weights"] = label
    config: dict[str, Any] = {"num_inference_steps": budget.steps, "output_dir": str(scratch / "outputs")}
    if folder is not None:
        config["model_path"] = str(folder)

    def request(index: int) -> GenerateRequest:
        return GenerateRequest(
            task=task,
            model=model,
            backend=device,
            inputs={"prompt": f"a lighthouse at dusk, take {index}"},
            config={**config, "seed": index},
        )

    done = _engine_requests(row, request, budget, scratch)
    seconds = [elapsed for elapsed, _ in done]
    row["latency_ms"] = _latency([elapsed * 1000 for elapsed in seconds])
    if task == "text2video":
        frames = sum(artifact.num_frames or 1 for _, result in done for artifact in result.outputs)
        row["throughput"] = {"value": round(frames / sum(seconds), 3), "unit": "frames/s"}
    else:
        images = sum(len(result.outputs) for _, result in done)
        row["throughput"] = {"value": round(images / sum(seconds), 3), "unit": "images/s"}
    row["details"] = {"requests": len(done), "steps": budget.steps}


def _speech_clip(folder: Path, seconds: float = 3.0) -> Path:
    import wave

    from omnirt.bench.avatar import _speech_like

    path = folder / "speech.wav"
    folder.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(_speech_like(int(16000 * seconds)))
    return path


def _transcribe(
    row: dict[str, Any], model: str, device: str, budget: Budget, scratch: Path, models_dir: Path | None
) -> None:
    from omnirt.contracts.types import GenerateRequest

    label, folder = _weights(model, models_dir, scratch)
    row["weights"] = label
    clip_seconds = 3.0
    clip = _speech_clip(scratch / "audio", clip_seconds)
    config: dict[str, Any] = {"output_dir": str(scratch / "outputs")}
    if folder is not None:
        config["model_path"] = str(folder)

    def request(index: int) -> GenerateRequest:
        return GenerateRequest(
            task="audio2text", model=model, backend=device, inputs={"audio": str(clip)}, config=config
        )

    done = _engine_requests(row, request, budget, scratch)
    seconds = [elapsed for elapsed, _ in done]
    row["latency_ms"] = _latency([elapsed * 1000 for elapsed in seconds])
    speed = round(clip_seconds * len(seconds) / sum(seconds), 3)
    row["real_time_factor"] = speed
    row["throughput"] = {"value": speed, "unit": "audio s/s"}
    row["details"] = {"requests": len(done), "clip_s": clip_seconds}


# -- the matrix ------------------------------------------------------------------------------------------------------


def _targets(profile: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    """Distinct (model, device, expected tasks) over the profile's pools, in profile order."""
    seen: dict[tuple[str, str], tuple[str, ...]] = {}
    for pool in profile.pools:
        for ref in pool.models:
            key = (ref.id, pool.device)
            seen[key] = tuple(dict.fromkeys(seen.get(key, ()) + tuple(ref.tasks)))
    return [(model, device, tasks) for (model, device), tasks in seen.items()]


@contextmanager
def _quiet_servers() -> Iterator[None]:
    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _run_one(
    model: str, task: str, device: str, budget: Budget, models_dir: Path | None, host: dict[str, Any]
) -> dict[str, Any]:
    from omnirt.registry.registry import get_model

    row = _row(device, model, task, host)
    spec = get_model(model, task)
    if task == "text2audio" and not spec.capabilities.streaming:
        return _skip(row, "text2audio without streaming: no first packet to measure")
    if task == "audio2video" and not spec.capabilities.realtime:
        return _skip(row, "audio2video job model: the matrix measures realtime avatars only")
    needs_tiny = (
        not spec.weightless
        and not (models_dir is not None and (models_dir / model).is_dir())
        and not _has_tiny_builder(model)
    )
    if needs_tiny:
        return _skip(row, "no weights in the profile's models folder and no tiny builder")
    scratch = Path(tempfile.mkdtemp(prefix=f"omnirt-matrix-{model}-"))
    with _PeakMemory(device) as memory:
        try:
            if task == "text2audio":
                _tts(row, model, device, budget, scratch, models_dir)
            elif task == "audio2video":
                _avatar(row, model, device, budget, scratch, models_dir)
            elif task in GENERATION_TASKS:
                _generate(row, model, task, device, budget, scratch, models_dir)
            else:
                _transcribe(row, model, device, budget, scratch, models_dir)
        except Exception as exc:  # noqa: BLE001 - recorded in the row, the matrix goes on
            failures = row["failures"]
            failures["count"] += 1
            failures["first_error"] = failures["first_error"] or f"{type(exc).__name__}: {exc}"
            row["status"] = "failed"
            row["details"]["traceback"] = traceback.format_exc(limit=5)
    row["peak_memory"] = memory.report()
    return row


def run(profile_path: str | Path, *, quick: bool = False, models_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the matrix for the profile at ``profile_path``; returns the validated artifact."""
    from omnirt.profiles.schema import load_profile
    from omnirt.registry.registry import ensure_models_loaded, get_model, tasks_of

    profile = load_profile(profile_path)
    ensure_models_loaded()
    budget = Budget.for_run(quick)
    folder = Path(models_dir) if models_dir else (Path(profile.storage.models) if profile.storage.models else None)
    host = machine()
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with _quiet_servers():
        for model, device, expected in _targets(profile):
            try:
                get_model(model)
            except Exception as exc:  # noqa: BLE001 - unknown model: a skipped row, not a crash
                rows.append(_skip(_row(device, model, None, host), f"not in the registry: {exc}"))
                continue
            absent = _device_absent(device)
            tasks = [task for task in (expected or tasks_of(model)) if task in MATRIX_TASKS]
            if not tasks:
                reason = f"no matrix scenario for its tasks ({', '.join(expected or tasks_of(model))})"
                rows.append(_skip(_row(device, model, None, host), reason))
                continue
            for task in tasks:
                if absent:
                    rows.append(_skip(_row(device, model, task, host), absent))
                else:
                    rows.append(_run_one(model, task, device, budget, folder, host))
    artifact = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": {"name": profile.name, "source": str(profile_path)},
        "quick": quick,
        "wall_s": round(time.perf_counter() - started, 2),
        "machine": host,
        "rows": rows,
    }
    validate(artifact)
    return artifact


# -- schema, files and the report ------------------------------------------------------------------------------------


def schema() -> dict[str, Any]:
    """The published JSON Schema (2020-12) of the matrix artifact."""
    from importlib.resources import files

    return json.loads(files("omnirt.bench").joinpath("matrix.schema.json").read_text())


def validate(artifact: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``artifact`` does not match the published schema."""
    from jsonschema import Draft202012Validator

    Draft202012Validator(schema()).validate(artifact)


def write(artifact: dict[str, Any], out: str | Path) -> Path:
    validate(artifact)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(artifact, indent=2) + "\n")
    return path


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def report(artifact: dict[str, Any]) -> str:
    """The artifact as a markdown table (one line per row), with the machine above it."""
    host = artifact["machine"]
    lines = [
        f"Benchmark matrix for profile `{artifact['profile']['name']}`"
        f"{' (quick)' if artifact.get('quick') else ''}, {artifact['generated_at']}: "
        f"{host['cpu_count']} CPUs, torch {host.get('torch') or '-'}"
        f"{', ' + host['cuda_device'] if host.get('cuda_device') else ''}.",
        "",
        "| device | model | task | scenario | status | TTFF ms | first audio ms | first video chunk ms | p50 ms "
        "| p99 ms | throughput | RTF | max RT sessions | peak RSS MB | CUDA peak MB | failures | weights | note |",
        "|" + "---|" * 18,
    ]
    for row in artifact["rows"]:
        latency = row.get("latency_ms") or {}
        throughput = row.get("throughput")
        memory = row.get("peak_memory") or {}
        failures = row["failures"]
        note = row.get("skipped") or failures.get("first_error")
        cells = [
            row["device"],
            row["model"],
            row.get("task"),
            row["scenario"],
            row["status"],
            row.get("ttff_ms"),
            row.get("first_audio_packet_ms"),
            row.get("first_video_chunk_ms"),
            latency.get("p50"),
            latency.get("p99"),
            f"{throughput['value']:g} {throughput['unit']}" if throughput else None,
            row.get("real_time_factor"),
            row.get("max_realtime_sessions"),
            memory.get("rss_peak_mb"),
            memory.get("cuda_peak_mb"),
            failures["count"],
            row.get("weights"),
            note,
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"
