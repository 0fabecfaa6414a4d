"""MuseTalk 1.5: the published layout on tiny random weights, the audio windows, the network and the pipeline."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

import omnirt.models.musetalk  # noqa: F401 - registers musetalk-1.5 (before the tiny fixture looks it up)
from omnirt.contracts.errors import OmniRTError, WeightsNotFoundError
from omnirt.models.musetalk import audio_prompts, load_components, positional_encoding
from omnirt.runtime.backends import CpuBackend

INVALID_CODES = ("weights_invalid", "weight_format")
WIDTH = 16  # the tiny Whisper's d_model


@pytest.fixture(scope="module")
def tiny_folder(tiny_model: Callable[[str], Path]) -> Path:
    return tiny_model("musetalk-1.5")


@pytest.fixture
def folder_copy(tiny_folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "musetalk"
    shutil.copytree(tiny_folder, target)
    return target


def make_network(folder: Path, **config: Any) -> Any:
    from omnirt.models.musetalk.network import MuseTalkNetwork

    return MuseTalkNetwork(*load_components(folder), backend=CpuBackend(), dtype="fp32", config=config)


@pytest.fixture(scope="module")
def network(tiny_folder: Path) -> Any:
    """fp32 without autocast (exact comparisons), two frames per batch (so three frames take two batches)."""
    return make_network(tiny_folder, dtype="fp32", batch_size=2)


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (3, 256, 256, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """1.3 s of a tone with a changing pitch, float32 at 16 kHz."""
    t = np.arange(int(1.3 * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * (200 + 150 * t) * t)).astype(np.float32)


# ---- the import stays light ----------------------------------------------------------------------------------------


def test_importing_the_family_does_not_import_torch() -> None:
    code = (
        "import sys, omnirt.models.musetalk as m; "
        "heavy = {'torch', 'diffusers', 'transformers'} & set(sys.modules); "
        "assert not heavy, heavy; assert callable(m.__getattr__)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- the published layout -------------------------------------------------------------------------------------------


def test_tiny_layout_has_the_published_file_names(tiny_folder: Path) -> None:
    for name in (
        "musetalkV15/musetalk.json",
        "musetalkV15/unet.pth",
        "sd-vae/config.json",
        "whisper/config.json",
        "whisper/preprocessor_config.json",
        "omnirt.json",
    ):
        assert (tiny_folder / name).is_file(), name
    unet, vae, encoder, extractor = load_components(tiny_folder)
    assert type(unet).__name__ == "UNet2DConditionModel" and unet.config.in_channels == 8
    assert unet.config.cross_attention_dim == encoder.config.d_model == WIDTH
    assert type(vae).__name__ == "AutoencoderKL" and vae.config.latent_channels == 4
    assert type(encoder).__name__ == "WhisperEncoder" and len(encoder.layers) == 4
    assert type(extractor).__name__ == "WhisperFeatureExtractor" and extractor.feature_size == 80


def _edit_state_dict(folder: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> None:
    path = folder / "musetalkV15" / "unet.pth"
    state = torch.load(path, weights_only=True)
    edit(state)
    torch.save(state, path)


def test_unet_missing_key_is_refused_naming_the_file_and_key(folder_copy: Path) -> None:
    removed: list[str] = []

    def drop(state: dict[str, torch.Tensor]) -> None:
        removed.append(sorted(state)[0])
        del state[removed[0]]

    _edit_state_dict(folder_copy, drop)
    with pytest.raises(OmniRTError) as caught:
        load_components(folder_copy)
    assert caught.value.code in INVALID_CODES
    assert "unet.pth" in caught.value.message and removed[0] in caught.value.message
    assert "missing" in caught.value.message


def test_unet_extra_key_is_refused(folder_copy: Path) -> None:
    _edit_state_dict(folder_copy, lambda state: state.update({"extra.weight": torch.zeros(2)}))
    with pytest.raises(OmniRTError) as caught:
        load_components(folder_copy)
    assert caught.value.code in INVALID_CODES
    assert "unet.pth" in caught.value.message and "extra.weight" in caught.value.message


def test_unet_shape_mismatch_and_unreadable_file_are_refused(folder_copy: Path) -> None:
    def widen(state: dict[str, torch.Tensor]) -> None:
        state["conv_in.weight"] = torch.zeros(1, 1, 1, 1)

    _edit_state_dict(folder_copy, widen)
    with pytest.raises(OmniRTError, match=r"conv_in\.weight") as caught:
        load_components(folder_copy)
    assert caught.value.code in INVALID_CODES

    (folder_copy / "musetalkV15" / "unet.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(OmniRTError, match=r"unet\.pth") as caught:
        load_components(folder_copy)
    assert caught.value.code in INVALID_CODES


def test_v10_weight_name_is_accepted_and_missing_files_are_named(folder_copy: Path) -> None:
    unet_folder = folder_copy / "musetalkV15"
    (unet_folder / "unet.pth").rename(unet_folder / "pytorch_model.bin")
    assert load_components(folder_copy)[0].config.out_channels == 4

    (unet_folder / "pytorch_model.bin").unlink()
    with pytest.raises(WeightsNotFoundError, match=r"unet\.pth"):
        load_components(folder_copy)
    shutil.rmtree(folder_copy / "musetalkV15")
    with pytest.raises(WeightsNotFoundError, match=r"musetalk\.json"):
        load_components(folder_copy)
    with pytest.raises(WeightsNotFoundError, match="not a folder"):
        load_components(folder_copy / "nowhere")


def test_missing_whisper_or_vae_is_named(folder_copy: Path) -> None:
    shutil.rmtree(folder_copy / "whisper")
    with pytest.raises(WeightsNotFoundError, match="whisper"):
        load_components(folder_copy)
    shutil.rmtree(folder_copy / "sd-vae")
    with pytest.raises(WeightsNotFoundError, match="sd-vae"):
        load_components(folder_copy)


# ---- audio windows and positional encoding ---------------------------------------------------------------------------


class SegmentExtractor:
    """Stands in for the feature extractor: each segment's features carry its first sample (the segment number)."""

    def __call__(self, segments: list[np.ndarray], *, sampling_rate: int, return_tensors: str) -> Any:
        assert sampling_rate == 16000 and return_tensors == "pt"
        assert all(len(segment) <= 30 * 16000 for segment in segments)
        first = torch.tensor([float(segment[0]) for segment in segments])
        return SimpleNamespace(input_features=first[:, None, None].expand(-1, 80, 3000).clone())


