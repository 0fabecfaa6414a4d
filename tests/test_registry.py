"""Registry: ids, tasks, tiers, aliases, presets, manifests, the generated docs page, and no torch on import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import omnirt
from omnirt.contracts.errors import ModelNotRegisteredError
from omnirt.registry.manifest import build_manifest, render_markdown, validate_manifest
from omnirt.registry.presets import preset_config
from omnirt.registry.registry import get_model, list_available_models, model_ids

REQUIRED_IDS = {
    "sd15",
    "sd21",
    "sdxl-base-1.0",
    "sdxl-refiner-1.0",
    "sdxl-turbo",
    "sd3-medium",
    "sd3.5-large",
    "flux-dev",
    "flux-schnell",
    "flux-fill",
    "flux2.dev",
    "flux2-dev",
    "qwen-image",
    "svd",
    "svd-xt",
    "wan2.1-t2v-14b",
    "wan2.1-i2v-14b",
    "wan2.2-t2v-14b",
    "wan2.2-i2v-14b",
    "cogvideox-2b",
    "cogvideox-5b",
    "ltx-video",
    "hunyuan-video",
}


def test_registry_holds_the_issue_models_and_at_least_25_ids() -> None:
    assert REQUIRED_IDS <= set(model_ids())
    assert len(model_ids(include_aliases=False)) >= 25


def test_one_id_serves_several_tasks_and_primary_task_is_text2image() -> None:
    assert {spec.task for spec in list_available_models() if spec.id == "sdxl-base-1.0"} == {
        "text2image",
        "image2image",
        "inpaint",
    }
    assert get_model("sd15").task == "text2image"
    assert get_model("sd15", "inpaint").capabilities.required_inputs == ("image", "mask", "prompt")


def test_unknown_model_and_wrong_task_errors() -> None:
    with pytest.raises(ModelNotRegisteredError, match="Did you mean: sd15"):
        get_model("sd-15")
    with pytest.raises(ModelNotRegisteredError, match=r"supports tasks \[text2image\], got 'inpaint'"):
        get_model("flux-dev", "inpaint")


def test_alias_copies_its_target() -> None:
    alias, target = get_model("flux2-dev"), get_model("flux2.dev")
    assert alias.capabilities.alias_of == "flux2.dev" and alias.canonical_id == "flux2.dev"
    assert alias.pipeline_cls is target.pipeline_cls and alias.hub_id == target.hub_id
    assert "flux2-dev" not in model_ids(include_aliases=False)


def test_tiers_filter_and_reject_unknown() -> None:
    adjacent = list_available_models(tier="adjacent")
    assert adjacent and all(spec.tier == "adjacent" for spec in adjacent)
    assert {spec.tier for spec in list_available_models()} <= {"core", "adjacent", "experimental"}
    with pytest.raises(ValueError, match="Unknown tier"):
        list_available_models(tier="gold")


def test_presets_merge_base_task_and_model() -> None:
    sd15 = get_model("sd15").capabilities.supported_config
    assert preset_config("fast", task="text2image", model_id="sd15", supported_config=sd15) == {
        "num_inference_steps": 20,
        "guidance_scale": 5.5,
    }
    assert preset_config("quality", task="inpaint", model_id="sd15", supported_config=sd15)["guidance_scale"] == 8.0
    flux2 = get_model("flux2.dev").capabilities.supported_config
    assert preset_config("low-vram", task="text2image", model_id="flux2.dev", supported_config=flux2) == {
        "num_inference_steps": 18,
        "dtype": "fp16",
        "guidance_scale": 2.0,
        "max_sequence_length": 256,
    }
    wan = get_model("wan2.1-t2v-14b").capabilities.supported_config
    assert preset_config("balanced", task="text2video", model_id="wan2.1-t2v-14b", supported_config=wan) == {
        "guidance_scale": 5.0,
    }


@pytest.mark.parametrize("spec", list_available_models(), ids=lambda spec: f"{spec.id}:{spec.task}")
def test_every_manifest_is_well_formed(spec) -> None:
    manifest = build_manifest(spec)
    assert validate_manifest(manifest) == []
    assert manifest["outputs"] == [spec.capabilities.artifact_kind]
    assert set(spec.capabilities.default_config) <= set(manifest["config"])


def test_manifest_problems_are_reported() -> None:
    assert "missing role" in validate_manifest({"schema_version": "1.0.0", "model": "x", "task": "t", "tier": "core"})


def test_docs_models_page_is_current() -> None:
    page = Path(__file__).resolve().parents[1] / "docs" / "models.md"
    assert page.read_text() == render_markdown(), "docs/models.md is stale: run `make docs`"


def test_api_side_imports_no_torch(tmp_path) -> None:
    code = (
        "import sys, omnirt\n"
        "omnirt.validate({'task': 'text2image', 'model': 'sd15', 'inputs': {'prompt': 'x'}, 'backend': 'cpu'})\n"
        "from omnirt.registry.manifest import render_markdown; render_markdown()\n"
        "from omnirt.api import create_app\n"
        "client = create_app().test_client()\n"
        "assert client.post('/v1/generate', json={'task': 'text2image', 'model': 'sd-15'}).status_code == 400\n"
        "assert client.get('/openapi.json').status_code == 200 and client.get('/metrics').status_code == 200\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "OMNIRT_REDIS_URL"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env)


def test_python_api_exports() -> None:
    assert omnirt.describe_model("svd").task == "image2video"
    assert omnirt.available_presets() == ("fast", "balanced", "quality", "low-vram")
    assert len(omnirt.list_available_models(tier="adjacent")) >= 10
