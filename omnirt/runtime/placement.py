"""Where a pipeline's components live: one device, a device map, or CPU offload; plus VAE slicing and tiling.

Placement is decided at load time and is part of the warm-cache key (it changes where weights sit); VAE slicing and
tiling are per-run switches.
"""

from __future__ import annotations

import json
from typing import Any

from omnirt.contracts.errors import RequestValidationError
from omnirt.runtime.backends import Backend

OFFLOAD_SWITCHES = ("enable_model_cpu_offload", "enable_sequential_cpu_offload", "enable_group_offload")


def parse_device_map(value: Any) -> Any:
    """``balanced|auto|sequential``, a mapping, a JSON object, or ``comp:dev,comp:dev`` (digits become ints)."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError("device_map must be balanced, auto, sequential, a JSON object or 'component:device,...'")
    text = value.strip()
    if text in ("balanced", "auto", "sequential"):
        return text
    if text.startswith("{"):
        parsed = json.loads(text)
        if not isinstance(parsed, dict):
            raise ValueError("device_map JSON must be an object")
        return parsed
    mapping: dict[str, Any] = {}
    for part in text.split(","):
        component, sep, device = part.partition(":")
        if not sep or not component.strip() or not device.strip():
            raise ValueError(f"device_map entry '{part}' is not 'component:device'")
        device = device.strip()
        mapping[component.strip()] = int(device) if device.isdigit() else device
    return mapping


def parse_devices(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)) and all(isinstance(item, (str, int)) for item in value):
        return [str(item) for item in value]
    if isinstance(value, str) and value.strip():
        return [item.strip() for item in value.split(",") if item.strip()]
    raise ValueError("devices must be a list or a comma-separated string")


def placement_key(backend: Backend, config: dict[str, Any]) -> str:
    """A short description of the placement, used in the cache key and the run report."""
    for switch in OFFLOAD_SWITCHES:
        if config.get(switch):
            return f"{backend.device_type}:{switch}"
    if config.get("device_map") is not None:
        return f"{backend.device_type}:device_map={parse_device_map(config['device_map'])}"
    devices = parse_devices(config["devices"]) if config.get("devices") is not None else []
    if len(devices) >= 2:
        return f"{backend.device_type}:balanced={','.join(devices)}"
    return str(backend.device(int(devices[0]) if devices and devices[0].isdigit() else 0))


def load_kwargs(backend: Backend, config: dict[str, Any]) -> dict[str, Any]:
    """Extra ``from_pretrained`` arguments: a pipeline-level ``device_map`` where diffusers supports one."""
    device_map = parse_device_map(config["device_map"]) if config.get("device_map") is not None else None
    devices = parse_devices(config["devices"]) if config.get("devices") is not None else []
    if isinstance(device_map, str) or len(devices) >= 2:
        if backend.name == "cpu":
            raise RequestValidationError("device_map strategies and multi-device placement need cuda or ascend.")
        kwargs: dict[str, Any] = {"device_map": "balanced"}
        if len(devices) >= 2:
            free = int(backend.available_memory_gb() * 2**30)
            kwargs["max_memory"] = {int(device): free for device in devices if device.isdigit()}
        return kwargs
    return {}


def place_pipeline(pipe: Any, backend: Backend, config: dict[str, Any]) -> dict[str, str]:
    """Move ``pipe`` where the config says; return component -> device."""
    offload = next((switch for switch in OFFLOAD_SWITCHES if config.get(switch)), None)
    device_map = parse_device_map(config["device_map"]) if config.get("device_map") is not None else None
    if offload is not None:
        if backend.name == "cpu":
            raise RequestValidationError(
                f"{offload} moves weights between an accelerator and the CPU; use cuda or ascend."
            )
        if offload == "enable_group_offload":
            pipe.enable_group_offload(
                onload_device=backend.device(),
                offload_type=config.get("group_offload_type", "block_level"),
                num_blocks_per_group=1,
            )
        else:
            getattr(pipe, offload)(device=backend.device())
    elif isinstance(device_map, dict):
        default = backend.device()
        for name, component in pipe.components.items():
            if hasattr(component, "to") and hasattr(component, "parameters"):
                target = device_map.get(name, default)
                component.to(_device(backend, target))
    elif getattr(pipe, "hf_device_map", None) is None:
        pipe.to(backend.device())
    return device_placement(pipe)


def _device(backend: Backend, target: Any) -> Any:
    import torch

    if isinstance(target, int):
        return backend.device(target)
    return torch.device(target)


def device_placement(pipe: Any) -> dict[str, str]:
    hf_map = getattr(pipe, "hf_device_map", None)
    if isinstance(hf_map, dict):
        return {str(name): str(device) for name, device in hf_map.items()}
    placement = {}
    for name, component in pipe.components.items():
        device = getattr(component, "device", None)
        if device is not None and hasattr(component, "parameters"):
            placement[name] = str(device)
    return placement


def apply_vae_switches(pipe: Any, config: dict[str, Any]) -> None:
    vae = getattr(pipe, "vae", None)
    if vae is None:
        return
    for switch, enable, disable in (
        ("enable_vae_slicing", "enable_slicing", "disable_slicing"),
        ("enable_vae_tiling", "enable_tiling", "disable_tiling"),
    ):
        method = getattr(vae, enable if config.get(switch) else disable, None)
        if method is not None:
            method()
        elif config.get(switch):
            raise RequestValidationError(f"{switch} is not supported by this model's VAE ({type(vae).__name__}).")
