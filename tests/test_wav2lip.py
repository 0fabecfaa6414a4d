"""Wav2Lip: the generator against the published state-dict table, checkpoint loading, the mel recipe, the network
the avatar domain drives, the registry entries and the random-weight builder."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from omnirt.contracts.errors import WeightsInvalidError, WeightsNotFoundError
from omnirt.models.wav2lip import load_network, mel_spectrogram
from omnirt.models.wav2lip.audio import AUDIO_CONTEXT_S, exact_audio_context_samples, first_columns, frame_mels
from omnirt.models.wav2lip.network import Wav2Lip, Wav2LipNetwork, build_wav2lip
from omnirt.runtime.backends import CpuBackend

TABLE_FILE = Path("/work/shared/reference/talking-heads/wav2lip-state-dict-keys.json")
# The published table (names and shapes in order, "name [d0, d1, ...]" per line): entry count and sha256, so that the
# layout is pinned even where the reference file is not at hand.
TABLE_DIGESTS = {
    96: (352, "650d08d0d703d7e47edf697b6e2cd737d7447dce54da88b4e5114dc049a118fe"),
    256: (380, "5d30ec449fececa0d2133704c76a61b93022994a3cc01a62a7e03703dd37d38f"),
}


class NotATensor:
    """Pickled inside a checkpoint, this needs code to load: ``weights_only`` must refuse it."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def layout(model: torch.nn.Module) -> dict[str, list[int]]:
    return {name: list(tensor.shape) for name, tensor in model.state_dict().items()}


def digest(table: dict[str, list[int]]) -> tuple[int, str]:
    text = "\n".join(f"{name} {list(shape)}" for name, shape in table.items())
    return len(table), hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def models() -> dict[int, Wav2Lip]:
    torch.manual_seed(0)
    return {96: build_wav2lip(96), 256: build_wav2lip(256)}


@pytest.fixture(scope="module")
def tables(models: dict[int, Wav2Lip]) -> dict[int, dict[str, list[int]]]:
    """The published name -> shape tables; from the reference file when present, else the (pinned) model layout."""
    if TABLE_FILE.is_file():
        data = json.loads(TABLE_FILE.read_text())
        return {96: data["wav2lip-96"], 256: data["wav2lip-256"]}
    return {size: layout(model) for size, model in models.items()}


def random_table_state_dict(table: dict[str, list[int]], *, seed: int, full: bool) -> dict[str, torch.Tensor]:
    """Random tensors with the table's names and shapes. ``full=False`` stores one random value per tensor,
    broadcast to its shape (the file then stays tiny, and every tensor is still told apart)."""
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for name, shape in table.items():
        if name.endswith("num_batches_tracked"):
            tensors[name] = torch.tensor(7)
        elif full:
            tensors[name] = torch.randn(shape, generator=generator)
        else:
            value = torch.rand(1, generator=generator) + 0.5
            tensors[name] = value.reshape([1] * len(shape)).expand(shape) if shape else value.reshape(())
        if name.endswith("running_var") and full:
            tensors[name] = tensors[name].abs() + 0.5
    return tensors


