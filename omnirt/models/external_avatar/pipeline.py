"""Talking-head models that run their upstream repository's own script per request: one row per model.

OmniRT does not re-implement SoulX-FlashHead, SoulX-LiveAct or LongCat-Video-Avatar. A worker with the model's
checkout and an accelerator runs the checkout's entry script through :mod:`omnirt.runtime.launcher` (``python``,
``torchrun`` or ``accelerate``), finds the MP4 where that script writes it, makes sure the request's audio is muxed
in, and returns it. Each row of :data:`SCRIPT_MODELS` says which script, how the request becomes its command-line
arguments, and where the video lands:

- ``soulx-flashhead-1.3b``: ``generate_video.py --ckpt_dir --wav2vec_dir --model_type --cond_image --audio_path
  --audio_encode_mode --base_seed --save_file``; the video is ``--save_file`` (muxed upstream). The frame rate is
  the checkout's own (``tgt_fps`` of its inference config, 25): ``fps`` is accepted (OpenTalking sends it) and a
  different rate in the output is reported as a warning event. The earlier OmniRT's Ascend knobs reach the script as
  ``FLASHHEAD_*`` environment variables, which a CUDA checkout ignores.
- ``soulx-liveact-14b``: ``generate.py --size --ckpt_dir --wav2vec_dir --fps --seed --audio_cfg --input_json [flags]``
  with a one-item JSON list ``[{cond_image, cond_audio, prompt}]``; the video is ``<image stem>_<audio stem>.mp4`` in
  the checkout (its working directory), moved out afterwards. With ``platform: ascend_npu`` (the default, as in the
  earlier OmniRT) the Ascend checkout's extensions are used as well: a ``prepare_text_cache.py`` step on one device
  when the checkout has it, and ``--rank0_t5_only``/``--sample_steps``.
- ``longcat-video-avatar-1.5``: ``run_demo_avatar_single_audio_to_video.py --input_json --checkpoint_dir
  --output_dir --model_type --stage_1 --resolution --num_segments --num_inference_steps ...`` with a JSON
  ``{prompt, cond_image, cond_audio: {person1}}``; the video is ``<output_dir>/<stage_1>_demo_1.mp4``, or
  ``video_continue_<n>.mp4`` for ``n`` segments. The script needs torchrun (it reads ``RANK``).

Where a checkout and its weights live is worker configuration: ``repo_path``/``ckpt_dir`` in the request, else
``OMNIRT_<MODEL>_REPO``/``OMNIRT_<MODEL>_CKPT_DIR``; ``OMNIRT_<MODEL>_CONFIG`` (a JSON object) gives this worker's
defaults for any other config key (``wav2vec_dir``, ``launcher``, ``python_executable``, ``env_script``...), under
what the request sets. Without a checkout the job fails with ``dependency_unavailable``.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnirt.contracts.errors import DependencyUnavailableError, InvalidInputError
from omnirt.contracts.types import Artifact, GenerateResult, RunReport
from omnirt.models.base import BasePipeline, RunContext
from omnirt.registry.registry import register_model
from omnirt.registry.validation import choice_errors, rule_errors
from omnirt.runtime.launcher import Launch, ScriptFailedError, checkout_lock, run_script
from omnirt.settings import Settings

SAMPLE_RATE = 16000  # the request's audio, as muxed into the video when a script leaves it silent
TALKING_PROMPT = "A person is talking. Only the foreground characters are moving, the background remains static."

#: Config keys every script-backed model takes: where the checkout is, and how its script is launched.
LAUNCH_CONFIG = (
    "repo_path",
    "ckpt_dir",
    "python_executable",
    "launcher",
    "nproc_per_node",
    "num_processes",
    "accelerate_executable",
    "visible_devices",
    "env_script",
    "ascend_env_script",
    "timeout",
)


@dataclass
class ScriptJob:
    """One request, resolved on the worker: effective config, the checkout, weights and input files."""

    row: ScriptModel
    config: dict[str, Any]
    repo: Path
    ckpt_dir: Path
    wav2vec_dir: Path | None
    image: Path | None
    audio: Path
    audio_samples: Any
    prompt: str
    workdir: Path

    @property
    def audio_s(self) -> float:
        return len(self.audio_samples) / SAMPLE_RATE

    def launch(self, script: str, args: list[str], *, env: dict[str, str] | None = None, **overrides: Any) -> Launch:
        """A :class:`Launch` of ``script`` in the checkout with this job's launcher settings."""
        config = self.config
        values: dict[str, Any] = {
            "repo_path": self.repo,
            "script": script,
            "args": args,
            "launcher": config.get("launcher") or "python",
            "python_executable": str(config.get("python_executable") or "python"),
            "nproc_per_node": int(config.get("nproc_per_node") or 1),
            "num_processes": config.get("num_processes"),
            "accelerate_executable": config.get("accelerate_executable"),
            "env_script": config.get("env_script") or config.get("ascend_env_script"),
            "visible_devices": _text(config.get("visible_devices")),
            "env": env or {},
            "timeout_s": float(config["timeout"]) if config.get("timeout") else None,
        }
        values.update(overrides)
        return Launch(**values)


