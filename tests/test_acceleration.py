"""Acceleration that really happens: the prompt-embedding cache, First Block Cache, layerwise fp8 storage, torchao
weight-only quantization, and the validation of their config keys."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from omnirt.contracts.errors import RequestValidationError
from omnirt.contracts.types import GenerateRequest
from omnirt.registry.validation import validate_request
from omnirt.runtime import prompt_cache


@pytest.fixture(autouse=True)
def fresh_prompt_cache(monkeypatch: pytest.MonkeyPatch) -> prompt_cache.PromptEmbeddingCache:
    cache = prompt_cache.PromptEmbeddingCache(256)
    monkeypatch.setattr(prompt_cache, "_CACHE", cache)
    return cache


def request(model: str, folder: Path, prompt: str = "a cat", **config) -> GenerateRequest:
    return GenerateRequest(
        task="text2image",
        model=model,
        backend="cpu",
        inputs={"prompt": prompt},
        config={"model_path": str(folder), "seed": 3, "num_inference_steps": 2, **config},
    )


def digest(result) -> str:
    return hashlib.sha256(Path(result.outputs[0].path).read_bytes()).hexdigest()


class EncoderCalls:
    """Counts forward calls of a loaded pipeline's text encoders."""

    def __init__(self, pipe) -> None:
        self.count = 0
        for name in ("text_encoder", "text_encoder_2", "text_encoder_3"):
            module = getattr(pipe, name, None)
            if module is not None:
                module.register_forward_pre_hook(self._called)

    def _called(self, *_) -> None:
        self.count += 1


# -- Prompt-embedding cache -------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["sd15", "flux-schnell"])
def test_repeated_prompt_reuses_embeddings_with_identical_output(model, tiny_model, engine, tmp_path) -> None:
    folder = tiny_model(model)
    uncached = engine.run(request(model, folder, prompt_cache=False), run_dir=tmp_path / "uncached")
    assert "text_embedding" not in uncached.metadata.cache_hits

    pipeline = engine.pipeline_for(model, backend="cpu", model_path=str(folder))
    calls = EncoderCalls(pipeline.pipe)
    first = engine.run(request(model, folder), run_dir=tmp_path / "first")
    encoded = calls.count
    second = engine.run(request(model, folder), run_dir=tmp_path / "second")

    assert encoded > 0 and calls.count == encoded  # the hit ran no encoder
    assert "text_embedding" not in first.metadata.cache_hits
    assert second.metadata.cache_hits == ["pipeline", "text_embedding"]
    assert digest(second) == digest(first) == digest(uncached)


def test_other_prompt_or_opt_out_is_a_miss(tiny_model, engine, tmp_path) -> None:
    folder = tiny_model("sd15")
    engine.run(request("sd15", folder), run_dir=tmp_path / "a")
    other = engine.run(request("sd15", folder, prompt="a dog"), run_dir=tmp_path / "b")
    assert "text_embedding" not in other.metadata.cache_hits
    negative = request("sd15", folder)
    negative.inputs["negative_prompt"] = "blurry"
    assert "text_embedding" not in engine.run(negative, run_dir=tmp_path / "c").metadata.cache_hits
    more_images = engine.run(request("sd15", folder, num_images_per_prompt=2), run_dir=tmp_path / "d")
    assert "text_embedding" not in more_images.metadata.cache_hits
    opted_out = engine.run(request("sd15", folder, prompt_cache=False), run_dir=tmp_path / "e")
    assert "text_embedding" not in opted_out.metadata.cache_hits
    assert "text_embedding" in engine.run(request("sd15", folder), run_dir=tmp_path / "f").metadata.cache_hits


def test_cache_is_bounded_least_recently_used_first(tiny_model, engine, tmp_path, fresh_prompt_cache) -> None:
    fresh_prompt_cache.resize(2)
    folder = tiny_model("sd15")
    for index, prompt in enumerate(("one", "two", "one", "three")):
        engine.run(request("sd15", folder, prompt=prompt), run_dir=tmp_path / str(index))
    assert len(fresh_prompt_cache) == 2
    hits = {
        prompt: "text_embedding"
        in engine.run(request("sd15", folder, prompt=prompt), run_dir=tmp_path / prompt).metadata.cache_hits
        for prompt in ("one", "two")
    }
    assert hits == {"one": True, "two": False}  # "two" was the least recently used when "three" came


