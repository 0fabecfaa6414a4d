"""Where a model's weights come from, and the per-folder defaults a weights folder may carry.

Resolution order (first hit wins):

1. ``config.model_path``: a local folder, or a Hugging Face id;
2. ``<models dir>/<model id>``, where the models dir is ``--models-dir`` / ``OMNIRT_MODELS_DIR``
   (default ``~/.omnirt/models``); ``omnirt make-tiny`` writes there;
3. the spec's hub id, when it is already in the local Hugging Face cache, or when the hub can be reached.

A weights folder may hold ``omnirt.json`` with ``default_config``: generation defaults for that checkpoint. They sit
between the registry's defaults and the preset, so user config and presets still win.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FOLDER_DEFAULTS_FILE = "omnirt.json"


@dataclass(frozen=True)
class WeightsSource:
    """A resolved weights location: a local folder, or a hub id to hand to ``from_pretrained``."""

    location: str
    origin: str  # "model_path" | "models_dir" | "hub"

    @property
    def is_local(self) -> bool:
        return bool(self.location) and Path(self.location).is_dir()


def default_models_dir() -> Path:
    configured = os.environ.get("OMNIRT_MODELS_DIR")
    if configured:
        return Path(configured).expanduser()
    home = Path(os.environ.get("OMNIRT_HOME", "~/.omnirt")).expanduser()
    return home / "models"


def write_folder_defaults(folder: Path, *, model_id: str, default_config: dict[str, Any], tiny: bool = False) -> None:
    payload = {"model": model_id, "tiny": tiny, "default_config": default_config}
    (Path(folder) / FOLDER_DEFAULTS_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_folder_defaults(folder: str | Path | None) -> dict[str, Any]:
    """The ``default_config`` of a weights folder's ``omnirt.json``, or ``{}``."""
    if not folder:
        return {}
    path = Path(folder) / FOLDER_DEFAULTS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    defaults = data.get("default_config", {})
    return dict(defaults) if isinstance(defaults, dict) else {}


def _looks_like_hub_id(value: str) -> bool:
    parts = value.split("/")
    return len(parts) == 2 and all(parts) and not value.startswith((".", "~", "/"))


def _hub_reachable_or_cached(hub_id: str) -> bool:
    """True when the hub id can be loaded: cached locally, or the hub is allowed (not offline mode)."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    if not offline:
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    # diffusers repos have model_index.json, transformers repos config.json
    return any(isinstance(try_to_load_from_cache(hub_id, name), str) for name in ("model_index.json", "config.json"))


def resolve_weights(
    model_id: str,
    *,
    hub_id: str | None,
    model_path: str | None = None,
    models_dir: Path | None = None,
    aliases: tuple[str, ...] = (),
    markers: tuple[str, ...] = (),
    file_ok: bool = False,
) -> WeightsSource:
    """Find the weights for ``model_id``; one clear error naming every place looked at when there are none.

    A models-dir folder counts when it holds ``model_index.json``, ``config.json``, ``omnirt.json`` or one of the
    family's ``markers`` (e.g. ``wav2lip.pth``); ``file_ok`` lets ``model_path`` name a single weights file."""
    from omnirt.contracts.errors import WeightsNotFoundError

    looked: list[str] = []
    if model_path:
        expanded = Path(model_path).expanduser()
        if expanded.is_dir() or (expanded.is_file() and file_ok):
            return WeightsSource(str(expanded.resolve()), "model_path")
        if _looks_like_hub_id(model_path):
            return WeightsSource(model_path, "model_path")
        looked.append(f"config.model_path={model_path} (no such folder)")
    else:
        looked.append("config.model_path (not set)")
    folder_root = models_dir or default_models_dir()
    for name in (model_id, *aliases):
        candidate = folder_root / name
        names = ("model_index.json", "config.json", FOLDER_DEFAULTS_FILE, *markers)
        if any((candidate / marker).exists() for marker in names):
            return WeightsSource(str(candidate.resolve()), "models_dir")
    looked.append(
        f"models dir {folder_root / model_id} (set --models-dir or OMNIRT_MODELS_DIR; `omnirt make-tiny` writes there)"
    )
    if hub_id:
        if _hub_reachable_or_cached(hub_id):
            return WeightsSource(hub_id, "hub")
        looked.append(f"Hugging Face hub id {hub_id} (not in the local cache, and HF_HUB_OFFLINE is set)")
    else:
        looked.append("no Hugging Face hub id is registered for this model")
    raise WeightsNotFoundError(
        f"No weights found for '{model_id}'. Looked in: " + "; ".join(looked) + ".",
        details={"model": model_id, "looked_in": looked},
    )


@contextmanager
def load_errors(model_id: str, location: str, what: str) -> Iterator[None]:
    """Turn a library's loading failures into OmniRT errors: a missing folder or file is ``weights_not_found``, a
    folder laid out for something else (the libraries raise ValueError) is ``weight_format``."""
    from omnirt.contracts.errors import WeightFormatError, WeightsNotFoundError

    try:
        yield
    except OSError as exc:
        raise WeightsNotFoundError(
            f"Could not load {what} for '{model_id}' from {location}: {exc}",
            details={"model": model_id, "location": location},
        ) from exc
    except ValueError as exc:
        raise WeightFormatError(
            f"{location} does not hold {what} weights for '{model_id}': {exc}",
            details={"model": model_id, "location": location},
        ) from exc