@dataclass
class Plan:
    """What to run (in order) and where the last launch leaves the video."""

    launches: list[Launch]
    output: Path
    fps: float | None  # the frame rate the script was asked for, when it takes one
    leftovers: list[Path] = field(default_factory=list)  # files the script writes into the checkout


@dataclass(frozen=True)
class ScriptModel:
    """One row: a registered model id and how its upstream script is run."""

    id: str
    script: str
    summary: str
    settings_prefix: str  # <prefix>_repo, <prefix>_ckpt_dir, <prefix>_config in omnirt.settings
    required_inputs: tuple[str, ...]
    optional_inputs: tuple[str, ...]
    model_config: tuple[str, ...]
    default_config: dict[str, Any]
    resource_hint: dict[str, Any]
    backend_status: dict[str, str]
    plan: Callable[[ScriptJob], Plan]
    progress: str | None = None  # a regex over output lines: group 1 the chunk index, group 2 (optional) the total
    progress_from_one: bool = False  # the regex's index counts from 1
    needs_wav2vec: bool = False
    choices: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    @property
    def supported_config(self) -> tuple[str, ...]:
        return LAUNCH_CONFIG + (("wav2vec_dir",) if self.needs_wav2vec else ()) + self.model_config

    @property
    def env_prefix(self) -> str:
        return "OMNIRT_" + self.settings_prefix.upper()


# -- the three rows' arguments -------------------------------------------------------------------------------------


def _flag(config: dict[str, Any], key: str) -> list[str]:
    return [f"--{key}"] if config.get(key) else []


def _bool_env(value: Any) -> str:
    return "1" if value else "0"


def flashhead_plan(job: ScriptJob) -> Plan:
    config = job.config
    assert job.image is not None and job.wav2vec_dir is not None
    save_file = job.workdir / "flashhead.mp4"
    args = [
        "--ckpt_dir", str(job.ckpt_dir),
        "--wav2vec_dir", str(job.wav2vec_dir),
        "--model_type", str(config.get("model_type", "pro")),
        "--cond_image", str(job.image),
        "--audio_path", str(job.audio),
        "--audio_encode_mode", str(config.get("audio_encode_mode", "stream")),
        "--base_seed", str(int(config.get("seed", 9999))),
        "--save_file", str(save_file),
    ]  # fmt: skip
    env = {
        "FLASHHEAD_DEVICE": str(config.get("device", "npu")),
        "FLASHHEAD_VAE_2D_SPLIT": _bool_env(config.get("vae_2d_split")),
        "FLASHHEAD_LATENT_CARRY": _bool_env(config.get("latent_carry")),
        "FLASHHEAD_NPU_FUSION_ATTENTION": _bool_env(config.get("npu_fusion_attention")),
    }
    if config.get("sample_steps") is not None:
        env["FLASHHEAD_SAMPLE_STEPS"] = str(int(config["sample_steps"]))
    return Plan([job.launch("generate_video.py", args, env=env)], save_file, fps=None)


LIVEACT_FLAGS = ("t5_cpu", "offload_cache", "fp8_kv_cache", "block_offload", "dura_print", "steam_audio", "mean_memory")


