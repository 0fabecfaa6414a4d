"""Request validation against the registry: every problem found at once, errors apart from warnings.

The checks, in order: the (model, task) pair; config resolution (spec defaults < weights-folder defaults < preset <
user config); unknown input and config keys; missing inputs; input paths; value rules (types, ranges, enums,
mutually exclusive switches, device maps, paths); size limits (steps, pixels, frames, images:
:mod:`omnirt.registry.limits`); the scheduler; adapters; the backend; aliases.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnirt.contracts.errors import ModelNotRegisteredError, RequestValidationError
from omnirt.contracts.types import GenerateRequest
from omnirt.registry.limits import limit_errors, limits_for
from omnirt.registry.presets import PRESETS, preset_config
from omnirt.registry.registry import get_model, nearby_models, tasks_of
from omnirt.registry.spec import ModelSpec
from omnirt.runtime.acceleration import (
    LAYERWISE_CASTS,
    QUANTIZATIONS,
    STEP_CACHES,
    check_acceleration_config,
    step_cache_refusal,
)
from omnirt.runtime.launcher import LAUNCHERS
from omnirt.runtime.placement import OFFLOAD_SWITCHES, parse_device_map, parse_devices

PATH_INPUTS = ("image", "mask", "audio")
DTYPES = ("fp16", "bf16", "fp32")

# key -> (expected python types, predicate, description of the valid range)
_NUMBER = (int, float)
VALUE_RULES: dict[str, tuple[tuple[type, ...], Callable[[Any], bool], str]] = {
    "num_inference_steps": ((int,), lambda v: v >= 1, "an integer >= 1"),
    "num_frames": ((int,), lambda v: v >= 1, "an integer >= 1"),
    "num_images_per_prompt": ((int,), lambda v: 1 <= v <= 16, "an integer in [1, 16]"),
    "max_sequence_length": ((int,), lambda v: v >= 1, "an integer >= 1"),
    "decode_chunk_size": ((int,), lambda v: v >= 1, "an integer >= 1"),
    "motion_bucket_id": ((int,), lambda v: v >= 0, "an integer >= 0"),
    "seed": ((int,), lambda v: 0 <= v < 2**63, "an integer in [0, 2**63)"),
    "width": ((int,), lambda v: v >= 8 and v % 8 == 0, "a positive multiple of 8"),
    "height": ((int,), lambda v: v >= 8 and v % 8 == 0, "a positive multiple of 8"),
    "guidance_scale": (_NUMBER, lambda v: v >= 0, "a number >= 0"),
    "guidance_scale_2": (_NUMBER, lambda v: v >= 0, "a number >= 0"),
    "min_guidance_scale": (_NUMBER, lambda v: v >= 0, "a number >= 0"),
    "max_guidance_scale": (_NUMBER, lambda v: v >= 0, "a number >= 0"),
    "frame_bucket": ((int,), lambda v: v >= 0, "an integer >= 0"),
    "true_cfg_scale": (_NUMBER, lambda v: v >= 0, "a number >= 0"),
    "noise_aug_strength": (_NUMBER, lambda v: v >= 0, "a number >= 0"),
    "fps": (_NUMBER, lambda v: v > 0, "a number > 0"),
    "strength": (_NUMBER, lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "dtype": ((str,), lambda v: v in DTYPES, f"one of {', '.join(DTYPES)}"),
    "launcher": ((str,), lambda v: v in LAUNCHERS, f"one of {', '.join(LAUNCHERS)}"),
    "nproc_per_node": ((int,), lambda v: v >= 1, "an integer >= 1"),
    "num_processes": ((int,), lambda v: v >= 1, "an integer >= 1"),
    "timeout": (_NUMBER, lambda v: v > 0, "a number of seconds > 0"),
    "group_offload_type": ((str,), lambda v: v in ("block_level", "leaf_level"), "one of block_level, leaf_level"),
    # omnirt/runtime/acceleration.py and omnirt/runtime/prompt_cache.py
    "quantization": ((str,), lambda v: v in QUANTIZATIONS, f"one of {', '.join(QUANTIZATIONS)}"),
    "layerwise_casting": ((str,), lambda v: v in LAYERWISE_CASTS, f"one of {', '.join(LAYERWISE_CASTS)}"),
    "cache": ((str,), lambda v: v in STEP_CACHES, f"one of {', '.join(STEP_CACHES)}"),
    "cache_threshold": (_NUMBER, lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "prompt_cache": ((bool,), lambda v: True, "true or false"),
    "compile": ((bool,), lambda v: True, "true or false"),
    "stream": ((bool,), lambda v: True, "true or false"),
    "speed": (_NUMBER, lambda v: 0.25 <= v <= 4, "a number in [0.25, 4]"),
    "sample_rate": ((int,), lambda v: 8000 <= v <= 48000, "an integer in [8000, 48000]"),
    "voice": ((str,), lambda v: len(v) <= 120, "a voice name"),
    "language": ((str,), lambda v: len(v) <= 16, "a language code"),
    "use_itn": ((bool,), lambda v: True, "true or false"),
    "batch_size_s": ((int,), lambda v: 1 <= v <= 600, "an integer in [1, 600]"),
    "enable_vae_slicing": ((bool,), lambda v: True, "true or false"),
    "enable_vae_tiling": ((bool,), lambda v: True, "true or false"),
    **{switch: ((bool,), lambda v: True, "true or false") for switch in OFFLOAD_SWITCHES},
}

# Config keys naming files or folders that must exist; ckpt_dir and wav2vec_dir may be relative to repo_path.
PATH_CONFIG = ("repo_path", "ckpt_dir", "wav2vec_dir", "env_script", "ascend_env_script", "python_executable")


@dataclass
class ValidationIssue:
    level: str  # "error" | "warning"
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level, "message": self.message}


@dataclass
class ValidationResult:
    request: GenerateRequest
    model: ModelSpec | None = None
    resolved_backend: str | None = None
    resolved_inputs: dict[str, Any] = field(default_factory=dict)
    resolved_config: dict[str, Any] = field(default_factory=dict)
    issues: list[ValidationIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[str]:
        return [issue.message for issue in self.issues if issue.level == "error"]

    @property
    def warnings(self) -> list[str]:
        return [issue.message for issue in self.issues if issue.level == "warning"]

    def error(self, message: str) -> None:
        self.issues.append(ValidationIssue("error", message))

    def warn(self, message: str) -> None:
        self.issues.append(ValidationIssue("warning", message))

    def raise_for_errors(self) -> None:
        if not self.ok:
            raise RequestValidationError(
                "Request validation failed:\n- " + "\n- ".join(self.errors),
                details={"issues": [issue.to_dict() for issue in self.issues]},
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "request": self.request.to_dict(),
            "resolved_backend": self.resolved_backend,
            "resolved_inputs": _jsonable(self.resolved_inputs),
            "resolved_config": _jsonable(self.resolved_config),
            "model": self.model.id if self.model else None,
            "issues": [issue.to_dict() for issue in self.issues],
        }


def _jsonable(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value if _is_json(value) else repr(value) for key, value in mapping.items()}


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def resolve_config(
    spec: ModelSpec, user_config: dict[str, Any], folder_defaults: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str | None]:
    """Spec defaults < weights-folder defaults < preset < user config. Returns (config, preset applied)."""
    config = dict(spec.capabilities.default_config)
    supported = set(spec.capabilities.supported_config)
    config.update({key: value for key, value in (folder_defaults or {}).items() if key in supported})
    user = dict(user_config)
    preset = user.pop("preset", None)
    if preset is not None:
        config.update(
            preset_config(
                preset, task=spec.task, model_id=spec.canonical_id, supported_config=spec.capabilities.supported_config
            )
        )
    config.update(user)
    return config, preset


def choice_errors(choices: dict[str, tuple[Any, ...]], config: dict[str, Any]) -> list[str]:
    """What ``config`` gets wrong against a model's own enumerations (``ModelCapabilities.config_choices``); types
    are compared strictly (``1`` is not ``true``)."""
    return [
        f"config.{key} must be one of {', '.join(map(_choice_text, allowed))}, got {config[key]!r}."
        for key, allowed in choices.items()
        if config.get(key) is not None and not any(type(config[key]) is type(c) and config[key] == c for c in allowed)
    ]


def _choice_text(choice: Any) -> str:
    return json.dumps(choice) if isinstance(choice, bool) else str(choice)


def rule_errors(config: dict[str, Any]) -> list[str]:
    """What ``config`` gets wrong against the value rules (:data:`VALUE_RULES`: types, ranges, enums)."""
    errors = []
    for key, value in config.items():
        rule = VALUE_RULES.get(key)
        if rule is None or value is None:
            continue
        types, predicate, description = rule
        is_bool = isinstance(value, bool)
        if (is_bool and bool not in types) or not isinstance(value, types) or not predicate(value):
            errors.append(f"config.{key} must be {description}, got {value!r}.")
    return errors


def _check_values(result: ValidationResult, config: dict[str, Any]) -> None:
    for message in rule_errors(config):
        result.error(message)
    steps, strength = config.get("num_inference_steps"), config.get("strength")
    if isinstance(steps, int) and isinstance(strength, (int, float)) and 0 <= strength <= 1 and steps * strength < 1:
        result.error(f"strength {strength} x num_inference_steps {steps} leaves no denoising step; raise either one.")
    for problem in check_acceleration_config(config):
        result.error(problem)
    enabled = [switch for switch in OFFLOAD_SWITCHES if config.get(switch)]
    if len(enabled) > 1:
        result.error(f"Offload switches are mutually exclusive; got {', '.join(enabled)}.")
    for key, parser in (("device_map", parse_device_map), ("devices", parse_devices)):
        if config.get(key) is not None:
            try:
                parser(config[key])
            except (ValueError, json.JSONDecodeError) as exc:
                result.error(f"config.{key} is invalid: {exc}.")
    repo = config.get("repo_path")
    for key in PATH_CONFIG:
        value = config.get(key)
        if value in (None, ""):
            continue
        path = Path(str(value)).expanduser()
        if key in ("ckpt_dir", "wav2vec_dir") and repo and not path.is_absolute():
            path = Path(str(repo)).expanduser() / path
        if not path.exists():
            result.error(f"config.{key} does not exist: {path}.")


def _check_inputs(result: ValidationResult, spec: ModelSpec, inputs: dict[str, Any]) -> None:
    caps = spec.capabilities
    allowed = set(caps.required_inputs) | set(caps.optional_inputs)
    unknown = sorted(set(inputs) - allowed)
    if unknown:
        result.error(
            f"Unsupported inputs for {spec.id} ({spec.task}): {', '.join(unknown)}. "
            f"Supported: {', '.join(sorted(allowed)) or 'none'}."
        )
    for key in caps.required_inputs:
        value = inputs.get(key)
        if value is None or (isinstance(value, (str, list, tuple, dict)) and len(value) == 0):
            result.error(f"Missing required input '{key}' for {spec.id} ({spec.task}).")
    for key in PATH_INPUTS:
        value = inputs.get(key)
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if isinstance(item, str) and item and not item.startswith("data:") and not Path(item).expanduser().exists():
                result.error(f"Input '{key}' file does not exist: {item}.")


def validate_request(
    request: GenerateRequest,
    *,
    backend: str | None = None,
    probe_backend: bool = True,
    folder_defaults: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
) -> ValidationResult:
    """Check ``request`` against the registry. ``probe_backend=False`` skips the local hardware check (the API);
    ``limits`` are the operator's overrides of the request limits (:mod:`omnirt.registry.limits`)."""
    result = ValidationResult(request=request)
    try:
        spec = get_model(request.model, request.task)
    except ModelNotRegisteredError as exc:
        if tasks_of(request.model):
            result.error(exc.message)
        else:
            suggestions = nearby_models(request.model)
            message = f"Unknown model '{request.model}'."
            if suggestions:
                message += f" Did you mean: {', '.join(suggestions)}?"
            result.error(message)
        return result
    result.model = spec
    caps = spec.capabilities

    preset = request.config.get("preset")
    if preset is not None and preset not in PRESETS:
        result.error(f"config.preset must be one of {', '.join(PRESETS)}, got {preset!r}.")
        user_config = {key: value for key, value in request.config.items() if key != "preset"}
    else:
        user_config = dict(request.config)
    if folder_defaults is None and isinstance(user_config.get("model_path"), str):
        from omnirt.runtime.weights import read_folder_defaults

        folder_defaults = read_folder_defaults(user_config["model_path"])
    config, applied = resolve_config(spec, user_config, folder_defaults)
    if applied:
        result.warn(f"Applied preset '{applied}'. Explicit config values still win over preset defaults.")
    result.resolved_config = config
    result.resolved_inputs = dict(request.inputs)

    unknown_config = sorted(set(user_config) - set(caps.supported_config) - {"preset"})
    if unknown_config:
        suggestions = {key: close for key in unknown_config if (close := nearby_config_key(key, caps.supported_config))}
        hint = "".join(f" ('{key}': did you mean '{close}'?)" for key, close in suggestions.items())
        result.error(
            f"Unsupported config for {spec.id} ({spec.task}): {', '.join(unknown_config)}.{hint} "
            f"Supported: {', '.join(sorted(caps.supported_config))}."
        )
    _check_inputs(result, spec, request.inputs)
    _check_values(result, {key: value for key, value in config.items() if key in caps.supported_config})
    for message in choice_errors(caps.config_choices, config):
        result.error(message)
    if config.get("cache") in STEP_CACHES and "cache" in caps.supported_config:
        pipeline_class = getattr(spec.pipeline_cls, "pipeline_classes", {}).get(spec.task)
        if refusal := step_cache_refusal(spec.id, pipeline_class):
            result.error(refusal)
    for message in limit_errors(config, limits_for(spec, limits)):
        result.error(message)

    scheduler = config.get("scheduler")
    if scheduler is not None and caps.supported_schedulers and scheduler not in caps.supported_schedulers:
        result.error(
            f"Scheduler '{scheduler}' is not supported by {spec.id}. Supported: {', '.join(caps.supported_schedulers)}."
        )

    for adapter in request.adapters or []:
        if not caps.adapter_kinds:
            result.error(f"Model {spec.id} does not accept adapters.")
            break
        if adapter.kind not in caps.adapter_kinds:
            result.error(
                f"Adapter kind '{adapter.kind}' is not supported by {spec.id}: {', '.join(caps.adapter_kinds)}."
            )
        if adapter.path.startswith(("hf://", "https://")):
            continue
        local = Path(adapter.path).expanduser()
        if not local.exists():
            result.error(f"Adapter file does not exist: {adapter.path}.")
        elif local.is_file() and local.suffix != ".safetensors":
            result.error(f"Only .safetensors adapters are accepted, got '{local.name}'.")

    requested_backend = backend or request.backend or "auto"
    if probe_backend:
        from omnirt.runtime.backends import BackendUnavailableError, resolve_backend

        try:
            result.resolved_backend = resolve_backend(requested_backend).name
        except BackendUnavailableError as exc:
            result.error(exc.message)
    else:
        result.resolved_backend = requested_backend

    if spec.is_alias:
        result.warn(f"Model '{spec.id}' is an alias of '{spec.canonical_id}'.")
    return result


def nearby_config_key(key: str, supported: tuple[str, ...]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, supported, n=1, cutoff=0.75)
    return matches[0] if matches else None
