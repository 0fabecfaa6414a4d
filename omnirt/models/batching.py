"""Running several compatible requests as one pipeline call: the batched stage runner.

The members of a batch differ only in prompt, negative prompt and seed (:mod:`omnirt.jobs.batching`). The runner
builds one call for all of them: the prompts (and negative prompts) as lists, one seeded generator per member (a
diffusers pipeline draws member ``i``'s starting noise from ``generator[i]`` with the shape of a single request, so a
member's output is the one it gets alone, up to the batched arithmetic of the denoiser). It then splits the output and
decodes and exports each member's share into that member's own folder.

Each member keeps its own context: every event of the shared stages reaches each member's listener (its own copy), and
each member's report carries the batch's timings, ``batch_size`` and ``batch_group_id``, and its own seed. A member
whose job is cancelled drops out at the next step (``on_cancelled`` is called once; its output is discarded); when
every member is cancelled the call stops. An error fails the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from omnirt.contracts.types import GenerateRequest, GenerateResult, RunReport, StageEvent
from omnirt.jobs.batching import MEMBER_CONFIG
from omnirt.models.base import CancelCheck, EventSink, RunContext, StageClock, worker_identity


@dataclass
class BatchRequest:
    """One member of a batch as the caller hands it in: its request, where its artifacts go, its event listener and
    cancel check, and what to do once the batch sees that it was cancelled."""

    request: GenerateRequest
    job_id: str | None = None
    run_dir: Path | None = None
    on_event: EventSink | None = None
    should_cancel: CancelCheck | None = None
    on_cancelled: Callable[[], None] | None = None


@dataclass
class BatchMember:
    """One member of a batch ready to run: its context, its report, and whether it dropped out."""

    ctx: RunContext
    report: RunReport
    on_cancelled: Callable[[], None] | None = None
    cancelled: bool = field(default=False)


def run_batched(pipeline: Any, members: list[BatchMember], *, batch_group_id: str) -> list[GenerateResult | None]:
    """Run ``members`` on ``pipeline`` (a :class:`~omnirt.models.diffusers_pipeline.DiffusersPipeline`) as one call.

    Returns one result per member, None for a member that was cancelled. Raises the run's error (each live member's
    report records it and its listener gets ``run_failed``).
    """
    batch = _batch_context(members)
    clock = StageClock(pipeline.backend)
    pipeline.backend.reset_peak_memory()
    for member in members:
        member.report.execution_mode = pipeline.execution_mode
        member.report.device_placement = dict(pipeline.device_placement)
        member.report.worker_id = member.report.worker_id or worker_identity()
        member.report.batch_size = len(members)
        member.report.batch_group_id = batch_group_id
    try:
        conditions = clock.run(batch, "prepare_conditions", lambda: pipeline.prepare_conditions(batch))
        generators = clock.run(
            batch,
            "prepare_latents",
            lambda: [pipeline.prepare_latents(member.ctx, conditions) for member in members],
        )
        raw = clock.run(batch, "denoise_loop", lambda: pipeline.denoise_loop(batch, generators, conditions))
        live = [index for index, member in enumerate(members) if not member.cancelled]
        decoded = clock.run(
            batch,
            "decode",
            lambda: {
                index: pipeline.decode(members[index].ctx, _share(pipeline, raw, index, len(members))) for index in live
            },
        )
        outputs = clock.run(  # a member cancelled meanwhile writes nothing
            batch,
            "export",
            lambda: {
                index: pipeline.export(members[index].ctx, share)
                for index, share in decoded.items()
                if not members[index].cancelled
            },
        )
        pipeline.attribute_time(clock)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        for member in members:
            member.report.error = error
        batch.emit("run_failed", None, error=error)
        raise
    finally:
        peak = pipeline.backend.peak_memory_mb()
        report_accelerations = getattr(pipeline, "report_run_accelerations", None)
        for member in members:
            member.report.timings = {**member.report.timings, **clock.rounded()}
            member.report.backend_timeline = [timeline.to_dict() for timeline in pipeline.backend_timeline]
            if report_accelerations is not None:  # the step cache and prompt-embedding cache of the shared call
                report_accelerations(member.report)
            if peak is not None:
                member.report.memory = {"peak_mb": round(peak, 3)}
            member.report.events = list(member.ctx.events)
            member.report.config_resolved = dict(member.ctx.config)
    return [
        GenerateResult(outputs=outputs[index], metadata=member.report)
        if index in outputs and not member.cancelled
        else None
        for index, member in enumerate(members)
    ]


def _batch_context(members: list[BatchMember]) -> RunContext:
    """The context of the shared stages: every prompt as a list, the config without the members' own keys (the seed),
    every event to every live member, and a cancel check that drops cancelled members and stops only when none is
    left."""
    first = members[0]
    inputs: dict[str, Any] = {"prompt": [member.ctx.request.inputs["prompt"] for member in members]}
    if "negative_prompt" in first.ctx.request.inputs:
        inputs["negative_prompt"] = [member.ctx.request.inputs["negative_prompt"] for member in members]
    request = GenerateRequest(
        task=first.ctx.request.task,
        model=first.ctx.request.model,
        backend=first.ctx.request.backend,
        inputs=inputs,
        config={key: value for key, value in first.ctx.request.config.items() if key not in MEMBER_CONFIG},
        adapters=first.ctx.request.adapters,
    )

    def fan_out(event: StageEvent) -> None:
        for member in members:
            if member.cancelled:
                continue
            own = StageEvent(
                event=event.event, stage=event.stage, timestamp_ms=event.timestamp_ms, data=dict(event.data)
            )
            member.ctx.events.append(own)
            if member.ctx.on_event is not None:
                member.ctx.on_event(own)

    def should_cancel() -> bool:
        for member in members:
            if not member.cancelled and member.ctx.should_cancel is not None and member.ctx.should_cancel():
                member.cancelled = True
                if member.on_cancelled is not None:
                    member.on_cancelled()
        return all(member.cancelled for member in members)

    config = {key: value for key, value in first.ctx.config.items() if key not in MEMBER_CONFIG}
    return RunContext(
        request=request, config=config, output_dir=first.ctx.output_dir, on_event=fan_out, should_cancel=should_cancel
    )


def _share(pipeline: Any, raw: Any, index: int, size: int) -> Any:
    """Member ``index``'s share of a batched diffusers output, shaped like the output of a call for it alone."""
    if pipeline.output_kind == "video":
        frames = raw.frames
        if len(frames) != size:
            raise RuntimeError(f"the batched call returned {len(frames)} videos for {size} requests")
        return SimpleNamespace(frames=[frames[index]])
    images = raw.images
    if len(images) != size:
        raise RuntimeError(f"the batched call returned {len(images)} images for {size} requests")
    return SimpleNamespace(images=[images[index]])
