"""The Python API: generate from a request, a dict or a file; validate; pipeline(model)(**kw); request builders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import omnirt
from omnirt import requests
from omnirt.contracts.errors import RequestValidationError


def test_generate_accepts_a_dict_and_a_file(tiny_model, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OMNIRT_ARTIFACT_DIR", str(tmp_path / "out"))
    payload = {
        "task": "text2image",
        "model": "sd15",
        "backend": "cpu",
        "inputs": {"prompt": "a cat"},
        "config": {"model_path": str(tiny_model("sd15")), "seed": 1},
    }
    from_dict = omnirt.generate(payload)
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(payload))
    from_file = omnirt.generate(str(request_file))
    assert from_dict.outputs[0].sha256 == from_file.outputs[0].sha256
    assert Path(from_dict.outputs[0].path).is_relative_to(tmp_path / "out")


def test_generate_rejects_a_bad_request_listing_every_issue() -> None:
    with pytest.raises(RequestValidationError) as info:
        omnirt.generate({"task": "text2image", "model": "sd15", "backend": "cpu", "config": {"width": 7}})
    messages = [issue["message"] for issue in info.value.details["issues"] if issue["level"] == "error"]
    assert any("prompt" in message for message in messages) and any("width" in message for message in messages)


def test_pipeline_routes_keywords_to_inputs_and_config(tiny_model, tmp_path: Path) -> None:
    flux = omnirt.pipeline("flux-schnell", backend="cpu")
    request = flux.build_request(
        prompt="a cat", num_inference_steps=2, model_path=str(tiny_model("flux-schnell")), output_dir=str(tmp_path)
    )
    assert request.inputs == {"prompt": "a cat"} and request.config["num_inference_steps"] == 2
    assert flux.validate(prompt="a cat").ok
    result = flux(prompt="a cat", model_path=str(tiny_model("flux-schnell")), output_dir=str(tmp_path), seed=2)
    assert Path(result.outputs[0].path).parent == tmp_path
    with pytest.raises(ValueError, match="Unknown pipeline call arguments for flux-schnell: colour"):
        flux(prompt="a cat", colour="red")


def test_builders_make_valid_requests(sample_image: Path, sample_mask: Path) -> None:
    built = [
        requests.text2image("sd15", "a cat", seed=1),
        requests.image2image("sd15", str(sample_image), "a cat", strength=0.5),
        requests.inpaint("sd15", str(sample_image), str(sample_mask), "a cat"),
        requests.edit("flux-kontext", str(sample_image), "make it blue"),
        requests.text2video("wan2.1-t2v-14b", "a cat", num_frames=9, fps=8),
        requests.image2video("svd", str(sample_image), num_frames=4),
    ]
    for request in built:
        result = omnirt.validate(request, backend="cpu")
        assert result.ok, (request.task, result.errors)
    assert requests.text2audio("any-tts", "hello").inputs == {"prompt": "hello"}
    assert requests.audio2text("any-asr", "a.wav").task == "audio2text"
    assert requests.audio2video("any-avatar", "face.png", "a.wav").inputs == {"image": "face.png", "audio": "a.wav"}
