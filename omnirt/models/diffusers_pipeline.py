"""``DiffusersPipeline``: the five stages for any diffusers pipeline class, loaded with its real ``from_pretrained``.

A family subclass declares which diffusers class serves each task, how request inputs map to call arguments, and
whether it produces images or video. Everything else is shared:

* loading: dtype policy, memory budget, placement, ``wrap_module`` on the denoisers, LoRA adapters;
* ``prepare_conditions``: read input images and masks, build the call arguments the pipeline accepts;
* ``prepare_latents``: the seeded generator and the scheduler for this run;
* ``denoise_loop``: the library's own ``__call__``, with a per-step callback for progress and cancellation;
* ``decode``: normalise the output to PIL images or frames;
* ``export``: PNG per image, or one H.264 MP4.

diffusers runs text encoding, latent setup, denoising and VAE decoding inside one ``__call__``. Module hooks time
the encoders, the first denoiser call and the VAE, so the report attributes that time to the stage it belongs to.
"""

from __future__ import annotations

import inspect
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, ClassVar

from omnirt.contracts.errors import DependencyUnavailableError, InvalidInputError
from omnirt.contracts.types import AdapterRef, Artifact, GenerateResult, RunReport
from omnirt.models.base import BasePipeline, RunContext, StageClock
from omnirt.runtime import acceleration
from omnirt.runtime.adapters import load_adapters, unload_adapters
from omnirt.runtime.backends import Backend
from omnirt.runtime.compile import COMPILED_COMPONENTS, wrap_module
from omnirt.runtime.dtypes import torch_dtype
from omnirt.runtime.export import write_mp4, write_png
from omnirt.runtime.media import load_image, load_mask
from omnirt.runtime.placement import apply_vae_switches, load_kwargs, place_pipeline
from omnirt.runtime.prompt_cache import PromptCacheUse, process_cache, prompt_memo
from omnirt.runtime.schedulers import build_scheduler
from omnirt.runtime.weights import WeightsSource, load_errors

ENCODER_COMPONENTS = ("text_encoder", "text_encoder_2", "text_encoder_3", "image_encoder")

# Config keys OmniRT itself consumes; they are never passed to the diffusers call.
RUNTIME_CONFIG_KEYS = (
    "model_path",
    "dtype",
    "seed",
    "scheduler",
    "output_dir",
    "device_map",
    "devices",
    "enable_vae_slicing",
    "enable_vae_tiling",
    "enable_model_cpu_offload",
    "enable_sequential_cpu_offload",
    "enable_group_offload",
    "group_offload_type",
    "compile",
    "compile_backend",
    *acceleration.LOAD_CONFIG_KEYS,
)
# Consumed by OmniRT too, but accepted only where they apply (see contracts.diffusion_contract).
OPTIONAL_RUNTIME_CONFIG_KEYS = ("prompt_cache", *acceleration.STEP_CACHE_CONFIG_KEYS)