def assert_loaded(model: torch.nn.Module, source: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    assert set(loaded) == set(source)
    for name, tensor in source.items():
        assert torch.equal(loaded[name], tensor.to(loaded[name].dtype)), name


def save(tensors: dict[str, torch.Tensor], path: Path, *, prefix: bool, wrapped: bool) -> Path:
    state_dict = {(f"module.{name}" if prefix else name): tensor for name, tensor in tensors.items()}
    payload: dict[str, Any] = state_dict
    if wrapped:
        payload = {
            "state_dict": state_dict,
            "optimizer": {"state": {}, "param_groups": []},
            "global_step": 42,
            "global_epoch": 3,
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


# The generator --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [96, 256])
def test_generator_layout_is_the_published_table(
    size: int, models: dict[int, Wav2Lip], tables: dict[int, dict[str, list[int]]]
) -> None:
    model = models[size]
    assert list(layout(model).items()) == list(tables[size].items())
    assert digest(layout(model)) == TABLE_DIGESTS[size]
    parameters = sum(parameter.numel() for parameter in model.parameters())
    assert round(parameters / 1e6, 1) == {96: 36.3, 256: 53.6}[size]
    model.load_state_dict(random_table_state_dict(tables[size], seed=1, full=False), strict=True)


def test_forward_shapes_and_time_axis(models: dict[int, Wav2Lip]) -> None:
    model = models[96]
    audio, faces = torch.randn(3, 1, 80, 16), torch.rand(3, 6, 96, 96)
    with torch.inference_mode():
        out = model(audio, faces)
        assert out.shape == (3, 3, 96, 96)
        assert 0.0 <= out.min() and out.max() <= 1.0
        # (B, T, 1, 80, 16) and (B, 6, T, S, S): T folds into the batch and comes back on axis 2.
        folded = model(torch.stack([audio[:2], audio[1:]]), torch.stack([faces[:2], faces[1:]], dim=0).transpose(1, 2))
        assert folded.shape == (2, 3, 2, 96, 96)
        torch.testing.assert_close(folded[0, :, 1], out[1], atol=1e-5, rtol=0)
        torch.testing.assert_close(folded[1, :, 0], out[1], atol=1e-5, rtol=0)
        torch.testing.assert_close(folded[1, :, 1], out[2], atol=1e-5, rtol=0)
        with pytest.raises(ValueError, match="audio must be"):
            model(audio, faces.unsqueeze(2))
        out_256 = models[256](torch.randn(1, 1, 80, 16), torch.rand(1, 6, 256, 256))
    assert out_256.shape == (1, 3, 256, 256)


# Loading checkpoints --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", [False, True], ids=["plain", "module-prefix"])
@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "state_dict-wrapped"])
def test_loads_torch_checkpoints(
    tmp_path: Path, tables: dict[int, dict[str, list[int]]], prefix: bool, wrapped: bool
) -> None:
    source = random_table_state_dict(tables[96], seed=2, full=False)
    file = save(source, tmp_path / "weights" / "wav2lip.pth", prefix=prefix, wrapped=wrapped)
    model = load_network(str(file) if prefix else file.parent)  # a file (as str) or the folder holding it
    assert (model.face_size, model.variant) == (96, "wav2lip-96")
    assert not model.training
    assert_loaded(model, source)


def test_loads_safetensors_with_random_weights(tmp_path: Path, tables: dict[int, dict[str, list[int]]]) -> None:
    from safetensors.torch import save_file

    source = random_table_state_dict(tables[96], seed=3, full=True)
    save_file(source, str(tmp_path / "generator.safetensors"))
    model = load_network(tmp_path)
    assert model.face_size == 96
    assert_loaded(model, source)


def test_recognises_the_256_layout(tmp_path: Path, tables: dict[int, dict[str, list[int]]]) -> None:
    source = random_table_state_dict(tables[256], seed=4, full=True)
    save(source, tmp_path / "wav2lip.pth", prefix=True, wrapped=True)
    model = load_network(tmp_path / "wav2lip.pth")
    assert (model.face_size, model.variant) == (256, "wav2lip-256")
    assert_loaded(model, source)


def test_mismatched_tensors_are_named(tmp_path: Path, tables: dict[int, dict[str, list[int]]]) -> None:
    source = random_table_state_dict(tables[96], seed=5, full=False)
    del source["audio_encoder.3.conv_block.0.bias"]
    del source["face_decoder_blocks.2.1.conv_block.1.running_var"]
    source["extra.weight"] = torch.zeros(2)
    source["output_block.1.weight"] = torch.zeros(3, 32, 3, 3)
    save(source, tmp_path / "wav2lip.pth", prefix=True, wrapped=True)
    with pytest.raises(WeightsInvalidError) as caught:
        load_network(tmp_path)
    message = caught.value.message
    assert caught.value.code == "weights_invalid" and caught.value.http_status == 400
    assert "missing: audio_encoder.3.conv_block.0.bias, face_decoder_blocks.2.1.conv_block.1.running_var" in message
    assert "unexpected: extra.weight" in message
    assert "shape: output_block.1.weight (file [3, 32, 3, 3] vs model [3, 32, 1, 1])" in message
    assert caught.value.details["missing"] == [
        "audio_encoder.3.conv_block.0.bias",
        "face_decoder_blocks.2.1.conv_block.1.running_var",
    ]