def liveact_plan(job: ScriptJob) -> Plan:
    config = job.config
    assert job.image is not None and job.wav2vec_dir is not None
    ascend = str(config.get("platform", "ascend_npu")) == "ascend_npu"
    token = uuid.uuid4().hex[:12]  # upstream names its output after the inputs' stems: make them this job's own
    image = _copy(job.image, job.workdir / f"omnirt_{token}_image{job.image.suffix}")
    audio = _copy(job.audio, job.workdir / f"omnirt_{token}_audio{job.audio.suffix}")
    input_json = job.workdir / "liveact_input.json"
    input_json.write_text(
        json.dumps([{"cond_image": str(image), "cond_audio": str(audio), "prompt": job.prompt}], ensure_ascii=False)
    )
    fps = int(config.get("fps", 20))
    args = [
        "--size", str(config.get("size", "416*720")),
        "--ckpt_dir", str(job.ckpt_dir),
        "--wav2vec_dir", str(job.wav2vec_dir),
        "--fps", str(fps),
        "--seed", str(int(config.get("seed", 42))),
        "--audio_cfg", str(float(config.get("audio_cfg", 1.0))),
        "--input_json", str(input_json),
    ]  # fmt: skip
    for key in LIVEACT_FLAGS:
        args += _flag(config, key)
    env = {"PLATFORM": str(config.get("platform", "ascend_npu"))}
    launches = []
    if ascend:  # the Ascend checkout's extensions (the earlier OmniRT's runtime); the public checkout has none
        args += _flag(config, "rank0_t5_only")
        if config.get("sample_steps") is not None:
            args += ["--sample_steps", str(int(config["sample_steps"]))]
        if config.get("prepare_text_cache") and (job.repo / "prepare_text_cache.py").is_file():
            text_args = ["--ckpt_dir", str(job.ckpt_dir), "--input_json", str(input_json)]
            text_args += ["--device", str(config.get("text_cache_device", "npu")), *_flag(config, "force_text_cache")]
            devices = _text(config.get("text_cache_visible_devices")) or _first(config.get("visible_devices"))
            launches.append(
                job.launch("prepare_text_cache.py", text_args, env=env, launcher="python", visible_devices=devices)
            )
    if config.get("launcher") == "torchrun":
        env["GPU_NUM"] = str(int(config.get("nproc_per_node") or 1))
    launches.append(job.launch("generate.py", args, env=env))
    output = job.repo / f"{image.stem.split('.')[0]}_{audio.stem.split('.')[0]}.mp4"
    return Plan(launches, output, fps=fps, leftovers=[output])


#: Switches (true/false) across the three rows.
BOOLEAN_CONFIG = (
    "vae_2d_split",
    "latent_carry",
    "npu_fusion_attention",
    *LIVEACT_FLAGS,
    "rank0_t5_only",
    "prepare_text_cache",
    "force_text_cache",
    "use_distill",
    "use_int8",
)

LONGCAT_SCRIPT = "run_demo_avatar_single_audio_to_video.py"
LONGCAT_FRAMES, LONGCAT_COND_FRAMES = 93, 13  # frames per segment, frames each continuation conditions on