def test_batch_of_prompts_is_one_entry(fresh_prompt_cache) -> None:
    import torch

    class Pipe:
        calls = 0

        def encode_prompt(self, prompt, device=None, num_images_per_prompt=1):
            Pipe.calls += 1
            return torch.arange(len(prompt), dtype=torch.float32), None

    pipe = Pipe()
    for _ in range(2):
        with prompt_cache.prompt_memo(pipe, "encode_prompt", owner="o", enabled=True) as use:
            embeds, _ = pipe.encode_prompt(["a", "b"], device=torch.device("cpu"))
    assert Pipe.calls == 1 and use.hits == 1 and embeds.tolist() == [0.0, 1.0]
    with prompt_cache.prompt_memo(pipe, "encode_prompt", owner="o", enabled=True) as use:
        pipe.encode_prompt(["a"], device=torch.device("cpu"))
        pipe.encode_prompt(torch.zeros(1))  # a tensor argument is never cached
    assert use.misses == 1 and use.uncacheable == 1 and "encode_prompt" not in vars(pipe)


def test_input_pictures_are_keyed_by_their_pixels(fresh_prompt_cache) -> None:
    import torch
    from PIL import Image

    class EditPipe:  # an encoder that reads the input picture with the prompt, like Qwen-Image-Edit's
        calls = 0

        def encode_prompt(self, prompt, image=None):
            EditPipe.calls += 1
            return torch.tensor([float(image.getpixel((0, 0))[0])])

    pipe = EditPipe()
    red, same_red, blue = Image.new("RGB", (4, 4), "red"), Image.new("RGB", (4, 4), "red"), Image.new("RGB", (4, 4))
    with prompt_cache.prompt_memo(pipe, "encode_prompt", owner="o", enabled=True) as use:
        values = [pipe.encode_prompt("x", image=picture).item() for picture in (red, same_red, blue)]
    assert values == [255.0, 255.0, 0.0] and use.hits == 1 and EditPipe.calls == 2


def test_real_encoder_batch_hits_as_a_whole(tiny_model, engine) -> None:
    import torch

    pipe = engine.pipeline_for("sd15", backend="cpu", model_path=str(tiny_model("sd15"))).pipe
    calls = EncoderCalls(pipe)
    results = []
    for _ in range(2):
        with prompt_cache.prompt_memo(pipe, "encode_prompt", owner="sd15", enabled=True) as use:
            results.append(pipe.encode_prompt(["a cat", "a dog"], torch.device("cpu"), 1, True, ["", "blurry"]))
    assert use.hits == 1 and calls.count == 2  # the first call: one forward per side of the batch; the hit: none
    for first, second in zip(results[0], results[1], strict=True):
        assert torch.equal(first, second) and first.data_ptr() != second.data_ptr()


def test_prompt_cache_key_is_validated(tiny_model) -> None:
    accepted = validate_request(request("sd15", tiny_model("sd15"), prompt_cache=False), probe_backend=False)
    assert accepted.ok
    wrong = validate_request(request("sd15", tiny_model("sd15"), prompt_cache="no"), probe_backend=False)
    assert "config.prompt_cache must be true or false" in " ".join(wrong.errors)
    svd = GenerateRequest(task="image2video", model="svd", inputs={"image": __file__}, config={"prompt_cache": True})
    assert "Unsupported config for svd (image2video): prompt_cache" in " ".join(validate_request(svd).errors)


# -- First Block Cache ------------------------------------------------------------------------------------------


