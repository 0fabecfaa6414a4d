"""LoRA adapters: resolve a reference to a safetensors file, load it into a pipeline with a scale, unload it.

A reference is a local ``.safetensors`` file, a local folder holding one, ``hf://org/repo/path.safetensors``
(optionally ``?revision=REV``) or ``https://huggingface.co/org/repo/resolve/REV/path.safetensors``. Only safetensors
are accepted: pickled weights can run code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from omnirt.contracts.errors import InvalidInputError, WeightFormatError, WeightsNotFoundError
from omnirt.contracts.types import AdapterRef

LORA_FILE_NAMES = ("pytorch_lora_weights.safetensors", "adapter_model.safetensors")


def _download(repo_id: str, filename: str, revision: str | None) -> str:
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo_id=repo_id, filename=filename, revision=revision)
    except Exception as exc:
        raise WeightsNotFoundError(
            f"Could not fetch LoRA '{filename}' from Hugging Face repo '{repo_id}': {type(exc).__name__}: {exc}",
            details={"repo_id": repo_id, "filename": filename},
        ) from exc


def resolve_adapter_file(reference: str) -> str:
    """A local path to the adapter's safetensors file."""
    if reference.startswith("hf://"):
        parsed = urlparse(reference)
        parts = f"{parsed.netloc}{parsed.path}".strip("/").split("/")
        if len(parts) < 3:
            raise WeightFormatError(f"hf:// LoRA reference must be hf://org/repo/file.safetensors, got {reference}")
        revision = parse_qs(parsed.query).get("revision", [None])[0]
        filename = "/".join(parts[2:])
        _require_safetensors(filename)
        return _download("/".join(parts[:2]), filename, revision)
    if reference.startswith("https://huggingface.co/"):
        parts = urlparse(reference).path.strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            raise WeightFormatError(f"Expected https://huggingface.co/org/repo/resolve/REV/FILE, got {reference}")
        filename = "/".join(parts[4:])
        _require_safetensors(filename)
        return _download("/".join(parts[:2]), filename, parts[3])
    path = Path(reference).expanduser()
    if path.is_dir():
        for name in LORA_FILE_NAMES:
            if (path / name).is_file():
                return str(path / name)
        candidates = sorted(path.glob("*.safetensors"))
        if len(candidates) == 1:
            return str(candidates[0])
        raise WeightFormatError(f"LoRA folder {path} must hold exactly one .safetensors file, found {len(candidates)}.")
    if not path.is_file():
        raise WeightsNotFoundError(f"LoRA file not found: {path}", details={"path": str(path)})
    _require_safetensors(path.name)
    return str(path)


def _require_safetensors(name: str) -> None:
    if not name.endswith(".safetensors"):
        raise WeightFormatError(f"Only .safetensors adapters are accepted, got '{name}'.")


def adapter_fingerprint(adapters: list[AdapterRef] | None) -> tuple[tuple[str, str, float], ...]:
    """The part of a warm-cache key that adapters contribute."""
    return tuple((adapter.kind, adapter.path, float(adapter.scale)) for adapter in adapters or [])


def load_adapters(pipe: Any, adapters: list[AdapterRef]) -> list[str]:
    """Load every adapter under its own name and activate them with their scales. Returns the adapter names."""
    names: list[str] = []
    for index, adapter in enumerate(adapters):
        name = f"omnirt_lora_{index}"
        try:
            pipe.load_lora_weights(resolve_adapter_file(adapter.path), adapter_name=name)
        except (ValueError, KeyError, RuntimeError, OSError) as exc:
            raise InvalidInputError(
                f"Adapter {index} ({Path(adapter.path).name}) is not a LoRA this model can load ({type(exc).__name__})."
            ) from exc
        names.append(name)
    if names:
        pipe.set_adapters(names, adapter_weights=[float(adapter.scale) for adapter in adapters])
    return names


def unload_adapters(pipe: Any) -> None:
    """Remove every LoRA from the pipeline, restoring the base weights."""
    pipe.unload_lora_weights()