def longcat_segments(audio_s: float, fps: float) -> int:
    """Segments that cover ``audio_s`` seconds: the first renders 93 frames, each further one 80 more."""
    frames = int(-(-audio_s * fps // 1))
    extra = max(0, frames - LONGCAT_FRAMES)
    return 1 + -(-extra // (LONGCAT_FRAMES - LONGCAT_COND_FRAMES))


def longcat_plan(job: ScriptJob) -> Plan:
    config = job.config
    stage = str(config.get("stage", "ai2v"))
    if stage == "ai2v" and job.image is None:
        raise InvalidInputError("longcat-video-avatar-1.5 needs inputs.image for stage ai2v (or use stage at2v).")
    fps = 25.0 if config.get("model_type", "avatar-v1.5") == "avatar-v1.5" else 16.0
    segments = int(config.get("num_segments") or longcat_segments(job.audio_s, fps))
    request: dict[str, Any] = {"prompt": job.prompt, "cond_audio": {"person1": str(job.audio)}}
    if job.image is not None:
        request["cond_image"] = str(job.image)
    input_json = job.workdir / "longcat_input.json"
    input_json.write_text(json.dumps(request, ensure_ascii=False))
    output_dir = job.workdir / "longcat_output"
    parallel = config.get("context_parallel_size") or (
        config.get("num_processes") or config.get("nproc_per_node")
        if config.get("launcher") == "accelerate"
        else config.get("nproc_per_node")
    )
    args = [
        "--input_json", str(input_json),
        "--checkpoint_dir", str(job.ckpt_dir),
        "--output_dir", str(output_dir),
        "--model_type", str(config.get("model_type", "avatar-v1.5")),
        "--stage_1", stage,
        "--resolution", str(config.get("resolution", "480p")),
        "--num_segments", str(segments),
        "--num_inference_steps", str(int(config.get("num_inference_steps", 8))),
        "--text_guidance_scale", str(float(config.get("text_guidance_scale", 4.0))),
        "--audio_guidance_scale", str(float(config.get("audio_guidance_scale", 4.0))),
        "--context_parallel_size", str(int(parallel or 1)),
    ]  # fmt: skip
    for key in ("ref_img_index", "mask_frame_range"):
        if config.get(key) is not None:
            args += [f"--{key}", str(int(config[key]))]
    args += _flag(config, "use_distill") + _flag(config, "use_int8")
    name = f"{stage}_demo_1.mp4" if segments == 1 else f"video_continue_{segments}.mp4"
    return Plan([job.launch(LONGCAT_SCRIPT, args)], output_dir / name, fps=None)


ACCELERATOR = "a CUDA GPU or Ascend NPU host with the upstream checkout"

SCRIPT_MODELS: tuple[ScriptModel, ...] = (
    ScriptModel(
        id="soulx-flashhead-1.3b",
        script="generate_video.py",
        summary=(
            "SoulX-FlashHead 1.3B talking head (portrait + audio -> MP4): runs the upstream checkout's "
            "generate_video.py per request; needs OMNIRT_FLASHHEAD_REPO/CKPT_DIR and an accelerator."
        ),
        settings_prefix="flashhead",
        required_inputs=("image", "audio"),
        optional_inputs=(),
        model_config=(
            "model_type",
            "audio_encode_mode",
            "seed",
            "fps",
            "sample_steps",
            "vae_2d_split",
            "latent_carry",
            "npu_fusion_attention",
            "device",
        ),
        default_config={
            "model_type": "pro",
            "audio_encode_mode": "stream",
            "sample_steps": 2,
            "vae_2d_split": True,
            "latent_carry": False,
            "npu_fusion_attention": True,
            "device": "npu",
            "launcher": "torchrun",
            "nproc_per_node": 4,
            "fps": 25,
        },
        resource_hint={"min_vram_gb": 48, "vram_scope": "aggregate", "accelerator": ACCELERATOR},
        backend_status={"ascend": "supported", "cuda": "supported"},
        plan=flashhead_plan,
        progress=r"Generate video chunk-(\d+) done",
        needs_wav2vec=True,
        choices={"model_type": ("pro", "lite"), "audio_encode_mode": ("stream", "once"), "device": ("npu", "cuda")},
    ),
    ScriptModel(
        id="soulx-liveact-14b",
        script="generate.py",
        summary=(
            "SoulX-LiveAct 14B audio-driven avatar (portrait + audio [+ prompt] -> MP4): runs the upstream "
            "checkout's generate.py per request; needs OMNIRT_LIVEACT_REPO/CKPT_DIR and an accelerator."
        ),
        settings_prefix="liveact",
        required_inputs=("image", "audio"),
        optional_inputs=("prompt",),
        model_config=(
            "size",
            "fps",
            "seed",
            "audio_cfg",
            *LIVEACT_FLAGS,
            "platform",
            "rank0_t5_only",
            "sample_steps",
            "prepare_text_cache",
            "text_cache_device",
            "text_cache_visible_devices",
            "force_text_cache",
        ),
        default_config={
            "launcher": "torchrun",
            "nproc_per_node": 4,
            "size": "416*720",
            "fps": 20,
            "prepare_text_cache": True,
            "text_cache_device": "npu",
            "t5_cpu": False,
            "rank0_t5_only": True,
            "sample_steps": 3,
            "steam_audio": True,
            "platform": "ascend_npu",
        },
        resource_hint={"min_vram_gb": 64, "vram_scope": "aggregate", "accelerator": ACCELERATOR},
        backend_status={"ascend": "supported", "cuda": "supported"},
        plan=liveact_plan,
        progress=r"Done Block (\d+)",
        needs_wav2vec=True,
        choices={"platform": ("ascend_npu", "cuda")},
    ),
    ScriptModel(
        id="longcat-video-avatar-1.5",
        script=LONGCAT_SCRIPT,
        summary=(
            "LongCat-Video-Avatar 1.5 (audio [+ portrait, prompt] -> MP4): runs the upstream LongCat-Video "
            "checkout's avatar script under torchrun per request; needs OMNIRT_LONGCAT_AVATAR_REPO/CKPT_DIR and "
            "accelerators."
        ),
        settings_prefix="longcat_avatar",
        required_inputs=("audio",),
        optional_inputs=("image", "prompt"),
        model_config=(
            "model_type",
            "stage",
            "resolution",
            "num_inference_steps",
            "text_guidance_scale",
            "audio_guidance_scale",
            "num_segments",
            "context_parallel_size",
            "ref_img_index",
            "mask_frame_range",
            "use_distill",
            "use_int8",
            "fps",
        ),
        default_config={
            "launcher": "torchrun",
            "nproc_per_node": 8,
            "num_inference_steps": 8,
            "fps": 25,
            "resolution": "480p",
            "model_type": "avatar-v1.5",
            "stage": "ai2v",
            "use_distill": True,
        },
        resource_hint={"min_vram_gb": 256, "vram_scope": "aggregate", "accelerator": ACCELERATOR},
        backend_status={"cuda": "supported", "ascend": "supported"},
        plan=longcat_plan,
        progress=r"Generating segment (\d+)/(\d+)",
        progress_from_one=True,
        choices={
            "stage": ("ai2v", "at2v"),
            "resolution": ("480p", "720p"),
            "model_type": ("avatar-v1.5", "avatar-v1.0"),
        },
    ),
)


# -- the pipeline --------------------------------------------------------------------------------------------------


class ExternalScriptPipeline(BasePipeline):
    """Runs one :class:`ScriptModel` row's upstream script per request (weightless from OmniRT's point of view)."""

    execution_mode = "subprocess"
    row: ScriptModel

    def __init__(self, *, spec: Any, backend: Any, dtype: str, **_: Any) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)
        self._scratch: dict[int, list[Path]] = {}  # per run: its scratch folder, files the script left in the checkout
        self._held: dict[int, ExitStack] = {}  # per run: the checkout lock, held from the launch to the export

    def run(self, ctx: RunContext, report: RunReport) -> GenerateResult:
        """The five stages; whatever way the run ends (success, failure, cancel), its scratch files go."""
        self._scratch[id(ctx)] = []
        self._held[id(ctx)] = ExitStack()
        try:
            return super().run(ctx, report)
        finally:
            self._held.pop(id(ctx)).close()
            for path in self._scratch.pop(id(ctx), []):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    @classmethod
    def upstream_configured(cls) -> bool:
        """Whether this process is told where the checkout is (discovery's ``not_configured`` otherwise)."""
        row = cls.row
        return bool(Settings.value(f"{row.settings_prefix}_repo") or _operator_config(row).get("repo_path"))

    # prepare_conditions: the job on this worker ---------------------------------------------------------------
    def prepare_conditions(self, ctx: RunContext) -> dict[str, Any]:
        from omnirt.runtime.audio import load_audio

        row = self.row
        config = effective_config(row, ctx.config, ctx.request.config)
        _check_config(row, config)
        repo = _required_dir(row, "repo_path", config.get("repo_path") or Settings.value(f"{row.settings_prefix}_repo"))
        if not (repo / row.script).is_file():
            raise DependencyUnavailableError(
                f"{row.id}: the checkout {repo} has no {row.script}; point {row.env_prefix}_REPO (or config.repo_path) "
                "at the upstream repository."
            )
        ckpt = config.get("ckpt_dir") or Settings.value(f"{row.settings_prefix}_ckpt_dir")
        ckpt_dir = _required_dir(row, "ckpt_dir", ckpt, repo)
        wav2vec_dir = _required_dir(row, "wav2vec_dir", config.get("wav2vec_dir"), repo) if row.needs_wav2vec else None
        workdir = ctx.output_dir / f".{row.id}-work-{uuid.uuid4().hex[:8]}"
        (workdir / "inputs").mkdir(parents=True, exist_ok=True)
        self._scratch.setdefault(id(ctx), []).append(workdir)
        inputs = ctx.request.inputs
        image = _input_file(inputs.get("image"), workdir / "inputs", "image") if inputs.get("image") else None
        audio = _input_file(inputs["audio"], workdir / "inputs", "audio")
        samples = load_audio(str(audio), sample_rate=SAMPLE_RATE)
        job = ScriptJob(
            row=row,
            config=config,
            repo=repo,
            ckpt_dir=ckpt_dir,
            wav2vec_dir=wav2vec_dir,
            image=image,
            audio=audio,
            audio_samples=samples,
            prompt=str(inputs.get("prompt") or TALKING_PROMPT),
            workdir=workdir,
        )
        return {"job": job}

    def prepare_latents(self, ctx: RunContext, conditions: dict[str, Any]) -> Plan:
        plan = self.row.plan(conditions["job"])
        self._scratch.setdefault(id(ctx), []).extend(plan.leftovers)
        return plan

    # denoise_loop: the scripts run --------------------------------------------------------------------------------
    def denoise_loop(self, ctx: RunContext, plan: Plan, conditions: dict[str, Any]) -> dict[str, Any]:
        job: ScriptJob = conditions["job"]
        pattern = re.compile(self.row.progress) if self.row.progress else None
        if plan.leftovers:  # the script writes fixed paths in its checkout: one run there at a time, to the export
            self._held[id(ctx)].enter_context(checkout_lock(job.repo, ctx.check_cancelled))
        runs = []
        for launch in plan.launches:
            label = Path(launch.script).name

            def on_line(line: str, label: str = label) -> None:
                ctx.emit("script_output", "denoise_loop", keep=False, script=label, line=line[:2000])
                match = pattern.search(line) if pattern else None
                if match:
                    index = int(match.group(1)) - (1 if self.row.progress_from_one else 0)
                    total = int(match.group(2)) if match.lastindex and match.lastindex >= 2 else None
                    ctx.step(max(index, 0), total)

            run = run_script(launch, check_cancelled=ctx.check_cancelled, on_line=on_line, label=label)
            runs.append({"script": label, "elapsed_s": round(run.elapsed_s, 3)})
        ctx.emit("scripts_finished", "denoise_loop", runs=runs)
        return {"plan": plan, "runs": runs, "job": job}

    # decode: the script's video -----------------------------------------------------------------------------------
    def decode(self, ctx: RunContext, raw: dict[str, Any]) -> dict[str, Any]:
        from omnirt.models.external_avatar.video import probe

        plan: Plan = raw["plan"]
        if not plan.output.is_file():
            raise ScriptFailedError(
                f"{self.row.script} finished but wrote no video where it writes it ({plan.output.name}).",
                details={"script": self.row.script},
            )
        return {**raw, "info": probe(plan.output)}

    # export: audio muxed, moved into the job's folder ------------------------------------------------------------
    def export(self, ctx: RunContext, decoded: dict[str, Any]) -> list[Artifact]:
        from omnirt.models.external_avatar.video import mux_audio, probe
        from omnirt.runtime.export import finished

        job: ScriptJob = decoded["job"]
        plan: Plan = decoded["plan"]
        info = decoded["info"]
        target = ctx.output_dir / f"{self.row.id}.mp4"
        if info.has_audio:
            shutil.move(str(plan.output), target)
        else:
            mux_audio(plan.output, target, job.audio_samples, SAMPLE_RATE)
            ctx.emit("warning", "export", message=f"{self.row.script} wrote a silent video; the audio was muxed.")
            info = probe(target)
        asked = job.config.get("fps")
        if asked and info.fps and abs(float(asked) - info.fps) > 0.01:
            ctx.emit(
                "warning",
                "export",
                message=f"{self.row.id} rendered at {info.fps:g} fps; the request asked for {float(asked):g}.",
            )
        return [
            finished(
                Artifact(
                    kind="video",
                    path=str(target),
                    mime="video/mp4",
                    width=info.width,
                    height=info.height,
                    num_frames=info.num_frames,
                    fps=info.fps,
                    duration_s=info.duration_s,
                    sample_rate=info.sample_rate,
                )
            )
        ]


# -- config and inputs ---------------------------------------------------------------------------------------------


def _operator_config(row: ScriptModel) -> dict[str, Any]:
    value = Settings.value(f"{row.settings_prefix}_config") or {}
    unknown = sorted(set(value) - set(row.supported_config))
    if unknown:
        raise DependencyUnavailableError(
            f"{row.env_prefix}_CONFIG names keys {row.id} does not take: {', '.join(unknown)}. "
            f"Supported: {', '.join(row.supported_config)}."
        )
    return dict(value)


def effective_config(row: ScriptModel, resolved: dict[str, Any], requested: dict[str, Any]) -> dict[str, Any]:
    """The registry's resolved config, with this worker's defaults (``OMNIRT_<MODEL>_CONFIG``) for the keys the
    request does not set itself."""
    config = dict(resolved)
    for key, value in _operator_config(row).items():
        if key not in requested:
            config[key] = value
    return config


def config_choices(row: ScriptModel) -> dict[str, tuple[Any, ...]]:
    """The row's enumerations and its true/false switches, as the registry checks them."""
    return {**row.choices, **{key: (True, False) for key in BOOLEAN_CONFIG if key in row.supported_config}}


def _check_config(row: ScriptModel, config: dict[str, Any]) -> None:
    """The checks validation ran on the request, again on the config with this worker's defaults merged in."""
    problems = [
        *choice_errors(config_choices(row), config),
        *rule_errors({key: config.get(key) for key in LAUNCH_CONFIG}),
    ]
    if problems:
        raise InvalidInputError(f"{row.id}: " + " ".join(problems))


def _required_dir(row: ScriptModel, key: str, value: Any, repo: Path | None = None) -> Path:
    setting = {"repo_path": "_REPO", "ckpt_dir": "_CKPT_DIR"}.get(key)
    where = f"{row.env_prefix}{setting} or config.{key}" if setting else f"config.{key} (or {row.env_prefix}_CONFIG)"
    if value in (None, ""):
        raise DependencyUnavailableError(
            f"{row.id} runs its upstream checkout, which this worker is not configured for: set {where}."
        )
    path = Path(str(value)).expanduser()
    if repo is not None and not path.is_absolute():
        path = repo / path
    if not path.is_dir():
        raise DependencyUnavailableError(f"{row.id}: {key} {path} is not a directory (set {where}).")
    return path.resolve()


def _input_file(value: Any, folder: Path, name: str) -> Path:
    """A file for the script to read: the request's own path, or bytes / a ``data:`` URL written into ``folder``."""
    import base64

    if isinstance(value, str) and not value.startswith("data:"):
        path = Path(value).expanduser()
        if not path.is_file():
            raise InvalidInputError(f"Input '{name}' file does not exist.")
        return path.resolve()
    if isinstance(value, str):
        header, _, payload = value.partition(",")
        data = base64.b64decode(payload)
        suffix = {"image/png": ".png", "image/jpeg": ".jpg", "audio/wav": ".wav", "audio/x-wav": ".wav"}.get(
            header[5:].split(";")[0], ".bin"
        )
    elif isinstance(value, (bytes, bytearray)):
        data, suffix = bytes(value), ".bin"
    else:
        raise InvalidInputError(f"Input '{name}' must be a path, a data: URL or bytes.")
    path = folder / f"{name}{suffix}"
    path.write_bytes(data)
    return path.resolve()


def _copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _first(value: Any) -> str | None:
    text = _text(value)
    return text.split(",")[0].strip() if text else None


# -- registration: one registered class per row ---------------------------------------------------------------------


def register_script_models() -> None:
    for row in SCRIPT_MODELS:
        cls = type(
            f"ScriptPipeline_{row.settings_prefix}", (ExternalScriptPipeline,), {"row": row, "__module__": __name__}
        )
        register_model(
            id=row.id,
            task="audio2video",
            weightless=True,
            execution_mode="subprocess",
            default_backend="auto",
            resource_hint=row.resource_hint,
            required_inputs=row.required_inputs,
            optional_inputs=row.optional_inputs,
            supported_config=row.supported_config,
            default_config=row.default_config,
            artifact_kind="video",
            tier="core",
            maturity="beta",
            supports_batching=False,
            config_choices=config_choices(row),
            backend_status=row.backend_status,
            summary=row.summary,
            example=(
                f"{row.env_prefix}_REPO=/path/to/checkout {row.env_prefix}_CKPT_DIR=models/... omnirt generate "
                f"--task audio2video --model {row.id} --image speaker.png --audio voice.wav"
            ),
        )(cls)


register_script_models()