def test_first_block_cache_skips_blocks_and_is_removed_after_the_run(tiny_model, engine, tmp_path) -> None:
    folder = tiny_model("flux-schnell")
    steps = {"num_inference_steps": 6}
    plain = engine.run(request("flux-schnell", folder, **steps), run_dir=tmp_path / "plain")
    cached = engine.run(
        request("flux-schnell", folder, cache="first_block_cache", cache_threshold=1.0, **steps),
        run_dir=tmp_path / "cached",
    )
    entry = next(
        item for item in cached.metadata.backend_timeline if item["attempts"][0]["level"] == "first_block_cache"
    )
    assert entry["module"] == "transformer"
    # The first pass computes everything; with a threshold of 1.0 every later pass reuses the tail residual.
    assert entry["attempts"][0]["reason"] == "threshold=1.0: 1 of 6 denoiser passes ran all blocks"
    assert digest(cached) != digest(plain)

    pipe = engine.pipeline_for("flux-schnell", backend="cpu", model_path=str(folder)).pipe
    assert not pipe.transformer.is_cache_enabled
    again = engine.run(request("flux-schnell", folder, **steps), run_dir=tmp_path / "again")
    assert digest(again) == digest(plain)
    assert all(item["attempts"][0]["level"] != "first_block_cache" for item in again.metadata.backend_timeline)


def test_first_block_cache_is_refused_where_it_cannot_run(tiny_model, engine) -> None:
    unet = validate_request(request("sd15", tiny_model("sd15"), cache="first_block_cache"), probe_backend=False)
    assert "Unsupported config for sd15 (text2image): cache" in " ".join(unet.errors)
    bad = validate_request(
        request("flux-schnell", Path("."), cache="tea_cache", cache_threshold=0), probe_backend=False
    )
    assert "config.cache must be one of first_block_cache, got 'tea_cache'" in bad.errors[0]
    assert "config.cache_threshold must be a number in (0, 1]" in " ".join(bad.errors)
    lone = validate_request(request("flux-schnell", Path("."), cache_threshold=0.1), probe_backend=False)
    assert "config.cache_threshold applies to config.cache=first_block_cache" in " ".join(lone.errors)


@pytest.mark.parametrize("key", ["quantization_backend", "tea_cache_ratio", "tea_cache_interval", "enable_tea_cache"])
def test_removed_keys_are_unknown(key) -> None:
    result = validate_request(request("flux-schnell", Path("."), **{key: 1}), probe_backend=False)
    assert f"Unsupported config for flux-schnell (text2image): {key}" in " ".join(result.errors)


def _first_block_cache_families() -> list:
    from omnirt.registry.registry import list_available_models
    from omnirt.runtime.acceleration import FIRST_BLOCK_CACHE_PIPELINES

    families = {}
    for spec in list_available_models(include_aliases=False):
        pipeline_class = getattr(spec.pipeline_cls, "pipeline_classes", {}).get(spec.task)
        if pipeline_class in FIRST_BLOCK_CACHE_PIPELINES:
            families.setdefault(pipeline_class, spec)
    assert set(families) == FIRST_BLOCK_CACHE_PIPELINES  # every listed pipeline has a family that runs it here
    return list(families.values())


@pytest.mark.parametrize("spec", _first_block_cache_families(), ids=lambda spec: f"{spec.id}:{spec.task}")
def test_every_listed_pipeline_runs_first_block_cache(spec, tiny_model, engine, sample_image) -> None:
    inputs = {"prompt": "a cat"}
    if "image" in spec.capabilities.required_inputs:
        inputs["image"] = str(sample_image)
    config = {"seed": 1, "num_inference_steps": 4, "cache": "first_block_cache", "cache_threshold": 1.0}
    folder = tiny_model(spec.id, spec.task)
    result = engine.run(
        GenerateRequest(
            task=spec.task, model=spec.id, backend="cpu", inputs=inputs, config={"model_path": str(folder), **config}
        )
    )
    reasons = [
        item["attempts"][0]["reason"]
        for item in result.metadata.backend_timeline
        if item["attempts"][0]["level"] == "first_block_cache"
    ]
    assert reasons, "no First Block Cache entry in the report"
    for reason in reasons:
        full, passes = (int(number) for number in reason.split(": ")[1].split(" denoiser")[0].split(" of "))
        assert 1 <= full < passes  # the first pass computes everything, later ones reuse the cached residual