def test_a_different_network_is_named_as_such(tmp_path: Path) -> None:
    sync_net = {f"face_encoder.{index}.conv_block.0.weight": torch.zeros(4, 4, 3, 3) for index in range(9)}
    save(sync_net, tmp_path / "lipsync_expert.pth", prefix=False, wrapped=True)
    with pytest.raises(WeightsInvalidError, match=r"is not a Wav2Lip generator checkpoint") as caught:
        load_network(tmp_path)
    assert "(+348 more)" in caught.value.message and "(+5 more)" in caught.value.message


def test_a_pickle_that_needs_code_is_refused(tmp_path: Path, tables: dict[int, dict[str, list[int]]]) -> None:
    source = random_table_state_dict(tables[96], seed=6, full=False)
    torch.save({"state_dict": source, "hparams": NotATensor()}, tmp_path / "wav2lip.pth")
    with pytest.raises(WeightsInvalidError, match="refused because it contains code"):
        load_network(tmp_path / "wav2lip.pth")


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError):
        load_network(tmp_path / "nowhere" / "wav2lip.pth")
    with pytest.raises(WeightsNotFoundError, match="No Wav2Lip checkpoint"):
        load_network(tmp_path)
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsInvalidError, match="not a readable torch checkpoint"):
        load_network(tmp_path)
    (tmp_path / "broken.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(WeightsInvalidError, match="several checkpoints"):
        load_network(tmp_path)
    with pytest.raises(WeightsInvalidError, match="not a readable safetensors file"):
        load_network(tmp_path / "broken.safetensors")
    torch.save({"state_dict": {"a": 1}}, tmp_path / "numbers.pt")
    with pytest.raises(WeightsInvalidError, match="not tensors: a"):
        load_network(tmp_path / "numbers.pt")


def test_folder_prefers_the_gan_checkpoint(tmp_path: Path, tables: dict[int, dict[str, list[int]]]) -> None:
    source = random_table_state_dict(tables[96], seed=7, full=False)
    save(source, tmp_path / "wav2lip_gan.pth", prefix=True, wrapped=True)
    (tmp_path / "wav2lip.pth").write_bytes(b"unused")
    (tmp_path / "other.pth").write_bytes(b"unused")
    assert_loaded(load_network(tmp_path), source)


# Mel features ---------------------------------------------------------------------------------------------------------
def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    voiced = 0.3 * np.sin(2 * np.pi * 180 * t + 2 * np.sin(2 * np.pi * 3 * t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    return (voiced + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def reference_mel(samples: np.ndarray) -> np.ndarray:
    """The upstream recipe written out independently: scipy pre-emphasis and window, a framing loop, and the Slaney
    filterbank from its formulas, one weight at a time."""
    from scipy.signal import get_window, lfilter

    y = np.pad(lfilter([1.0, -0.97], [1.0], samples.astype(np.float64)), 400, mode="reflect")
    window = get_window("hann", 800, fftbins=True)
    columns = 1 + (len(y) - 800) // 200
    magnitude = np.stack([np.abs(np.fft.rfft(window * y[200 * j : 200 * j + 800])) for j in range(columns)], axis=1)

    def to_mel(hz: float) -> float:
        return hz * 3 / 200 if hz < 1000 else 15 + math.log(hz / 1000) * 27 / math.log(6.4)

    def to_hz(mel: float) -> float:
        return mel * 200 / 3 if mel < 15 else 1000 * math.exp((mel - 15) * math.log(6.4) / 27)

    low, high = to_mel(55.0), to_mel(7600.0)
    points = [to_hz(low + (high - low) * k / 81) for k in range(82)]
    bank = np.zeros((80, 401))
    for band in range(80):
        left, centre, right = points[band : band + 3]
        for index in range(401):
            hz = index * 8000 / 400
            if left < hz < right:
                weight = (hz - left) / (centre - left) if hz <= centre else (right - hz) / (right - centre)
                bank[band, index] = weight * 2 / (right - left)
    decibels = 20 * np.log10(np.maximum(1e-5, bank @ magnitude)) - 20
    return np.clip(8 * (decibels + 100) / 100 - 4, -4, 4)


def test_mel_spectrogram_follows_the_recipe() -> None:
    samples = speech_like(1.5)
    mel = mel_spectrogram(samples)
    assert mel.dtype == np.float32 and mel.shape == (80, 1 + len(samples) // 200)
    expected = reference_mel(samples)
    assert np.abs(mel - expected).max() < 1e-4
    assert mel.min() < -1.5 and mel.max() > 0.5  # real dynamic range, not a clipped constant
    silence = mel_spectrogram(np.zeros(1600, np.float32))
    assert np.allclose(silence, -4.0)


def test_declared_audio_context() -> None:
    assert exact_audio_context_samples() == (600, 3400)
    assert AUDIO_CONTEXT_S == (0.04, 0.22)
    assert AUDIO_CONTEXT_S[0] * 16000 >= 600 and AUDIO_CONTEXT_S[1] * 16000 >= 3400


@pytest.mark.parametrize("fps", [25, 30])
def test_window_features_equal_whole_signal_columns(fps: int) -> None:
    samples = speech_like(3.0, seed=1)
    mel = mel_spectrogram(samples)
    frames = [11, 12, 13, 20, 21, 40]
    before, after = AUDIO_CONTEXT_S
    # The window a caller cuts from the declared context: from the first frame's time minus ``before`` to the last
    # frame's time plus ``after``.
    start = math.floor((frames[0] / fps - before) * 16000)
    end = math.ceil((frames[-1] / fps + after) * 16000)
    window = samples[start:end]
    features = frame_mels(window, start, frames, fps)
    assert features.shape == (len(frames), 80, 16) and features.dtype == np.float32
    for row, frame, first in zip(features, frames, first_columns(frames, fps), strict=True):
        assert first == int(80 * frame / fps)
        assert np.abs(row - mel[:, first : first + 16]).max() < 1e-4


def test_window_before_the_stream_started_is_silence() -> None:
    samples = speech_like(0.5, seed=2)
    features = frame_mels(np.concatenate([np.zeros(800, np.float32), samples]), -800, [0, 1], 25)
    assert features.shape == (2, 80, 16)
    assert np.isfinite(features).all()
    assert np.array_equal(features, frame_mels(samples, 0, [0, 1], 25))
    assert frame_mels(samples, 0, [], 25).shape == (0, 80, 16)


# The network the avatar domain drives ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from omnirt.models.wav2lip.tiny import build_tiny

    return build_tiny("wav2lip", tmp_path_factory.mktemp("tiny") / "wav2lip")


def test_tiny_builder_writes_the_published_format(tiny_folder: Path) -> None:
    assert sorted(path.name for path in tiny_folder.iterdir()) == ["omnirt.json", "wav2lip.pth"]
    raw = torch.load(tiny_folder / "wav2lip.pth", map_location="cpu", weights_only=True)
    assert set(raw) == {"state_dict", "optimizer", "global_step", "global_epoch"}
    assert all(key.startswith("module.") for key in raw["state_dict"])
    assert json.loads((tiny_folder / "omnirt.json").read_text())["tiny"] is True
    model = load_network(tiny_folder)
    assert model.face_size == 96
    with torch.inference_mode():
        faces = torch.rand(1, 6, 96, 96).expand(2, -1, -1, -1)
        out = model(torch.randn(2, 1, 80, 16), faces)
    assert out.std() > 0.05  # not a flat grey
    assert (out[0] - out[1]).abs().mean() > 0.01  # the audio changes the picture


def crops_of(count: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    ramp = np.linspace(0, 255, size, dtype=np.float64)
    base = np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size)), np.full((size, size), 60.0)], -1)
    return np.clip(base[None] + rng.normal(0, 20, (count, size, size, 3)), 0, 255).astype(np.uint8)


def test_network_renders_rgb_crops(tiny_folder: Path) -> None:
    model = load_network(tiny_folder)
    network = Wav2LipNetwork(
        load_network(tiny_folder), backend=CpuBackend(), dtype="fp32", config={"dtype": "fp32", "batch_size": 2}
    )
    assert (network.face_size, network.batch_cap, network.audio_context_s) == (96, 2, (0.04, 0.22))
    crops = crops_of(3, 96)
    prepared = network.prepare_frames(crops)
    assert prepared["faces"].shape == (3, 96, 96, 3) and prepared["faces"].dtype == np.uint8
    assert np.array_equal(prepared["faces"], crops[..., ::-1])
    samples = speech_like(2.0, seed=4)
    features = network.audio_features(samples, 0, [5, 6, 7], 25)
    assert isinstance(features, torch.Tensor) and features.shape == (3, 1, 80, 16)
    rendered = network.render(features, prepared)  # 3 frames with a batch cap of 2: two batches
    assert rendered.shape == (3, 96, 96, 3) and rendered.dtype == np.uint8
    # The same frames through the bare generator, input built by hand: BGR / 255, lower half of channels 0-2 zeroed.
    bgr = torch.from_numpy(crops[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255
    masked = bgr.clone()
    masked[:, :, 48:] = 0
    with torch.inference_mode():
        expected = model(features, torch.cat([masked, bgr], dim=1))
    expected_rgb = (expected.flip(1).permute(0, 2, 3, 1) * 255).round().numpy()
    assert np.abs(rendered.astype(np.float64) - expected_rgb).max() <= 1
    description = network.describe()
    assert description["device"] == "cpu" and description["batchnorm"] == "folded"
    assert description["fused_conv_relu"] is True  # the close match above is the fused path's
    assert description["variant"] == "wav2lip-96" and description["compiled"] is False
    with pytest.raises(ValueError, match="uint8"):
        network.prepare_frames(crops.astype(np.float32))


def test_network_default_cpu_precision(tiny_folder: Path) -> None:
    from omnirt.runtime.precision import cpu_has_fast_bf16

    network = Wav2LipNetwork(load_network(tiny_folder), backend=CpuBackend(), dtype="fp32", config={})
    assert network.batch_cap == 16
    description = network.describe()
    assert description["channels_last"] is True
    assert description["autocast"] == ("bf16" if cpu_has_fast_bf16() else "off")
    crops = crops_of(2, 96)
    rendered = network.render(network.audio_features(speech_like(1.0), 0, [3, 4], 25), network.prepare_frames(crops))
    assert rendered.shape == (2, 96, 96, 3)


# Registry and pipeline ------------------------------------------------------------------------------------------------
def test_registry_entries() -> None:
    from omnirt.registry.registry import get_model

    for model_id in ("wav2lip", "wav2lip-256"):
        spec = get_model(model_id)
        capabilities = spec.capabilities
        assert spec.task == "audio2video" and spec.hub_id is None
        assert spec.resource_hint["min_vram_gb"] == 1
        assert (capabilities.tier, capabilities.maturity, capabilities.realtime, capabilities.streaming) == (
            "core",
            "beta",
            True,
            True,
        )
        assert capabilities.service_adapter == "realtime-avatar.ws.v1"
        assert capabilities.required_inputs == ("audio",)
        assert {"face_box", "batch_size", "dtype", "model_path"} <= set(capabilities.supported_config)
        assert capabilities.backend_status == {"cpu": "supported", "cuda": "supported", "ascend": "supported"}
        assert "non-commercial" in capabilities.summary


def test_pipeline_checks_the_variant(tiny_folder: Path) -> None:
    from omnirt.models.wav2lip.pipeline import Wav2LipPipeline
    from omnirt.registry.registry import get_model
    from omnirt.runtime.weights import WeightsSource

    source = WeightsSource(str(tiny_folder), "model_path")
    pipeline = Wav2LipPipeline(
        spec=get_model("wav2lip"), source=source, backend=CpuBackend(), dtype="fp32", config={"batch_size": 4}
    )
    assert isinstance(pipeline.network, Wav2LipNetwork)
    assert pipeline.network.batch_cap == 4 and pipeline.backend_timeline == []
    with pytest.raises(WeightsInvalidError, match="holds the Wav2Lip 96 px layout, but 'wav2lip-256'"):
        Wav2LipPipeline(spec=get_model("wav2lip-256"), source=source, backend=CpuBackend(), dtype="fp32", config={})
