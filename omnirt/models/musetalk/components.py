"""Loading MuseTalk's three networks from its published folder layout: ``load_components``.

This module owns the on-disk contract of a MuseTalk weights folder (upstream's ``models/`` directory):

* ``musetalkV15/musetalk.json`` + ``musetalkV15/unet.pth``: a diffusers ``UNet2DConditionModel`` config and a plain
  ``state_dict`` of that UNet (8 input channels, 4 output channels, cross-attention on the audio features).
  MuseTalk 1.0 shipped the same UNet as ``musetalk/pytorch_model.bin``; that folder and file name are accepted when
  no 1.5 files are present.
* ``sd-vae/``: a diffusers ``AutoencoderKL`` (stabilityai/sd-vae-ft-mse), ``.bin`` or ``.safetensors``.
* ``whisper/``: a transformers ``WhisperModel`` (openai/whisper-tiny) and its ``preprocessor_config.json``; only
  the encoder is kept.

The UNet is built by diffusers itself from the JSON config and its state dict must match key for key
(``strict=True``): a file that names a missing or an extra parameter is refused with an error that names the file
and the keys. The state dict is read with ``torch.load(weights_only=True)``: tensors and plain containers only.
Everything loads on the CPU in fp32; :class:`~omnirt.models.musetalk.network.MuseTalkNetwork` places it.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from omnirt.runtime.weights import load_errors

MODEL_ID = "musetalk-1.5"
#: (folder, config file, weight files in order of preference), MuseTalk 1.5 first, then 1.0.
UNET_LAYOUTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("musetalkV15", "musetalk.json", ("unet.pth", "pytorch_model.bin")),
    ("musetalk", "musetalk.json", ("pytorch_model.bin", "unet.pth")),
)
VAE_FOLDER = "sd-vae"
WHISPER_FOLDER = "whisper"
#: How many missing or unexpected keys an error message lists before "... and N more".
KEYS_SHOWN = 8


def _invalid_error() -> type[Exception]:
    """The error class for a file that is there but holds the wrong thing (``weights_invalid`` when defined)."""
    from omnirt.contracts import errors

    return getattr(errors, "WeightsInvalidError", errors.WeightFormatError)


def _not_found(message: str, location: Path) -> Exception:
    from omnirt.contracts.errors import WeightsNotFoundError

    return WeightsNotFoundError(message, details={"model": MODEL_ID, "location": str(location)})


def _invalid(message: str, path: Path, **details: Any) -> Exception:
    return _invalid_error()(message, details={"model": MODEL_ID, "file": str(path), **details})


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:KEYS_SHOWN])
    return shown + (f" ... and {len(keys) - KEYS_SHOWN} more" if len(keys) > KEYS_SHOWN else "")


def unet_files(folder: Path) -> tuple[Path, Path]:
    """``(config, weights)`` of the UNet in ``folder``: 1.5's layout first, then 1.0's; a clear error otherwise."""
    looked: list[str] = []
    for sub, config_name, weight_names in UNET_LAYOUTS:
        config = folder / sub / config_name
        if not config.is_file():
            looked.append(str(config))
            continue
        for name in weight_names:
            if (folder / sub / name).is_file():
                return config, folder / sub / name
        wanted = " or ".join(str(folder / sub / name) for name in weight_names)
        raise _not_found(f"MuseTalk UNet weights are missing: {config} is there but not {wanted}.", folder / sub)
    raise _not_found(
        f"{folder} is not a MuseTalk weights folder: no UNet config (looked for {' and '.join(looked)}). "
        "Expected upstream's models/ layout: musetalkV15/{musetalk.json, unet.pth}, sd-vae/, whisper/.",
        folder,
    )


def read_unet_config(path: Path) -> dict[str, Any]:
    """The UNet's diffusers config from ``musetalk.json``."""
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid(f"{path} is not a readable JSON UNet config: {exc}", path) from exc
    if not isinstance(config, dict):
        raise _invalid(f"{path} does not hold a JSON object (a diffusers UNet2DConditionModel config).", path)
    return config


