"""Reading a Wav2Lip checkpoint: find the file, read it safely, recognise the layout, load it strictly.

This module owns :func:`load_network`. It takes a checkpoint file or a folder holding one:

* ``.pth`` / ``.pt`` / ``.bin`` (and any other name) are read with ``torch.load(weights_only=True)``: tensors and
  plain containers only. A pickle that needs code to load is refused, never run.
* ``.safetensors`` files are read with safetensors.

The published files wrap the weights as ``{"state_dict": ..., "optimizer": ..., "global_step": ...,
"global_epoch": ...}`` and may carry DataParallel's ``module.`` prefix; both are undone. The layout is told apart by
its keys (the 256 px variant has an eighth encoder stage), and the file must then match that layout exactly: every
missing, unexpected or mis-shaped tensor is reported in one :class:`~omnirt.contracts.errors.WeightsInvalidError`.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from omnirt.contracts.errors import WeightsInvalidError, WeightsNotFoundError
from omnirt.models.wav2lip.network import Wav2Lip, build_wav2lip

#: Checked in this order in a folder; after them, a single file with one of ``CHECKPOINT_SUFFIXES``.
PREFERRED_NAMES = ("wav2lip_gan.pth", "wav2lip.pth")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
WRAPPER_KEY = "state_dict"
PREFIX = "module."
#: A key only the 256 px layout has.
MARKER_256 = "face_encoder_blocks.7."
LISTED = 4  # mismatches named per kind in an error message


def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint file ``path`` names: the file itself, or the one a folder holds."""
    location = Path(path).expanduser()
    if location.is_file():
        return location
    if not location.exists():
        raise WeightsNotFoundError(
            f"No Wav2Lip weights at {location}: no such file or folder.", details={"location": str(location)}
        )
    for name in PREFERRED_NAMES:
        if (location / name).is_file():
            return location / name
    candidates = sorted(
        entry for entry in location.iterdir() if entry.is_file() and entry.suffix.lower() in CHECKPOINT_SUFFIXES
    )
    if not candidates:
        raise WeightsNotFoundError(
            f"No Wav2Lip checkpoint in {location}: expected {' or '.join(PREFERRED_NAMES)}, or one "
            f"{'/'.join(CHECKPOINT_SUFFIXES)} file.",
            details={"location": str(location)},
        )
    if len(candidates) > 1:
        raise WeightsInvalidError(
            f"{location} holds several checkpoints ({', '.join(entry.name for entry in candidates)}); name one "
            f"in config.model_path, or call it {PREFERRED_NAMES[0]}.",
            details={"location": str(location), "files": [entry.name for entry in candidates]},
        )
    return candidates[0]


def read_checkpoint(file: Path) -> Mapping[str, Any]:
    """The raw contents of a checkpoint file, read without running any code it may carry."""
    details = {"location": str(file)}
    if file.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:  # pragma: no cover - safetensors ships with the runtime extra
            from omnirt.contracts.errors import DependencyUnavailableError

            raise DependencyUnavailableError("safetensors is not installed (the runtime extra).") from exc
        try:
            return load_file(str(file), device="cpu")
        except Exception as exc:  # safetensors raises its own error types for a bad header
            raise WeightsInvalidError(f"{file} is not a readable safetensors file: {exc}", details=details) from exc
    try:
        contents = torch.load(str(file), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _unpickler_reason(exc)
        if "global" in reason.lower():
            raise WeightsInvalidError(
                f"{file} was refused because it contains code: loading it would import and run pickled objects, "
                "not just read tensors. Re-save the weights alone (torch.save(model.state_dict())) or as "
                f"safetensors. ({reason})",
                details={**details, "reason": reason},
            ) from exc
        raise WeightsInvalidError(
            f"{file} is not a readable torch checkpoint: the safe loader (weights_only) refused it ({reason}).",
            details={**details, "reason": reason},
        ) from exc
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise WeightsInvalidError(
            f"{file} is not a readable torch checkpoint: {_first_line(exc)}", details=details
        ) from exc
    if not isinstance(contents, Mapping):
        raise WeightsInvalidError(f"{file} holds a {type(contents).__name__}, not a state dict.", details=details)
    return contents


def state_dict_of(contents: Mapping[str, Any], file: Path) -> dict[str, torch.Tensor]:
    """The generator's tensors: unwrapped from ``{"state_dict": ...}``, without ``module.`` prefixes."""
    inner = contents.get(WRAPPER_KEY, contents)
    if not isinstance(inner, Mapping):
        raise WeightsInvalidError(
            f"{file}: '{WRAPPER_KEY}' is a {type(inner).__name__}, not a mapping of tensors.",
            details={"location": str(file)},
        )
    tensors: dict[str, torch.Tensor] = {}
    others: list[str] = []
    for key, value in inner.items():
        name = str(key)
        while name.startswith(PREFIX):
            name = name[len(PREFIX) :]
        if isinstance(value, torch.Tensor):
            tensors[name] = value
        else:
            others.append(name)
    if others:
        raise WeightsInvalidError(
            f"{file} is not a Wav2Lip state dict: entries that are not tensors: {_listed(others)}.",
            details={"location": str(file), "not_tensors": others[:20]},
        )
    return tensors


def face_size_of(state_dict: Mapping[str, Any]) -> int:
    """96 or 256: the 256 px layout has an eighth face-encoder stage."""
    return 256 if any(key.startswith(MARKER_256) for key in state_dict) else 96


def mismatches(state_dict: Mapping[str, torch.Tensor], model: torch.nn.Module) -> dict[str, list[str]]:
    """Names of missing and unexpected tensors, and ``name (file [..] vs model [..])`` for wrong shapes."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    shapes = [
        f"{key} (file {list(state_dict[key].shape)} vs model {list(tensor.shape)})"
        for key, tensor in expected.items()
        if key in state_dict and tuple(state_dict[key].shape) != tuple(tensor.shape)
    ]
    return {"missing": missing, "unexpected": unexpected, "shape": shapes}


def load_network(path: str | Path) -> Wav2Lip:
    """The Wav2Lip generator in ``path`` (a checkpoint file or a folder holding one), on the CPU in fp32, eval mode.

    The returned module has ``face_size`` (96 or 256) and ``variant`` (``wav2lip-96`` / ``wav2lip-256``).
    """
    file = find_checkpoint(path)
    state_dict = state_dict_of(read_checkpoint(file), file)
    face_size = face_size_of(state_dict)
    model = build_wav2lip(face_size)
    found = mismatches(state_dict, model)
    if any(found.values()):
        parts = [f"{kind}: {_listed(names)}" for kind, names in found.items() if names]
        expected = len(model.state_dict())
        known = expected - len(found["missing"])
        what = "does not match" if known else "is not a Wav2Lip generator checkpoint; it does not match"
        raise WeightsInvalidError(
            f"{file} {what} the Wav2Lip {face_size} px layout ({known} of {expected} tensors found): "
            + "; ".join(parts),
            details={
                "location": str(file),
                "face_size": face_size,
                **{kind: names[:20] for kind, names in found.items()},
            },
        )
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown if len(names) <= LISTED else f"{shown} (+{len(names) - LISTED} more)"


def _unpickler_reason(exc: BaseException) -> str:
    """The part of torch's weights_only refusal that says what it met (``Unsupported global: GLOBAL x.Y ...``)."""
    text = " ".join(str(exc).split())
    marker = "WeightsUnpickler error:"
    if marker in text:
        reason = text.split(marker, 1)[1].strip()
        return reason.split(" Please use", 1)[0].split(" Check the documentation", 1)[0].strip()
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
