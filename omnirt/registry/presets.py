"""Named config presets (fast, balanced, quality, low-vram), merged base < task < model; explicit config wins."""

from __future__ import annotations

from typing import Any

PRESETS = ("fast", "balanced", "quality", "low-vram")

_BASE: dict[str, dict[str, Any]] = {
    "fast": {"num_inference_steps": 20},
    "balanced": {},
    "quality": {"num_inference_steps": 40},
    "low-vram": {"num_inference_steps": 18, "dtype": "fp16"},
}

_BY_TASK: dict[str, dict[str, dict[str, Any]]] = {
    "text2image": {
        "fast": {"guidance_scale": 5.5},
        "balanced": {"guidance_scale": 7.5},
        "quality": {"guidance_scale": 8.0},
        "low-vram": {},
    },
    "text2video": {
        "fast": {"guidance_scale": 4.0},
        "balanced": {"guidance_scale": 5.0},
        "quality": {"guidance_scale": 6.0},
        "low-vram": {"guidance_scale": 4.0},
    },
    "image2video": {
        "fast": {"guidance_scale": 3.0},
        "balanced": {"guidance_scale": 3.5},
        "quality": {"guidance_scale": 4.0},
        "low-vram": {"guidance_scale": 3.0},
    },
}

# image2image, inpaint, edit and depth2image take the text2image values.
_TASK_ALIASES = {
    "image2image": "text2image",
    "inpaint": "text2image",
    "edit": "text2image",
    "depth2image": "text2image",
}

_BY_MODEL: dict[str, dict[str, dict[str, Any]]] = {
    "flux2.dev": {
        "fast": {"guidance_scale": 2.0, "max_sequence_length": 384},
        "balanced": {"guidance_scale": 2.5, "max_sequence_length": 512},
        "quality": {"guidance_scale": 3.0, "max_sequence_length": 512},
        "low-vram": {"guidance_scale": 2.0, "max_sequence_length": 256, "dtype": "fp16"},
    },
}


def available_presets() -> tuple[str, ...]:
    return PRESETS


def preset_config(preset: str, *, task: str, model_id: str, supported_config: tuple[str, ...]) -> dict[str, Any]:
    """The preset's values for this task and model, limited to config keys the model supports."""
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset '{preset}'. Expected one of: {', '.join(PRESETS)}.")
    merged = dict(_BASE[preset])
    merged.update(_BY_TASK.get(_TASK_ALIASES.get(task, task), {}).get(preset, {}))
    merged.update(_BY_MODEL.get(model_id, {}).get(preset, {}))
    return {key: value for key, value in merged.items() if key in supported_config}