class StepEncoder(torch.nn.Module):
    """Stands in for the Whisper encoder: hidden state ``s`` at global step ``k`` is ``k + 1 + s / 10``."""

    def __init__(self, width: int = 3, states: int = 5) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(d_model=width)
        self.states = states

    def forward(self, features: torch.Tensor, output_hidden_states: bool = False) -> Any:
        assert output_hidden_states and features.shape[1:] == (80, 3000)
        step = features[:, 0, 0, None] * 1500 + torch.arange(1500)
        width = self.config.d_model
        hidden = tuple((step + 1 + s / 10)[..., None].expand(-1, -1, width) for s in range(self.states))
        return SimpleNamespace(hidden_states=hidden)


def expected_windows(steps: int, frames: int, fps: int) -> np.ndarray:
    """Upstream's indices: frame i reads padded steps [floor(i * 50 / fps), +10) with 4 zero steps on the left."""
    out = np.zeros((frames, 10, 5))
    for frame in range(frames):
        for offset in range(10):
            step = math.floor(frame * 50 / fps) - 4 + offset
            if 0 <= step < steps:
                out[frame, offset] = step + 1 + np.arange(5) / 10
    return out.reshape(frames, 50)


@pytest.mark.parametrize("seconds", [1.3, 61.3])
def test_audio_prompts_windows_match_the_reference_indices(seconds: float) -> None:
    samples = int(seconds * 16000)
    # Segment j of 30 s holds the value j, so the fake extractor can tell the segments apart.
    audio = np.repeat(np.arange(3, dtype=np.float32), 30 * 16000)[:samples]
    prompts = audio_prompts(audio, StepEncoder(), SegmentExtractor(), fps=25)
    frames, steps = math.floor(seconds * 25), math.floor(seconds * 50)
    assert prompts.shape == (frames, 50, 3) and prompts.dtype == torch.float32
    assert torch.equal(prompts[..., 0], prompts[..., 2])
    np.testing.assert_allclose(prompts[..., 0].numpy(), expected_windows(steps, frames, 25), rtol=0, atol=1e-4)
    # At 25 fps frame i reads steps [2i - 4, 2i + 6) of the unpadded stream, zeros before the start.
    assert torch.all(prompts[0, :20] == 0) and prompts[0, 20, 0] == pytest.approx(1.0)
    assert prompts[10, 0, 0] == pytest.approx(16 + 1) and prompts[10, 49, 0] == pytest.approx(25 + 1.4)


