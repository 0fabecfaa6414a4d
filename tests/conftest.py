"""Test setup: one torch thread, no hub access, and tiny random-weight models built once per session."""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Callable
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``tiny_model("sd15")`` -> folder of a tiny random-weight sd15, built on first use and shared."""
    from omnirt.models.tiny_common import make_tiny

    root = tmp_path_factory.mktemp("tiny-models")
    built: dict[str, Path] = {}

    def build(model_id: str) -> Path:
        if model_id not in built:
            built[model_id] = make_tiny(model_id, root / model_id)
        return built[model_id]

    return build


@pytest.fixture(scope="session")
def sample_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64x64 RGB PNG with a gradient (a real picture, not a flat colour)."""
    import numpy as np
    from PIL import Image

    path = tmp_path_factory.mktemp("media") / "input.png"
    ramp = np.linspace(0, 255, 64, dtype=np.uint8)
    pixels = np.stack([np.tile(ramp, (64, 1)), np.tile(ramp[:, None], (1, 64)), np.full((64, 64), 90, np.uint8)], -1)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="session")
def sample_mask(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64x64 mask: white (repaint) in the centre square."""
    import numpy as np
    from PIL import Image

    path = tmp_path_factory.mktemp("media") / "mask.png"
    pixels = np.zeros((64, 64), np.uint8)
    pixels[16:48, 16:48] = 255
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture()
def engine(tmp_path: Path):
    from omnirt.runtime.engine import Engine

    return Engine(output_dir=tmp_path / "outputs", models_dir=tmp_path / "models")
