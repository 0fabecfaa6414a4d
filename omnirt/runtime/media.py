"""Reading request media: images from a local path, a ``data:`` URL, raw bytes or a PIL image."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from omnirt.contracts.errors import InvalidInputError

MIN_SIDE = 8  # px: below this no model's encoder has anything to read (latents are 1/8 of the image)


def load_image(value: Any, *, field: str = "image") -> Any:
    """A PIL RGB image from ``value``; :class:`InvalidInputError` when it is unreadable or degenerate."""
    from PIL import Image, UnidentifiedImageError

    try:
        if isinstance(value, Image.Image):
            image = value.convert("RGB")
        elif isinstance(value, (bytes, bytearray)):
            image = Image.open(io.BytesIO(value)).convert("RGB")
        elif isinstance(value, str) and value.startswith("data:"):
            _, _, payload = value.partition(",")
            image = Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB")
        elif isinstance(value, (str, Path)):
            with Image.open(Path(value).expanduser()) as opened:
                image = opened.convert("RGB")
        else:
            raise InvalidInputError(
                f"Input '{field}' must be an image path, data URL or image, got {type(value).__name__}."
            )
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"Input '{field}' is not a readable image ({type(exc).__name__}).") from exc
    if min(image.size) < MIN_SIDE:
        raise InvalidInputError(
            f"Input '{field}' is {image.width}x{image.height} px; images need at least {MIN_SIDE} px on each side."
        )
    return image


def load_mask(value: Any, *, field: str = "mask") -> Any:
    """A single-channel (L) mask image: white is repainted, black is kept."""
    return load_image(value, field=field).convert("L")
