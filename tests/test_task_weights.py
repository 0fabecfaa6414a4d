"""A task with weights of its own (sd21's depth2image) is found, built and kept warm apart from the id's other tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnirt.contracts.types import GenerateRequest
from omnirt.registry.registry import get_model


def test_depth2image_has_its_own_weights_folder() -> None:
    depth = get_model("sd21", "depth2image")
    assert depth.hub_id == "stabilityai/stable-diffusion-2-depth" and depth.weights_name == "sd21-depth"
    assert get_model("sd21", "text2image").weights_name == get_model("sd21", "image2image").weights_name == "sd21"
    assert depth.capabilities.required_inputs == ("image", "prompt")
    assert "strength" in depth.capabilities.supported_config


def test_models_dir_serves_each_task_from_its_folder(tiny_model, tmp_path: Path, sample_image: Path) -> None:
    from omnirt.workers.engine import Engine

    text_folder = tiny_model("sd21")
    depth_folder = tiny_model("sd21", "depth2image")
    assert text_folder.parent == depth_folder.parent and depth_folder.name == "sd21-depth"
    assert (depth_folder / "depth_estimator").is_dir() and (depth_folder / "feature_extractor").is_dir()
    engine = Engine(output_dir=tmp_path / "outputs", models_dir=text_folder.parent)

    def run(task: str, inputs: dict) -> None:
        result = engine.run(GenerateRequest(task=task, model="sd21", backend="cpu", inputs=inputs, config={"seed": 1}))
        assert Path(result.outputs[0].path).is_file()

    run("depth2image", {"image": str(sample_image), "prompt": "a cat"})
    run("text2image", {"prompt": "a cat"})
    loaded = {entry["model"]: entry["weights"] for entry in engine.loaded_models()}
    assert loaded == {"sd21-depth": str(depth_folder.resolve()), "sd21": str(text_folder.resolve())}


def test_make_tiny_refuses_a_task_the_model_lacks(tmp_path: Path) -> None:
    from omnirt.contracts.errors import ModelNotRegisteredError
    from omnirt.models.tiny_common import make_tiny

    with pytest.raises(ModelNotRegisteredError, match="depth2image"):
        make_tiny("sd15", tmp_path / "x", "depth2image")
