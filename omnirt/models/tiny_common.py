"""What every tiny random-weight builder shares: seeding, saving in the real layout, and the folder's defaults.

A tiny folder is a real Hugging Face layout (``model_index.json``, one sub-folder per component, safetensors
weights). Beside it, ``omnirt.json`` records the generation defaults the tiny weights were sized for (a tiny Wan
cannot render 81 frames at 480x832 on a laptop in reasonable memory); OmniRT reads the same file from any weights
folder, see :mod:`omnirt.runtime.weights`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omnirt.runtime.weights import write_folder_defaults


def seed_everything(seed: int = 0) -> None:
    """Make the random initialisation of a tiny model reproducible."""
    import torch

    torch.manual_seed(seed)


def save_tiny_pipeline(pipe: Any, target: Path, *, model_id: str, default_config: dict[str, Any]) -> Path:
    """Save ``pipe`` with safetensors into ``target`` and record the defaults its tiny size needs."""
    from omnirt.models.diffusers_pipeline import import_diffusers

    import_diffusers()  # quiets the libraries' progress bars
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(target, safe_serialization=True)
    write_folder_defaults(target, model_id=model_id, default_config=default_config, tiny=True)
    return target


def build_seeded_tiny(
    model_id: str,
    target: Path,
    *,
    family: str,
    builders: Mapping[str, Callable[[], Any]],
    default_config: dict[str, Any],
) -> Path:
    """The usual ``build_tiny``: build ``model_id``'s pipeline from seed 0 with its entry in ``builders`` and save it
    into ``target`` with ``default_config``. ``family`` names the builders in the error for an unknown id."""
    builder = builders.get(model_id)
    if builder is None:
        raise ValueError(f"no tiny {family} builder for {model_id!r}; known: {sorted(builders)}")
    seed_everything(0)
    return save_tiny_pipeline(builder(), Path(target), model_id=model_id, default_config=dict(default_config))


def make_tiny(model_id: str, target: Path, task: str | None = None) -> Path:
    """Write a tiny random-weight copy of registered model ``model_id`` into ``target`` (``omnirt make-tiny``).

    The builder is the ``tiny`` module beside the family's ``pipeline`` module. Aliases build their target model.
    ``task`` picks a task with weights of its own (sd21's depth2image); by default the model's primary task.
    """
    import importlib

    from omnirt.models.diffusers_pipeline import import_diffusers
    from omnirt.registry.registry import get_model

    import_diffusers()  # before the builder imports processors: quiets the libraries' notices and bars
    spec = get_model(model_id, task)
    family = spec.pipeline_cls.__module__.rsplit(".", 1)[0]
    builder = importlib.import_module(f"{family}.tiny")
    return builder.build_tiny(spec.weights_name, Path(target))