class DiffusersPipeline(BasePipeline):
    #: task -> diffusers pipeline class name; the first entry is the class loaded from the weights.
    pipeline_classes: ClassVar[dict[str, str]] = {}
    #: request input -> call argument
    input_arguments: ClassVar[dict[str, str]] = {"image": "image", "mask": "mask_image"}
    #: config key -> call argument, where they differ
    config_arguments: ClassVar[dict[str, str]] = {}
    #: "image" or "video"
    output_kind: ClassVar[str] = "image"
    #: inputs that are images (resized by the pipeline itself)
    image_inputs: ClassVar[tuple[str, ...]] = ("image",)
    #: call arguments every run of this family passes
    fixed_arguments: ClassVar[dict[str, Any]] = {}
    #: the pipeline method that turns prompts into embeddings, memoized by the prompt-embedding cache
    #: (omnirt.runtime.prompt_cache); None where that method reads per-run state besides its arguments
    prompt_encoder: ClassVar[str | None] = "encode_prompt"
    #: tasks whose compatible requests may run as one call (omnirt.models.batching): prompts as lists, a generator each
    batched_tasks: ClassVar[tuple[str, ...]] = ("text2image", "text2video")

    def __init__(
        self,
        *,
        spec: Any,
        source: WeightsSource,
        backend: Backend,
        dtype: str,
        config: dict[str, Any],
        adapters: list[AdapterRef] | None = None,
    ) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)
        self.source = source
        self.adapters = list(adapters or [])
        self.prompt_cache_owner = uuid.uuid4().hex
        self._run_timelines: list[Any] = []
        self._prompt_cache_use = PromptCacheUse()
        self.pipe = self._load(config)
        self.native_scheduler = self.pipe.scheduler
        self._task_pipes: dict[str, Any] = {next(iter(self.pipeline_classes)): self.pipe}

    # Loading ---------------------------------------------------------------------------------------------------
    def _load(self, config: dict[str, Any]) -> Any:
        diffusers = import_diffusers()
        class_name = next(iter(self.pipeline_classes.values()))
        pipeline_cls = getattr(diffusers, class_name)
        kwargs: dict[str, Any] = {"dtype": torch_dtype(self.dtype), **load_kwargs(self.backend, config)}
        if (
            self.dtype == "fp16"
            and self.source.is_local
            and any(Path(self.source.location).rglob("*.fp16.safetensors"))
        ):
            kwargs["variant"] = "fp16"
        with load_errors(self.spec.id, self.source.location, class_name):
            kwargs.update(self.separate_components(kwargs["dtype"]))
            pipe = pipeline_cls.from_pretrained(self.source.location, **kwargs)
        pipe.set_progress_bar_config(disable=True)
        self.device_placement = place_pipeline(pipe, self.backend, config)
        self.backend_timeline += acceleration.apply_at_load(pipe, self.backend, config, torch_dtype(self.dtype))
        for name in COMPILED_COMPONENTS:
            module = getattr(pipe, name, None)
            if module is not None:
                self.backend_timeline.append(wrap_module(module, name, backend=self.backend, config=config))
        if self.adapters:
            load_adapters(pipe, self.adapters)
        return pipe

    def separate_components(self, dtype: Any) -> dict[str, Any]:
        """Family hook: components published apart from the pipeline's repository (an AnimateDiff motion adapter),
        loaded here and passed to ``from_pretrained``."""
        return {}

    def unload_adapters(self) -> None:
        """Remove this pipeline's LoRA adapters, restoring the base weights."""
        unload_adapters(self.pipe)
        self.adapters = []
        process_cache().forget(self.prompt_cache_owner)
        self.prompt_cache_owner = uuid.uuid4().hex

    def task_pipeline(self, task: str) -> Any:
        """The diffusers pipeline for ``task``, sharing the loaded components (``from_pipe``)."""
        if task not in self._task_pipes:
            diffusers = import_diffusers()
            task_cls = getattr(diffusers, self.pipeline_classes[task])
            derived = task_cls.from_pipe(self.pipe)
            derived.set_progress_bar_config(disable=True)
            self._task_pipes[task] = derived
        return self._task_pipes[task]

    # Stages ----------------------------------------------------------------------------------------------------
    def prepare_conditions(self, ctx: RunContext) -> dict[str, Any]:
        self._run_timelines, self._prompt_cache_use = [], PromptCacheUse()  # filled by this run's denoise_loop
        pipe = self.task_pipeline(ctx.request.task)
        accepted = inspect.signature(pipe.__call__).parameters
        arguments: dict[str, Any] = dict(self.fixed_arguments)
        for key, value in ctx.request.inputs.items():
            argument = self.input_arguments.get(key, key)
            if key == "mask":
                value = load_mask(value)
            elif key in self.image_inputs:
                value = [load_image(item) for item in value] if isinstance(value, (list, tuple)) else load_image(value)
            if argument in accepted:
                arguments[argument] = value
        for key, value in ctx.config.items():
            if key in RUNTIME_CONFIG_KEYS or key in OPTIONAL_RUNTIME_CONFIG_KEYS or value is None:
                continue
            argument = self.config_arguments.get(key, key)
            if argument in accepted:
                arguments[argument] = value
        self.adjust_arguments(ctx, arguments)
        return {"pipe": pipe, "arguments": arguments, "accepted": accepted}

    def adjust_arguments(self, ctx: RunContext, arguments: dict[str, Any]) -> None:
        """Family hook: last changes to the call arguments of one run."""

    def prepare_latents(self, ctx: RunContext, conditions: dict[str, Any]) -> Any:
        import torch

        seed = ctx.config.get("seed")
        if seed is None:
            seed = random.randrange(2**31)
            ctx.config["seed"] = seed
        pipe = conditions["pipe"]
        scheduler_name = ctx.config.get("scheduler") or "native"
        pipe.scheduler = (
            self.native_scheduler
            if scheduler_name == "native"
            else build_scheduler(scheduler_name, self.native_scheduler.config)
        )
        apply_vae_switches(pipe, ctx.config)
        return torch.Generator(device="cpu").manual_seed(int(seed))

    def denoise_loop(self, ctx: RunContext, latents: Any, conditions: dict[str, Any]) -> Any:
        pipe = conditions["pipe"]
        arguments = dict(conditions["arguments"], generator=latents, output_type="pil")
        total = ctx.config.get("num_inference_steps")
        progress: Any = nullcontext()
        if "callback_on_step_end" in conditions["accepted"]:

            def on_step_end(_pipe: Any, index: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
                ctx.step(index, getattr(_pipe, "num_timesteps", None) or total)
                return {}

            arguments["callback_on_step_end"] = on_step_end
        elif "callback" in conditions["accepted"]:  # older pipelines (PixArt): callback(step, timestep, latents)

            def on_step(index: int, _timestep: Any, _latents: Any) -> None:
                ctx.step(index, total)

            arguments.update(callback=on_step, callback_steps=1)
        else:  # no step callback at all (HunyuanVideo 1.5): progress from the scheduler
            progress = _scheduler_step_progress(pipe, ctx)
        import torch

        with (
            progress,
            _input_checks_blame_the_request(pipe),
            self._stage_tracer(pipe, ctx.check_cancelled) as self._trace,
            acceleration.step_cache(pipe, ctx.config) as self._run_timelines,
            prompt_memo(
                pipe,
                self.prompt_encoder,
                owner=self.prompt_cache_owner,
                enabled=ctx.config.get("prompt_cache", True) is not False,
            ) as self._prompt_cache_use,
            torch.inference_mode(),
        ):
            return pipe(**arguments)

    def run(self, ctx: RunContext, report: RunReport) -> GenerateResult:
        """The five stages; the report also gets this run's step cache and prompt-embedding cache hits."""
        self._run_timelines, self._prompt_cache_use = [], PromptCacheUse()
        try:
            return super().run(ctx, report)
        finally:
            self.report_run_accelerations(report)

    def report_run_accelerations(self, report: RunReport) -> None:
        """Add what the last ``denoise_loop`` used to ``report``: the step cache's timeline entries, and
        ``text_embedding`` in ``cache_hits`` when the prompt-embedding cache answered (for a batch: each member's)."""
        report.backend_timeline += [timeline.to_dict() for timeline in self._run_timelines]
        if self._prompt_cache_use.hits and "text_embedding" not in report.cache_hits:
            report.cache_hits.append("text_embedding")

    def decode(self, ctx: RunContext, raw: Any) -> Any:
        if self.output_kind == "video":
            frames = raw.frames[0]
            return [_to_pil(frame) for frame in frames]
        return [_to_pil(image) for image in raw.images]

    def export(self, ctx: RunContext, decoded: Any) -> list[Artifact]:
        stem = self.spec.id.replace("/", "_")
        if self.output_kind == "video":
            fps = float(ctx.config.get("fps") or 8)
            return [write_mp4(decoded, ctx.output_dir / f"{stem}.mp4", fps=fps)]
        if len(decoded) == 1:
            return [write_png(decoded[0], ctx.output_dir / f"{stem}.png")]
        return [write_png(image, ctx.output_dir / f"{stem}-{index}.png") for index, image in enumerate(decoded)]

    def attribute_time(self, clock: StageClock) -> None:
        trace = getattr(self, "_trace", None)
        if trace is None:
            return
        clock.move(trace.encoder_ms, "denoise_loop", "prepare_conditions")
        clock.move(trace.setup_ms, "denoise_loop", "prepare_latents")
        clock.move(trace.vae_decode_ms, "denoise_loop", "decode")
        self._trace = None

    # Stage attribution -----------------------------------------------------------------------------------------
    @contextmanager
    def _stage_tracer(self, pipe: Any, check_cancelled: Callable[[], None]) -> Iterator[_CallTrace]:
        """Time the call's parts, and honour a cancel (or the job's time limit) before every denoiser forward and
        every VAE decode call: inside a step, and between the chunks a video pipeline decodes."""
        trace = _CallTrace(self.backend, check_cancelled)
        handles = []
        for name in ENCODER_COMPONENTS:
            module = getattr(pipe, name, None)
            if module is not None and hasattr(module, "register_forward_pre_hook"):
                handles.append(module.register_forward_pre_hook(trace.encoder_start))
                handles.append(module.register_forward_hook(trace.encoder_end))
        for name in COMPILED_COMPONENTS:
            module = getattr(pipe, name, None)
            if module is not None:
                handles.append(module.register_forward_pre_hook(trace.denoiser_start))
        vae = getattr(pipe, "vae", None)
        if vae is not None:
            vae.decode = trace.timed(vae.decode)
        trace.begin()
        try:
            yield trace
        finally:
            for handle in handles:
                handle.remove()
            if vae is not None and "decode" in vars(vae):
                del vae.decode


@contextmanager
def _scheduler_step_progress(pipe: Any, ctx: RunContext) -> Iterator[None]:
    """Progress for a pipeline whose call takes no step callback (HunyuanVideo 1.5, driven by a guider): its loop
    still calls ``scheduler.step`` once per step, so each finished step is reported from there."""
    scheduler = pipe.scheduler
    original_step = scheduler.step
    finished = 0

    def step(*args: Any, **kwargs: Any) -> Any:
        nonlocal finished
        output = original_step(*args, **kwargs)
        ctx.step(finished, getattr(pipe, "_num_timesteps", None) or ctx.config.get("num_inference_steps"))
        finished += 1
        return output

    scheduler.step = step
    try:
        yield
    finally:
        if "step" in vars(scheduler):
            del scheduler.step


@contextmanager
def _input_checks_blame_the_request(pipe: Any) -> Iterator[None]:
    """A ``ValueError`` from the pipeline's own ``check_inputs`` is the library refusing the request (a size its
    model cannot take, say, where the registry only knows the common rule): fail the job as invalid input, not as an
    internal error."""
    check = getattr(pipe, "check_inputs", None)
    if check is None:
        yield
        return

    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            return check(*args, **kwargs)
        except ValueError as exc:
            raise InvalidInputError(f"{type(pipe).__name__} refused the request: {exc}") from exc

    pipe.check_inputs = checked
    try:
        yield
    finally:
        if "check_inputs" in vars(pipe):
            del pipe.check_inputs


class _CallTrace:
    """Times the parts of one diffusers ``__call__``: encoders, setup before the first denoiser step, VAE decode.
    ``check_cancelled`` runs before each denoiser forward and each decode call (it raises to stop the run)."""

    def __init__(self, backend: Backend, check_cancelled: Callable[[], None] = lambda: None) -> None:
        self.backend = backend
        self.check_cancelled = check_cancelled
        self.started = 0.0
        self.first_denoise: float | None = None
        self.encoder_ms = 0.0
        self.vae_decode_ms = 0.0
        self._encoder_started = 0.0

    @property
    def setup_ms(self) -> float:
        if self.first_denoise is None:
            return 0.0
        return max(0.0, (self.first_denoise - self.started) * 1000 - self.encoder_ms)

    def begin(self) -> None:
        self.started = time.perf_counter()

    def encoder_start(self, *_: Any) -> None:
        self._encoder_started = time.perf_counter()

    def encoder_end(self, *_: Any) -> None:
        if self.first_denoise is None:
            self.backend.synchronize()
            self.encoder_ms += (time.perf_counter() - self._encoder_started) * 1000

    def denoiser_start(self, *_: Any) -> None:
        self.check_cancelled()
        if self.first_denoise is None:
            self.backend.synchronize()
            self.first_denoise = time.perf_counter()

    def timed(self, method: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.first_denoise is None:  # encoding an init image, not decoding the result
                return method(*args, **kwargs)
            self.check_cancelled()
            self.backend.synchronize()
            started = time.perf_counter()
            output = method(*args, **kwargs)
            self.backend.synchronize()
            self.vae_decode_ms += (time.perf_counter() - started) * 1000
            return output

        return wrapper


def _to_pil(item: Any) -> Any:
    from PIL import Image

    if isinstance(item, Image.Image):
        return item.convert("RGB")
    import numpy as np

    array = np.asarray(item)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    return Image.fromarray(array).convert("RGB")


def import_diffusers() -> Any:
    """diffusers, with the libraries' own progress bars off and a clear error when it is missing."""
    try:
        import diffusers
        import transformers
    except ImportError as exc:
        raise DependencyUnavailableError(
            "diffusers is not installed; install the runtime extra: pip install 'omnirt[runtime]'."
        ) from exc
    # Loading bars from the libraries would interleave with OmniRT's own progress; OmniRT reports loads as events.
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    import_logger = logging.getLogger("transformers.utils.import_utils")
    if not any(isinstance(existing, _TorchvisionFallbackFilter) for existing in import_logger.filters):
        import_logger.addFilter(_TorchvisionFallbackFilter())
    acceleration.quiet_torchao_import_notices()
    return diffusers


class _TorchvisionFallbackFilter(logging.Filter):
    """Drop transformers' note that image processors use their PIL backend without torchvision.

    That is the expected set-up of a CPU-only torch (see the README); the PIL processors give the same inputs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "requires torchvision (not installed)" not in record.getMessage()
