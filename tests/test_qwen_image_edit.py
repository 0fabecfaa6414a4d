"""Qwen-Image-Edit's repositories carry a Qwen2VLProcessor, which transformers builds only with torchvision."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers.utils import is_torchvision_available

from omnirt.contracts.errors import DependencyUnavailableError
from omnirt.contracts.types import GenerateRequest


@pytest.mark.skipif(is_torchvision_available(), reason="checks the error raised where torchvision is missing")
@pytest.mark.parametrize("model_id", ["qwen-image-edit", "qwen-image-edit-plus"])
def test_edit_models_name_the_missing_torchvision(model_id, engine, tmp_path: Path, sample_image: Path) -> None:
    folder = tmp_path / model_id
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    request = GenerateRequest(
        task="edit",
        model=model_id,
        backend="cpu",
        inputs={"image": str(sample_image), "prompt": "make it blue"},
        config={"model_path": str(folder)},
    )
    with pytest.raises(DependencyUnavailableError, match="needs torchvision") as caught:
        engine.run(request)
    assert caught.value.code == "dependency_unavailable" and caught.value.details["missing"] == "torchvision"