def read_state_dict(path: Path) -> dict[str, Any]:
    """A plain ``{name: tensor}`` state dict from ``path``, read with ``weights_only=True``."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise _not_found(f"Could not read MuseTalk UNet weights {path}: {exc}", path) from exc
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise _invalid(f"{path} is not a readable torch state dict (tensors only): {exc}", path) from exc
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise _invalid(f"{path} does not hold a plain state dict (a mapping of parameter names to tensors).", path)
    return state


def _empty_weights() -> contextlib.AbstractContextManager[Any]:
    """accelerate's ``init_empty_weights`` (parameters on meta, buffers real), or a plain build without it."""
    try:
        from accelerate import init_empty_weights
    except ImportError:
        return contextlib.nullcontext()
    return init_empty_weights()


def load_unet(folder: Path) -> Any:
    """Build ``UNet2DConditionModel`` from the folder's JSON config and load its state dict with strict matching."""
    from diffusers import UNet2DConditionModel

    config_path, weights_path = unet_files(folder)
    config = read_unet_config(config_path)
    try:
        # Parameters on the meta device (no random initialisation: 12 s for the real 0.85 B UNet on a CPU); the
        # state dict's tensors are then assigned in place of them.
        with _empty_weights():
            unet = UNet2DConditionModel.from_config(config)
    except (TypeError, ValueError, KeyError) as exc:
        raise _invalid(f"{config_path} is not a valid UNet2DConditionModel config: {exc}", config_path) from exc
    state = read_state_dict(weights_path)
    expected = unet.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_listed(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_listed(unexpected)}")
        raise _invalid(
            f"{weights_path} does not match the UNet of {config_path}: " + "; ".join(parts) + ".",
            weights_path,
            missing_keys=missing[:KEYS_SHOWN],
            unexpected_keys=unexpected[:KEYS_SHOWN],
        )
    mismatched = [
        f"{key} {tuple(state[key].shape)} vs {tuple(value.shape)}"
        for key, value in expected.items()
        if tuple(state[key].shape) != tuple(value.shape)
    ]
    if mismatched:
        raise _invalid(
            f"{weights_path} does not match the UNet of {config_path}: {len(mismatched)} shape mismatch(es) "
            f"(file vs config): {_listed(mismatched)}.",
            weights_path,
        )
    unet.load_state_dict(state, strict=True, assign=True)
    return unet.eval()


def load_vae(folder: Path) -> Any:
    from diffusers import AutoencoderKL

    location = folder / VAE_FOLDER
    if not (location / "config.json").is_file():
        raise _not_found(
            f"MuseTalk's VAE is missing: no {location / 'config.json'} (stabilityai/sd-vae-ft-mse).", location
        )
    with load_errors(MODEL_ID, str(location), "the sd-vae AutoencoderKL"):
        vae = AutoencoderKL.from_pretrained(location)
    return vae.eval()


def load_whisper(folder: Path) -> tuple[Any, Any]:
    """The Whisper encoder (the decoder is dropped) and its feature extractor."""
    from transformers import WhisperFeatureExtractor, WhisperModel

    location = folder / WHISPER_FOLDER
    for name in ("config.json", "preprocessor_config.json"):
        if not (location / name).is_file():
            raise _not_found(f"MuseTalk's Whisper is missing: no {location / name} (openai/whisper-tiny).", location)
    with load_errors(MODEL_ID, str(location), "the Whisper encoder"):
        encoder = WhisperModel.from_pretrained(location).encoder
        feature_extractor = WhisperFeatureExtractor.from_pretrained(location)
    return encoder.eval(), feature_extractor


def load_components(folder: str | Path) -> tuple[Any, Any, Any, Any]:
    """``(unet, vae, whisper_encoder, feature_extractor)`` from a MuseTalk weights folder, on the CPU in fp32."""
    from omnirt.models.diffusers_pipeline import import_diffusers

    import_diffusers()  # quiets the libraries' progress bars; a clear error when they are not installed
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise _not_found(
            f"MuseTalk loads from a local folder in upstream's models/ layout; {folder} is not a folder.", root
        )
    unet = load_unet(root)
    vae = load_vae(root)
    encoder, feature_extractor = load_whisper(root)
    return unet, vae, encoder, feature_extractor
