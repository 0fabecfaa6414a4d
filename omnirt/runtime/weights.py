"""Where a model's weights come from, and the per-folder defaults a weights folder may carry.

Resolution order (first hit wins):

1. ``config.model_path``: a local folder, or a Hugging Face id;
2. ``<models dir>/<model id>``, where the models dir is ``--models-dir`` / ``OMNIRT_MODELS_DIR``
   (default ``~/.omnirt/models``); ``omnirt make-tiny`` writes there;
3. the spec's hub id, when it is already in the local Hugging Face cache, or when the hub can be reached.

A ``model_path`` that comes from a client (the API, and a fleet worker running a stored job) is *confined*:
:func:`resolve_model_path` accepts only a hub id of the form ``org/name`` or a folder (or file) whose real path lies
inside the models dir, and refuses anything else with ``invalid_request``. The API and the worker both call it, so
they agree. Local use (the CLI, the Python API) may name any folder.

A weights folder may hold ``omnirt.json`` with ``default_config``: generation defaults for that checkpoint. They sit
between the registry's defaults and the preset, so user config and presets still win.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FOLDER_DEFAULTS_FILE = "omnirt.json"
MAX_PATH_CHARS = 1024  # longer path strings from a client are refused outright
HUB_ID_PATTERN = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9_][\w.-]*", re.ASCII)  # org/name, nothing more


@dataclass(frozen=True)
class WeightsSource:
    """A resolved weights location: a local folder, or a hub id to hand to ``from_pretrained``."""

    location: str
    origin: str  # "model_path" | "models_dir" | "hub"

    @property
    def is_local(self) -> bool:
        return bool(self.location) and Path(self.location).is_dir()


def default_models_dir() -> Path:
    """``OMNIRT_MODELS_DIR``, else ``<OMNIRT_HOME>/models``."""
    from omnirt.settings import Settings

    configured = Settings.value("models_dir")
    if configured:
        return Path(configured).expanduser()
    return Path(Settings.value("home")).expanduser() / "models"


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


def is_hub_id(value: str) -> bool:
    """``org/name`` exactly: no ``..``, no leading ``/`` or ``.``, ASCII word characters, dots and dashes only."""
    return HUB_ID_PATTERN.fullmatch(value) is not None and ".." not in value


def checked_path_text(value: Any, field: str) -> str:
    """``value`` when it can be a path a client names: a non-empty string without NUL bytes, at most
    :data:`MAX_PATH_CHARS` long. Otherwise ``invalid_request`` naming ``field`` (never echoing the value)."""
    from omnirt.contracts.errors import RequestValidationError

    if not isinstance(value, str) or not value:
        problem = "must be a non-empty string"
    elif "\x00" in value:
        problem = "must not contain NUL bytes"
    elif len(value) > MAX_PATH_CHARS:
        problem = f"is longer than {MAX_PATH_CHARS} characters"
    else:
        return value
    raise RequestValidationError(f"{field} {problem}.", details={"field": field})


def path_in_models_dir(value: str, models_dir: Path, *, field: str) -> Path:
    """The real path (symlinks followed) of ``value`` when it lies strictly inside ``models_dir``; a relative
    ``value`` is taken relative to the models dir. Anything else is ``invalid_request``. The path need not exist."""
    from omnirt.contracts.errors import RequestValidationError

    text = checked_path_text(value, field)
    root = Path(os.path.realpath(models_dir))
    try:
        real = Path(os.path.realpath(root / text))  # an absolute ``text`` replaces ``root``
    except (OSError, ValueError):
        real = root
    if root not in real.parents:
        raise RequestValidationError(
            f"{field} must name a folder or file inside the models dir.", details={"field": field}
        )
    return real


def resolve_model_path(value: str, models_dir: Path | None = None) -> str:
    """A client's ``config.model_path`` as the API stores it and a fleet worker loads it: a hub id ``org/name``
    unchanged, or the real path of a folder or file inside the models dir.

    A relative value names a folder in the models dir when one exists there, else it must be a hub id. A hub id that
    also names a path in this process's working directory is refused: loaders would read that path instead of the hub.
    Anything else (``..``, absolute paths outside the models dir, symlinks leading out, NUL bytes) is
    ``invalid_request``."""
    from omnirt.contracts.errors import RequestValidationError

    field = "config.model_path"
    text = checked_path_text(value, field)
    root = models_dir or default_models_dir()
    if is_hub_id(text) and not (Path(os.path.realpath(root)) / text).exists():
        if Path(text).exists():
            raise RequestValidationError(
                f"{field} '{text}' is ambiguous here: it names a hub id and a local path; put the weights in the "
                "models dir.",
                details={"field": field},
            )
        return text
    try:
        return str(path_in_models_dir(text, root, field=field))
    except RequestValidationError:
        raise RequestValidationError(
            f"{field} must be a hub id (org/name) or name a folder inside the models dir.", details={"field": field}
        ) from None


def model_paths_confined() -> bool:
    """Whether this process treats ``model_path`` as a client's (:func:`resolve_model_path`): set by
    ``OMNIRT_CONFINE_MODEL_PATHS``, else in every fleet process (a Redis URL is configured)."""
    from omnirt.settings import Settings

    confine = Settings.value("confine_model_paths")
    return confine if confine is not None else bool(Settings.value("redis_url"))


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
    confined: bool | None = None,
) -> WeightsSource:
    """Find the weights for ``model_id``; one clear error naming every place looked at when there are none.

    A models-dir folder counts when it holds ``model_index.json``, ``config.json``, ``omnirt.json`` or one of the
    family's ``markers`` (e.g. ``wav2lip.pth``); ``file_ok`` lets ``model_path`` name a single weights file.
    ``confined`` (default: :func:`model_paths_confined`) checks ``model_path`` with :func:`resolve_model_path`
    first, so a stored job cannot make a worker load from outside the models dir."""
    from omnirt.contracts.errors import WeightsNotFoundError

    looked: list[str] = []
    folder_root = models_dir or default_models_dir()
    if model_path:
        if confined if confined is not None else model_paths_confined():
            model_path = resolve_model_path(model_path, folder_root)
            if is_hub_id(model_path):  # never a folder of that name in the working directory
                return WeightsSource(model_path, "model_path")
        expanded = Path(model_path).expanduser()
        if expanded.is_dir() or (expanded.is_file() and file_ok):
            return WeightsSource(str(expanded.resolve()), "model_path")
        if _looks_like_hub_id(model_path):
            return WeightsSource(model_path, "model_path")
        looked.append(f"config.model_path={model_path} (no such folder)")
    else:
        looked.append("config.model_path (not set)")
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