def test_first_block_cache_is_offered_exactly_where_it_runs(tiny_model) -> None:
    """A family lists ``cache`` when its pipeline is one the step cache runs on, and only then; on any other the
    key is unknown, so a request for it is refused before a job exists."""
    from omnirt.registry.registry import list_available_models
    from omnirt.runtime.acceleration import FIRST_BLOCK_CACHE_PIPELINES

    for spec in list_available_models(include_aliases=False):
        pipeline_class = getattr(spec.pipeline_cls, "pipeline_classes", {}).get(spec.task)
        offered = "cache" in spec.capabilities.supported_config
        assert offered == (pipeline_class in FIRST_BLOCK_CACHE_PIPELINES), (spec.id, spec.task, pipeline_class)

    fill = GenerateRequest(
        task="inpaint",
        model="flux-fill",
        inputs={"prompt": "x", "image": __file__, "mask": __file__},
        config={"model_path": str(tiny_model("flux-fill", "inpaint")), "cache": "first_block_cache"},
    )
    message = " ".join(validate_request(fill, probe_backend=False).errors)
    assert "Unsupported config for flux-fill (inpaint): cache." in message


# -- Weight storage: layerwise casting and quantization ------------------------------------------------------------


def test_layerwise_fp8_casting_stores_fp8_weights(tiny_model, engine, tmp_path) -> None:
    import torch

    folder = tiny_model("sd15")
    plain = engine.run(request("sd15", folder), run_dir=tmp_path / "plain")
    cast = engine.run(request("sd15", folder, layerwise_casting="fp8_e4m3"), run_dir=tmp_path / "cast")
    assert "pipeline" not in cast.metadata.cache_hits  # a different warm pipeline: the weights differ
    unet = engine.pipeline_for("sd15", backend="cpu", model_path=str(folder)).pipe.unet
    cast_unet = next(
        entry.pipeline.pipe.unet for key, entry in engine.cache._entries.items() if "layerwise_casting" in key[3]
    )
    assert unet.conv_in.weight.dtype == torch.float32
    assert cast_unet.conv_in.weight.dtype == torch.float8_e4m3fn
    entry = next(item for item in cast.metadata.backend_timeline if item["module"] == "unet" and "cast" in str(item))
    assert entry["attempts"][0]["reason"] == "stored as float8_e4m3fn, computed in float32"
    _assert_close_images(plain, cast)


@pytest.mark.parametrize(("quantization", "tensor_type"), [("int8", "Int8Tensor"), ("fp8", "Float8Tensor")])
def test_weight_only_quantization_replaces_denoiser_weights(quantization, tensor_type, tiny_model, engine, tmp_path):
    import torchao

    folder = tiny_model("flux-schnell")
    plain = engine.run(request("flux-schnell", folder), run_dir=tmp_path / "plain")
    quantized = engine.run(request("flux-schnell", folder, quantization=quantization), run_dir=tmp_path / "quant")
    assert "pipeline" not in quantized.metadata.cache_hits
    pipe = next(entry.pipeline.pipe for key, entry in engine.cache._entries.items() if "quantization" in key[3])
    assert isinstance(pipe.transformer.proj_out.weight, getattr(torchao.quantization, tensor_type))
    levels = [item["attempts"][0]["level"] for item in quantized.metadata.backend_timeline]
    assert f"quantization:{quantization}" in levels
    _assert_close_images(plain, quantized)


def test_quantization_is_refused_on_ascend_and_with_casting(tiny_model) -> None:
    from omnirt.runtime.acceleration import apply_at_load
    from omnirt.runtime.backends import AscendBackend

    with pytest.raises(RequestValidationError, match="runs on cuda or cpu, not ascend"):
        apply_at_load(type("Pipe", (), {"transformer": object()})(), AscendBackend(), {"quantization": "int8"}, None)
    both = validate_request(
        request("sd15", tiny_model("sd15"), quantization="int8", layerwise_casting="fp8_e4m3"), probe_backend=False
    )
    assert "pick one" in " ".join(both.errors)
    bad = validate_request(request("sd15", tiny_model("sd15"), quantization="nf4"), probe_backend=False)
    assert "config.quantization must be one of int8, fp8, got 'nf4'" in " ".join(bad.errors)


