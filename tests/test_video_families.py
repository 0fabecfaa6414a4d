"""Behaviour of the video families beyond the shared end-to-end run (tests/test_families.py): HunyuanVideo 1.5's
guider and image buckets, AnimateDiff SDXL's separately published motion adapter and LTX-2's soundtrack."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from omnirt.contracts.errors import WeightsNotFoundError
from omnirt.contracts.types import GenerateRequest


def _request(model: str, task: str, folder: Path, inputs: dict, **config) -> GenerateRequest:
    return GenerateRequest(
        task=task,
        model=model,
        backend="cpu",
        inputs=inputs,
        config={"model_path": str(folder), "seed": 5, **config},
    )


def test_hunyuan_video15_guidance_scale_replaces_the_guider_for_one_run(tiny_model, engine) -> None:
    folder = tiny_model("hunyuan-video-1.5-t2v")
    inputs = {"prompt": "a cat"}
    checkpoint = engine.run(_request("hunyuan-video-1.5-t2v", "text2video", folder, inputs))
    no_cfg = engine.run(_request("hunyuan-video-1.5-t2v", "text2video", folder, inputs, guidance_scale=1.0))
    again = engine.run(_request("hunyuan-video-1.5-t2v", "text2video", folder, inputs))
    # The tiny checkpoint's guider runs CFG at 6.0; guidance_scale=1.0 turns it off for that run only.
    assert no_cfg.outputs[0].sha256 != checkpoint.outputs[0].sha256
    assert again.outputs[0].sha256 == checkpoint.outputs[0].sha256


def test_hunyuan_video15_i2v_width_and_height_choose_the_aspect_ratio(tiny_model, engine, sample_image) -> None:
    import av

    folder = tiny_model("hunyuan-video-1.5-i2v")
    inputs = {"image": str(sample_image), "prompt": "a cat"}
    result = engine.run(_request("hunyuan-video-1.5-i2v", "image2video", folder, inputs, width=64, height=32))
    with av.open(result.outputs[0].path) as container:
        frame = next(container.decode(video=0))
    # The square input picture is cropped to 2:1 first, so the checkpoint renders a landscape bucket.
    assert frame.width > frame.height


def test_animate_diff_sdxl_without_its_motion_adapter_names_the_missing_folder(tiny_model, engine, tmp_path) -> None:
    folder = tmp_path / "animate-diff-sdxl"
    shutil.copytree(tiny_model("animate-diff-sdxl"), folder)
    shutil.rmtree(folder / "motion_adapter")
    with pytest.raises(WeightsNotFoundError, match="motion_adapter"):
        engine.run(_request("animate-diff-sdxl", "text2video", folder, {"prompt": "a cat"}))


def test_ltx2_i2v_muxes_its_soundtrack(tiny_model, engine, sample_image) -> None:
    import av

    folder = tiny_model("ltx2-i2v")
    inputs = {"image": str(sample_image), "prompt": "a cat"}
    result = engine.run(_request("ltx2-i2v", "image2video", folder, inputs))
    with av.open(result.outputs[0].path) as container:
        (audio,) = container.streams.audio
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert audio.rate == 16000  # the tiny vocoder's output rate
    assert samples > 0


def test_kandinsky5_i2v_refuses_a_video_too_short_for_its_first_frame_renormalisation(
    tiny_model, engine, sample_image
) -> None:
    from omnirt.contracts.errors import RequestValidationError

    folder = tiny_model("kandinsky5-i2v")
    inputs = {"image": str(sample_image), "prompt": "a cat"}
    with pytest.raises(RequestValidationError, match="num_frames >= 17") as caught:
        engine.run(_request("kandinsky5-i2v", "image2video", folder, inputs, num_frames=13))
    assert caught.value.http_status == 400
