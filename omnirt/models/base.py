"""``BasePipeline``: a loaded model that runs a request in five timed stages and reports what happened.

The stages are ``prepare_conditions``, ``prepare_latents``, ``denoise_loop``, ``decode`` and ``export``. Each is timed
(the backend is synchronised at the boundary, so accelerator work is counted where it happens) and brackets its
work with ``stage_start``/``stage_end`` events. During denoising, families report each step through
:meth:`RunContext.step`, which also checks for cancellation: a cancelled job stops at the next step boundary.
"""

from __future__ import annotations

import abc
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from omnirt.contracts.errors import JobCancelledError
from omnirt.contracts.types import Artifact, GenerateRequest, GenerateResult, RunReport, StageEvent
from omnirt.runtime.backends import Backend
from omnirt.runtime.compile import ModuleTimeline

STAGES = ("prepare_conditions", "prepare_latents", "denoise_loop", "decode", "export")

EventSink = Callable[[StageEvent], None]
CancelCheck = Callable[[], bool]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class RunContext:
    """Everything one run needs besides the loaded weights."""

    request: GenerateRequest
    config: dict[str, Any]
    output_dir: Path
    on_event: EventSink | None = None
    should_cancel: CancelCheck | None = None
    events: list[StageEvent] = field(default_factory=list)
    avatars: Any = None  # the fleet's avatar store (omnirt.avatars.store.AvatarStore), for avatar models

    def emit(self, event: str, stage: str | None = None, *, keep: bool = True, **data: Any) -> None:
        """Send an event to the listener; ``keep=False`` leaves it out of the run report (bulky media chunks)."""
        record = StageEvent(event=event, stage=stage, timestamp_ms=now_ms(), data=data)
        if keep:
            self.events.append(record)
        if self.on_event is not None:
            self.on_event(record)

    def check_cancelled(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise JobCancelledError("The job was cancelled.")

    def step(self, index: int, total: int | None) -> None:
        """Report that denoising step ``index`` (0-based) finished, then honour a pending cancel."""
        self.emit("progress", "denoise_loop", step=index + 1, total=total)
        self.check_cancelled()


class StageClock:
    """Stage durations in milliseconds; work measured inside one stage can be re-attributed to another."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.timings: dict[str, float] = {}

    def run(self, ctx: RunContext, stage: str, work: Callable[[], Any]) -> Any:
        ctx.check_cancelled()
        ctx.emit("stage_start", stage)
        started = time.perf_counter()
        result = work()
        self.backend.synchronize()
        elapsed = (time.perf_counter() - started) * 1000
        self.timings[f"{stage}_ms"] = self.timings.get(f"{stage}_ms", 0.0) + elapsed
        ctx.emit("stage_end", stage, elapsed_ms=round(elapsed, 3))
        return result

    def move(self, milliseconds: float, source: str, target: str) -> None:
        milliseconds = min(milliseconds, self.timings.get(f"{source}_ms", 0.0))
        if milliseconds <= 0:
            return
        self.timings[f"{source}_ms"] -= milliseconds
        self.timings[f"{target}_ms"] = self.timings.get(f"{target}_ms", 0.0) + milliseconds

    def rounded(self) -> dict[str, float]:
        return {key: round(value, 3) for key, value in self.timings.items()}


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class BasePipeline(abc.ABC):
    """Subclasses load weights in ``__init__`` and implement the five stages."""

    execution_mode: ClassVar[str] = "legacy_call"
    #: tasks this pipeline runs batched (omnirt.models.batching); none unless a family says so
    batched_tasks: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, spec: Any, backend: Backend, dtype: str) -> None:
        self.spec = spec
        self.backend = backend
        self.dtype = dtype
        self.backend_timeline: list[ModuleTimeline] = []
        self.device_placement: dict[str, str] = {}
        self.load_notes: list[str] = []

    # The five stages -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def prepare_conditions(self, ctx: RunContext) -> dict[str, Any]:
        """Turn the request's inputs into what the model conditions on."""

    @abc.abstractmethod
    def prepare_latents(self, ctx: RunContext, conditions: dict[str, Any]) -> Any:
        """Set up the starting point of denoising (seeded noise, encoded init images)."""

    @abc.abstractmethod
    def denoise_loop(self, ctx: RunContext, latents: Any, conditions: dict[str, Any]) -> Any:
        """Run the model, reporting each step through ``ctx.step``."""

    @abc.abstractmethod
    def decode(self, ctx: RunContext, raw: Any) -> Any:
        """Turn the model's output into images, frames or samples."""

    @abc.abstractmethod
    def export(self, ctx: RunContext, decoded: Any) -> list[Artifact]:
        """Write the decoded output to files and describe them."""

    def attribute_time(self, clock: StageClock) -> None:  # noqa: B027 - optional hook, empty by default
        """Hook for families whose library call spans several stages: move measured time between stages."""

    # Running ---------------------------------------------------------------------------------------------------
    def run(self, ctx: RunContext, report: RunReport) -> GenerateResult:
        """Run the five stages; fill ``report``; on failure record the error in it and re-raise."""
        clock = StageClock(self.backend)
        self.backend.reset_peak_memory()
        report.execution_mode = self.execution_mode
        report.device_placement = dict(self.device_placement)
        report.worker_id = report.worker_id or worker_identity()
        try:
            conditions = clock.run(ctx, "prepare_conditions", lambda: self.prepare_conditions(ctx))
            latents = clock.run(ctx, "prepare_latents", lambda: self.prepare_latents(ctx, conditions))
            raw = clock.run(ctx, "denoise_loop", lambda: self.denoise_loop(ctx, latents, conditions))
            decoded = clock.run(ctx, "decode", lambda: self.decode(ctx, raw))
            outputs = clock.run(ctx, "export", lambda: self.export(ctx, decoded))
            self.attribute_time(clock)
            return GenerateResult(outputs=outputs, metadata=report)
        except Exception as exc:
            report.error = f"{type(exc).__name__}: {exc}"
            ctx.emit("run_failed", None, error=report.error)
            raise
        finally:
            report.timings = {**report.timings, **clock.rounded()}
            report.backend_timeline = [timeline.to_dict() for timeline in self.backend_timeline]
            peak = self.backend.peak_memory_mb()
            if peak is not None:
                report.memory = {"peak_mb": round(peak, 3)}
            report.events = list(ctx.events)
            report.config_resolved = dict(ctx.config)