def _assert_close_images(first, second, *, tolerance: float = 4.0) -> None:
    """Sensible output: the same picture within a mean absolute difference of ``tolerance`` (0-255); two seeds of
    these tiny models differ by about 44, fp8 storage and int8 weights by under 1."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(first.outputs[0].path), dtype=np.float32)
    b = np.asarray(Image.open(second.outputs[0].path), dtype=np.float32)
    assert a.shape == b.shape and np.isfinite(b).all()
    assert float(np.abs(a - b).mean()) < tolerance


def test_cache_size_is_a_setting_and_zero_turns_it_off(tiny_model, engine, tmp_path, fresh_prompt_cache) -> None:
    from omnirt.settings import Settings

    engine.configure(Settings.from_env({"OMNIRT_PROMPT_CACHE_SIZE": "0"}))
    assert fresh_prompt_cache.max_entries == 0
    folder = tiny_model("sd15")
    for name in ("a", "b"):
        result = engine.run(request("sd15", folder), run_dir=tmp_path / name)
        assert "text_embedding" not in result.metadata.cache_hits
    assert len(fresh_prompt_cache) == 0


def _prompted_diffusion_specs() -> list:
    from omnirt.registry.registry import list_available_models

    return [
        spec
        for spec in list_available_models(include_aliases=False)
        if "prompt_cache" in spec.capabilities.supported_config
    ]


@pytest.mark.parametrize("spec", _prompted_diffusion_specs(), ids=lambda spec: f"{spec.id}:{spec.task}")
def test_every_family_hit_returns_what_its_encoder_returns(
    spec, tiny_model, engine, sample_image, sample_mask, tmp_path, monkeypatch
) -> None:
    """On every family with a prompt: the second run is a hit, its encoder method is not called, and the embeddings
    it gets equal a fresh encode's. (Output bytes are compared on sd15 and FLUX above: some tiny families, e.g.
    wan2.1-i2v, vary run to run whatever the cache does.)"""
    import functools

    import diffusers

    from omnirt.contracts.errors import DependencyUnavailableError

    try:
        folder = tiny_model(spec.id, spec.task)
    except DependencyUnavailableError as exc:  # as in test_families: Qwen-Image-Edit's processor needs torchvision
        pytest.skip(f"cannot build a tiny {spec.id} here: {exc}")
    pipeline_cls = getattr(diffusers, spec.pipeline_cls.pipeline_classes[spec.task])
    original = getattr(pipeline_cls, spec.pipeline_cls.prompt_encoder)
    encoded, restored = [], []

    @functools.wraps(original)
    def recording(self, *args, **kwargs):
        encoded.append(original(self, *args, **kwargs))
        return encoded[-1]

    monkeypatch.setattr(pipeline_cls, spec.pipeline_cls.prompt_encoder, recording)
    restore, depth = prompt_cache._restore, [0]

    def recording_restore(stored):  # _restore recurses through its own module name: keep the outermost result
        depth[0] += 1
        try:
            value = restore(stored)
        finally:
            depth[0] -= 1
        if depth[0] == 0:
            restored.append(value)
        return value

    monkeypatch.setattr(prompt_cache, "_restore", recording_restore)
    inputs = {"prompt": "a cat"}
    for name, path in (("image", sample_image), ("mask", sample_mask)):
        if name in spec.capabilities.required_inputs:
            inputs[name] = str(path)

    def run(name: str, **config):
        return engine.run(
            GenerateRequest(
                task=spec.task,
                model=spec.id,
                backend="cpu",
                inputs=inputs,
                config={"model_path": str(folder), "seed": 5, "num_inference_steps": 2, **config},
            ),
            run_dir=tmp_path / name,
        )

    run("first")
    misses = len(encoded)
    second = run("second")
    assert misses >= 1 and len(encoded) == misses  # the hit called no encoder
    assert "text_embedding" in second.metadata.cache_hits and len(restored) == misses
    run("fresh", prompt_cache=False)
    assert len(encoded) == 2 * misses
    for got, want in zip(restored, encoded[misses:], strict=True):
        assert _same_tensors(got, want)


def _same_tensors(got, want) -> bool:
    import torch

    if isinstance(want, torch.Tensor):
        return isinstance(got, torch.Tensor) and got.dtype == want.dtype and torch.equal(got, want)
    if isinstance(want, (tuple, list)):
        return len(got) == len(want) and all(_same_tensors(a, b) for a, b in zip(got, want, strict=True))
    return got == want
