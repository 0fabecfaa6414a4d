"""Every registered model runs end to end on the CPU from a tiny folder in its real layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnirt.contracts.errors import DependencyUnavailableError
from omnirt.contracts.types import GenerateRequest
from omnirt.registry.registry import list_available_models

# The diffusion families (speech and avatar families have their own tests: test_speech*.py, test_avatar.py,
# test_lipsync.py).
SPECS = [
    spec
    for spec in list_available_models(include_aliases=False)
    if spec.task not in ("text2audio", "audio2text", "audio2video", "avatar_prepare")
]


def request_for(spec, folder: Path, image: Path, mask: Path, **config) -> GenerateRequest:
    caps = spec.capabilities
    inputs = {}
    if "prompt" in caps.required_inputs:
        inputs["prompt"] = "a cat"
    if "image" in caps.required_inputs:
        inputs["image"] = str(image)
    if "mask" in caps.required_inputs:
        inputs["mask"] = str(mask)
    return GenerateRequest(
        task=spec.task,
        model=spec.id,
        backend="cpu",
        inputs=inputs,
        config={"model_path": str(folder), "seed": 3, **config},
    )


@pytest.mark.parametrize("spec", SPECS, ids=[f"{spec.id}:{spec.task}" for spec in SPECS])
def test_family_runs_end_to_end(spec, tiny_model, engine, sample_image, sample_mask) -> None:
    import av
    from PIL import Image

    try:
        folder = tiny_model(spec.id, spec.task)
    except DependencyUnavailableError as exc:  # e.g. Qwen-Image-Edit's processor where torchvision is missing
        pytest.skip(f"cannot build a tiny {spec.id} here: {exc}")
    events = []
    result = engine.run(request_for(spec, folder, sample_image, sample_mask), on_event=events.append)

    report = result.metadata
    assert report.schema_version == "1.0.0"
    assert report.model == spec.id and report.task == spec.task and report.backend == "cpu"
    assert set(report.timings) == {
        "load_ms",
        "prepare_conditions_ms",
        "prepare_latents_ms",
        "denoise_loop_ms",
        "decode_ms",
        "export_ms",
    }
    assert all(value >= 0 for value in report.timings.values())
    # The library call is split by hooks: the VAE decode is not counted as denoising.
    assert report.timings["decode_ms"] > 0 and report.timings["denoise_loop_ms"] > 0
    steps = report.config_resolved["num_inference_steps"]
    progress = [event for event in events if event.event == "progress"]
    # img2img and inpaint run the last `strength` share of the schedule; every step reports, numbered from 1.
    assert 1 <= len(progress) <= steps
    assert [event.data["step"] for event in progress] == list(range(1, len(progress) + 1))
    assert progress[-1].data["total"] == len(progress)

    artifact = result.outputs[0]
    assert Path(artifact.path).is_file() and artifact.bytes == Path(artifact.path).stat().st_size
    width, height = report.config_resolved["width"], report.config_resolved["height"]
    if spec.capabilities.artifact_kind == "image":
        assert artifact.mime == "image/png"
        with Image.open(artifact.path) as image:
            assert image.size == (width, height)
    else:
        assert artifact.mime == "video/mp4"
        with av.open(artifact.path) as container:
            frames = [frame for frame in container.decode(video=0)]
        assert len(frames) == artifact.num_frames == report.config_resolved["num_frames"]
        assert (frames[0].width, frames[0].height) == (width + width % 2, height + height % 2)


@pytest.mark.parametrize("model_id", ["sd15", "flux-schnell", "wan2.1-t2v-14b"])
def test_same_seed_same_output_and_weights_stay_warm(model_id, tiny_model, engine, sample_image, sample_mask) -> None:
    spec = next(spec for spec in SPECS if spec.id == model_id)
    folder = tiny_model(model_id)
    first = engine.run(request_for(spec, folder, sample_image, sample_mask))
    second = engine.run(request_for(spec, folder, sample_image, sample_mask, num_inference_steps=1))
    third = engine.run(request_for(spec, folder, sample_image, sample_mask))
    assert first.outputs[0].sha256 == third.outputs[0].sha256
    assert first.outputs[0].sha256 != second.outputs[0].sha256
    # The same prompt again: the warm pipeline and its text embeddings are reused.
    assert first.metadata.cache_hits == [] and second.metadata.cache_hits == ["pipeline", "text_embedding"]
    assert len(engine.cache) == 1
