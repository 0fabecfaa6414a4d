"""Reading request media: images from a local path, a ``data:`` URL, raw bytes or a PIL image."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from omnirt.contracts.errors import RequestValidationError


def load_image(value: Any, *, field: str = "image") -> Any:
    """A PIL RGB image from ``value``."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(value, Image.Image):
        return value.convert("RGB")
    try:
        if isinstance(value, (bytes, bytearray)):
            return Image.open(io.BytesIO(value)).convert("RGB")
        if isinstance(value, str) and value.startswith("data:"):
            _, _, payload = value.partition(",")
            return Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB")
        if isinstance(value, (str, Path)):
            with Image.open(Path(value).expanduser()) as image:
                return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise RequestValidationError(f"Input '{field}' is not a readable image: {exc}") from exc
    raise RequestValidationError(
        f"Input '{field}' must be an image path, data URL or image, got {type(value).__name__}."
    )


def load_mask(value: Any, *, field: str = "mask") -> Any:
    """A single-channel (L) mask image: white is repainted, black is kept."""
    return load_image(value, field=field).convert("L")