def test_audio_prompts_at_30_fps_and_hidden_state_count() -> None:
    audio = np.zeros(16000, np.float32)
    prompts = audio_prompts(audio, StepEncoder(), SegmentExtractor(), fps=30)
    assert prompts.shape == (30, 50, 3)
    np.testing.assert_allclose(prompts[..., 0].numpy(), expected_windows(50, 30, 30), rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="5 Whisper hidden states"):
        audio_prompts(audio, StepEncoder(states=3), SegmentExtractor())


def test_audio_prompts_on_the_tiny_whisper(tiny_folder: Path, speech: np.ndarray) -> None:
    _, _, encoder, extractor = load_components(tiny_folder)
    prompts = audio_prompts(speech, encoder, extractor)
    assert prompts.shape == (32, 50, WIDTH)  # floor(1.3 * 25) frames
    assert torch.all(prompts[0, :20] == 0) and not torch.all(prompts[0, 20:] == 0)


def test_positional_encoding_values() -> None:
    encoded = positional_encoding(torch.zeros(2, 50, 6))
    for position in (0, 1, 7, 49):
        for k in range(3):
            angle = position * math.exp(-math.log(10000.0) * 2 * k / 6)
            assert encoded[1, position, 2 * k].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert encoded[1, position, 2 * k + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    wide = positional_encoding(torch.ones(1, 50, 384, dtype=torch.float16))
    assert wide.dtype == torch.float16
    angle = 10 * math.exp(-math.log(10000.0) * 100 / 384)
    assert wide[0, 10, 100].item() == pytest.approx(1 + math.sin(angle), abs=2e-3)
    assert wide[0, 10, 101].item() == pytest.approx(1 + math.cos(angle), abs=2e-3)


# ---- the network on the tiny layout ----------------------------------------------------------------------------------


def test_prepare_frames_latents(network: Any, crops: np.ndarray) -> None:
    prepared = network.prepare_frames(crops)
    latents = prepared["latents"]
    assert set(prepared) == {"latents"}
    assert latents.shape == (3, 8, 32, 32) and latents.dtype == np.float16
    assert np.array_equal(latents, network.prepare_frames(crops)["latents"])  # the posterior mean: deterministic
    one_by_one = np.concatenate([network.prepare_frames(crops[i : i + 1])["latents"] for i in range(3)])
    np.testing.assert_allclose(latents.astype(np.float32), one_by_one.astype(np.float32), atol=2e-3)
    # The first four channels see only the upper half: a new lower half changes only the reference latents.
    changed = crops.copy()
    changed[:, 128:] = 255 - changed[:, 128:]
    other = network.prepare_frames(changed)["latents"]
    np.testing.assert_allclose(other[:, :4].astype(np.float32), latents[:, :4].astype(np.float32), atol=2e-3)
    assert not np.allclose(other[:, 4:], latents[:, 4:], atol=1e-2)
    with pytest.raises(ValueError, match="256"):
        network.prepare_frames(crops[:, :128])


def test_audio_features_match_the_whole_file_windows(network: Any, speech: np.ndarray) -> None:
    frames = [0, 1, 2, 15, 31]
    reference = positional_encoding(audio_prompts(speech, network.whisper_encoder, network.feature_extractor))
    features = network.audio_features(speech, 0, frames, 25)
    assert features.shape == (5, 50, WIDTH) and features.dtype == torch.float32 and features.device.type == "cpu"
    torch.testing.assert_close(features, reference[frames], rtol=0, atol=1e-5)
    # A window that starts a second before the stream (silence there) gives the same features.
    padded = np.concatenate([np.zeros(16000, np.float32), speech])
    torch.testing.assert_close(network.audio_features(padded, -16000, frames, 25), features, rtol=0, atol=1e-5)
    # Steps before the start are zeros before the positional encoding: frame 0's first 4 steps (20 rows).
    torch.testing.assert_close(features[0, :20], positional_encoding(torch.zeros(1, 50, WIDTH))[0, :20])


def test_audio_features_windows_off_the_step_grid_and_short_context(network: Any, speech: np.ndarray) -> None:
    features = network.audio_features(speech[100:], 100, [3, 4], 25)  # 220 samples dropped to land on the grid
    assert features.shape == (2, 50, WIDTH) and torch.isfinite(features).all()
    assert network.audio_features(speech, 0, [], 25).shape == (0, 50, WIDTH)
    with pytest.raises(ValueError, match="left context"):
        network.audio_features(speech[16000:], 16000, [25], 25)


def test_render_faces(network: Any, crops: np.ndarray, speech: np.ndarray) -> None:
    latents = network.prepare_frames(crops)
    features = network.audio_features(speech, 0, [4, 5, 6], 25)
    faces = network.render(features, latents)
    assert faces.shape == (3, 256, 256, 3) and faces.dtype == np.uint8
    single = network.render(features[2:], {"latents": latents["latents"][2:]})
    assert np.abs(single[0].astype(int) - faces[2].astype(int)).max() <= 1
    with pytest.raises(ValueError, match="features"):
        network.render(features[:2], latents)
    with pytest.raises(ValueError, match="latents"):
        network.render(features, {"latents": latents["latents"][:, :4]})
    info = network.describe()
    assert info["device"] == "cpu" and info["weights"] == "fp32" and info["autocast"] == "off"
    assert info["batch_cap"] == 2 and info["compiled"] is False


def test_default_precision_renders(tiny_folder: Path, crops: np.ndarray, speech: np.ndarray) -> None:
    from omnirt.runtime.precision import cpu_has_fast_bf16

    network = make_network(tiny_folder)
    assert network.batch_cap == 8 and network.face_size == 256
    assert network.describe()["autocast"] == ("bf16" if cpu_has_fast_bf16() else "off")
    faces = network.render(network.audio_features(speech, 0, [0], 25), network.prepare_frames(crops[:1]))
    assert faces.shape == (1, 256, 256, 3) and faces.dtype == np.uint8
    with pytest.raises(OmniRTError, match="batch_size"):
        make_network(tiny_folder, batch_size=0)


# ---- the registered pipeline -----------------------------------------------------------------------------------------


def test_pipeline_registration_and_construction(tiny_folder: Path) -> None:
    from omnirt.models.lipsync import LipSyncPipeline
    from omnirt.models.musetalk.network import MuseTalkNetwork
    from omnirt.registry.registry import get_model
    from omnirt.runtime.weights import WeightsSource

    spec = get_model("musetalk-1.5", "audio2video")
    caps = spec.capabilities
    assert issubclass(spec.pipeline_cls, LipSyncPipeline)
    assert spec.hub_id == "TMElyralab/MuseTalk" and spec.resource_hint["min_vram_gb"] == 4
    assert (caps.tier, caps.maturity, caps.artifact_kind) == ("core", "beta", "video")
    assert caps.realtime and caps.streaming and caps.service_adapter == "realtime-avatar.ws.v1"
    assert caps.required_inputs == ("audio",) and caps.optional_inputs == ("image", "prompt")
    assert {"face_box", "batch_size", "dtype", "model_path", "fps", "slice_len"} <= set(caps.supported_config)
    assert "commercial" in caps.summary

    pipeline = spec.pipeline_cls(
        spec=spec,
        source=WeightsSource(str(tiny_folder), "models_dir"),
        backend=CpuBackend(),
        dtype="fp32",
        config={"batch_size": 4},
        adapters=None,
    )
    assert isinstance(pipeline.network, MuseTalkNetwork) and pipeline.network.batch_cap == 4
    with pytest.raises(WeightsNotFoundError):
        spec.pipeline_cls(
            spec=spec, source=WeightsSource("TMElyralab/MuseTalk", "hub"), backend=CpuBackend(), dtype="fp32"
        )
