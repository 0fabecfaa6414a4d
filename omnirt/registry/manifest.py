"""Model Capability Manifests (``omnirt models ID --manifest``) and the generated ``docs/models.md`` page."""

from __future__ import annotations

from typing import Any

from omnirt.contracts.types import SCHEMA_VERSION
from omnirt.registry.registry import list_available_models
from omnirt.registry.spec import ModelSpec

_DEFAULT_ROLE = {
    "text2audio": "voice-generation",
    "audio2text": "voice-understanding",
    "audio2video": "realtime-avatar",
    "avatar_prepare": "realtime-avatar",
    "text2image": "avatar-asset",
    "image2image": "avatar-asset",
    "inpaint": "avatar-asset",
    "edit": "avatar-asset",
    "depth2image": "avatar-asset",
    "text2video": "idle-video",
    "image2video": "idle-video",
}
REQUIRED_FIELDS = ("schema_version", "model", "task", "tier", "role", "maturity")


def backends_of(spec: ModelSpec) -> dict[str, str]:
    """Backend -> status. Diffusers families run on every backend, the CPU included."""
    caps = spec.capabilities
    if caps.backend_status:
        return dict(caps.backend_status)
    if spec.default_backend not in ("auto", ""):
        return {spec.default_backend: "supported"}
    return {"cuda": "supported", "ascend": "supported", "cpu": "supported"}


def build_manifest(spec: ModelSpec) -> dict[str, Any]:
    caps = spec.capabilities
    service_adapter = caps.service_adapter
    if not service_adapter and spec.task == "text2audio":
        service_adapter = "text2audio.service.v1"
    if not service_adapter and spec.task == "audio2video" and (caps.streaming or caps.realtime):
        service_adapter = "realtime-avatar.ws.v1"
    return {
        "schema_version": SCHEMA_VERSION,
        "model": spec.id,
        "task": spec.task,
        "tier": spec.tier,
        "role": caps.chain_role or _DEFAULT_ROLE.get(spec.task, ""),
        "maturity": caps.maturity,
        "inputs": list(caps.required_inputs),
        "optional_inputs": list(caps.optional_inputs),
        "outputs": [caps.artifact_kind] if caps.artifact_kind else [],
        "config": list(caps.supported_config),
        "default_config": dict(caps.default_config),
        "schedulers": list(caps.supported_schedulers),
        "adapters": list(caps.adapter_kinds),
        "streaming": bool(caps.streaming or caps.realtime),
        "resident": bool(caps.resident or spec.execution_mode == "persistent_worker"),
        "service_adapter": service_adapter,
        "backends": backends_of(spec),
        "execution_mode": spec.execution_mode,
        "queue": caps.queue,
        "hub_id": spec.hub_id,
        "alias_of": caps.alias_of,
        "summary": caps.summary,
    }


def validate_manifest(manifest: dict[str, Any]) -> list[str]:
    """Problems with a manifest (empty when it is well formed)."""
    problems = [f"missing {key}" for key in REQUIRED_FIELDS if not manifest.get(key)]
    for key in ("inputs", "optional_inputs", "outputs", "config"):
        if not isinstance(manifest.get(key), list):
            problems.append(f"{key} must be a list")
    for key in ("default_config", "backends"):
        if not isinstance(manifest.get(key), dict):
            problems.append(f"{key} must be a mapping")
    return problems


def render_markdown() -> str:
    """The ``docs/models.md`` page, generated from the registry's built-in families (plugins are left out)."""
    specs = [
        spec
        for spec in list_available_models(include_aliases=True)
        if spec.pipeline_cls.__module__.startswith("omnirt.models.")
    ]
    lines = [
        "# Models",
        "",
        "Generated from the registry by `omnirt models --format markdown`; `make docs` rewrites it, and a test",
        "fails when it is stale. `omnirt models ID` shows one model in full, `--manifest` its capability manifest.",
        "",
        "| id | task | tier | status | hub id | required inputs | default config | summary |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for spec in specs:
        caps = spec.capabilities
        defaults = ", ".join(f"{key}={value}" for key, value in caps.default_config.items())
        summary = caps.summary + (f" Alias of `{caps.alias_of}`." if caps.alias_of else "")
        lines.append(
            f"| `{spec.id}` | {spec.task} | {spec.tier} | {spec.status} | {spec.hub_id or ''} | "
            f"{', '.join(caps.required_inputs)} | {defaults} | {summary.strip()} |"
        )
    tiers: dict[str, int] = {}
    for spec in specs:
        tiers[spec.tier] = tiers.get(spec.tier, 0) + 1
    lines += [
        "",
        f"{len({spec.id for spec in specs})} ids, {len(specs)} (id, task) entries: "
        + ", ".join(f"{count} {tier}" for tier, count in sorted(tiers.items()))
        + ".",
        "",
    ]
    return "\n".join(lines)
