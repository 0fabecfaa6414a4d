"""The Wav2Lip generator as plain torch modules, and :class:`Wav2LipNetwork`, the loaded model the avatar domain drives.

This module owns two things:

* :class:`Wav2Lip`, the generator written to the published state-dict layout (parameter and buffer names and shapes of
  ``wav2lip.pth`` / ``wav2lip_gan.pth`` at 96 px and of LiveTalking's 256 px variant), so that the published files load
  with ``strict=True``. Every layer's channels and kernel come from that table; strides and paddings are the ones
  that make the spatial sizes line up (face S x S -> 512 x 1 x 1, mel 80 x 16 -> 512 x 1 x 1, decoder back to S).
* :class:`Wav2LipNetwork`, the :class:`~omnirt.avatars.lipsync.LipSyncNetwork` implementation: BGR crops per template
  frame, mel windows per video frame, batched rendering in the backend's precision.

Layout of the generator (``S`` = face size; sizes after each stage):

============================  ===========================================================================
``face_encoder_blocks``       7 stages for 96 (96, 48, 24, 12, 6, 3, 1), 8 for 256 (256, 128, ..., 4, 1)
``audio_encoder``             80x16 -> 80x16 -> 27x16 -> 9x6 -> 3x3 -> 1x1, 512 channels
``face_decoder_blocks``       1x1 conv on the audio embedding, then transposed convs back up to S; after every
                              stage the matching encoder feature is concatenated (last encoder feature first)
``output_block``              Conv(80 -> 32, 3x3) + BN + ReLU, bare Conv(32 -> 3, 1x1), sigmoid
============================  ===========================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from omnirt.avatars.lipsync import LipSyncNetwork

FACE_SIZES = (96, 256)
VARIANTS = {96: "wav2lip-96", 256: "wav2lip-256"}
MEL_BANDS = 80
MEL_STEP = 16  # mel columns per video frame


@dataclass(frozen=True)
class Layer:
    """One conv block: ``Conv2d`` (or ``ConvTranspose2d``) + ``BatchNorm2d`` + ReLU, optionally residual."""

    cin: int
    cout: int
    kernel: int
    stride: int | tuple[int, int] = 1
    padding: int = 0
    residual: bool = False
    transpose: bool = False
    output_padding: int = 0


def _conv(cin: int, cout: int, kernel: int, stride: int | tuple[int, int] = 1, padding: int = 0) -> Layer:
    return Layer(cin, cout, kernel, stride, padding)


def _res(channels: int) -> Layer:
    """A 3x3, stride 1, same-size block whose input is added before the ReLU."""
    return Layer(channels, channels, 3, 1, 1, residual=True)


def _down(cin: int, cout: int, residuals: int) -> list[Layer]:
    """Halve the size (3x3, stride 2), then ``residuals`` residual blocks."""
    return [_conv(cin, cout, 3, 2, 1)] + [_res(cout)] * residuals


def _up(cin: int, cout: int, residuals: int) -> list[Layer]:
    """Double the size (3x3 transposed, stride 2, output padding 1), then ``residuals`` residual blocks."""
    return [Layer(cin, cout, 3, 2, 1, transpose=True, output_padding=1)] + [_res(cout)] * residuals


def face_encoder_layout(face_size: int) -> list[list[Layer]]:
    stages = [
        [_conv(6, 16, 7, 1, 3)],  # S
        _down(16, 32, 2),  # S/2
        _down(32, 64, 3),  # S/4
        _down(64, 128, 2),  # S/8
        _down(128, 256, 2),  # S/16
        _down(256, 512, 1),  # S/32: 3 (96), 8 (256)
    ]
    if face_size == 96:
        # 3x3 -> 1x1 with an unpadded 3x3 conv
        stages.append([_conv(512, 512, 3, 1, 0), _conv(512, 512, 1, 1, 0)])
    else:
        # 8 -> 4, then 4x4 -> 1x1 with an unpadded 4x4 conv
        stages.append(_down(512, 512, 1))
        stages.append([_conv(512, 512, 4, 1, 0), _conv(512, 512, 1, 1, 0)])
    return stages


def audio_encoder_layout() -> list[Layer]:
    return [
        _conv(1, 32, 3, 1, 1), _res(32), _res(32),  # 80x16
        _conv(32, 64, 3, (3, 1), 1), _res(64), _res(64),  # 27x16
        _conv(64, 128, 3, 3, 1), _res(128), _res(128),  # 9x6
        _conv(128, 256, 3, (3, 2), 1), _res(256),  # 3x3
        _conv(256, 512, 3, 1, 0),  # 1x1
        _conv(512, 512, 1, 1, 0),
    ]  # fmt: skip


def face_decoder_layout(face_size: int) -> list[list[Layer]]:
    stages = [[_conv(512, 512, 1, 1, 0)]]  # 1x1, then + the last encoder feature (512) -> 1024
    if face_size == 96:
        stages.append([Layer(1024, 512, 3, 1, 0, transpose=True), _res(512)])  # 3x3
    else:
        stages.append([Layer(1024, 512, 4, 1, 0, transpose=True), _res(512)])  # 4x4
        stages.append(_up(1024, 512, 1))  # 8
    stages += [
        _up(1024, 512, 2),  # 6 (96) / 16 (256), + 256 -> 768
        _up(768, 384, 2),  # + 128 -> 512
        _up(512, 256, 2),  # + 64 -> 320
        _up(320, 128, 2),  # + 32 -> 160
        _up(160, 64, 2),  # S, + 16 -> 80
    ]
    return stages


class ConvBlock(nn.Module):
    """``conv_block = Sequential(conv, BatchNorm2d)``, then ReLU; a residual block adds its input before the ReLU.

    Once :func:`fuse_cpu_blocks` has run (BatchNorm folded, CPU inference), the block is one oneDNN call with the
    residual add and the ReLU applied inside the convolution, instead of three passes over the activations.
    """

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        if layer.transpose:
            conv: nn.Module = nn.ConvTranspose2d(
                layer.cin, layer.cout, layer.kernel, layer.stride, layer.padding, layer.output_padding
            )
        else:
            conv = nn.Conv2d(layer.cin, layer.cout, layer.kernel, layer.stride, layer.padding)
        self.conv_block = nn.Sequential(conv, nn.BatchNorm2d(layer.cout))
        self.residual = layer.residual
        self.fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return _fused_block(self.conv_block[0], x, self.residual)
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return torch.relu_(out)


def _fused_block(conv: nn.Module, x: torch.Tensor, residual: bool) -> torch.Tensor:
    """conv (+ x) then ReLU as one oneDNN primitive (the post-ops torch's own CPU compiler emits)."""
    mkldnn = torch.ops.mkldnn
    x = x.to(conv.weight.dtype)  # what autocast does for a plain convolution; the fused op is not autocast-aware
    geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
    if isinstance(conv, nn.ConvTranspose2d):
        padding, stride, dilation, groups = geometry
        return mkldnn._convolution_transpose_pointwise(
            x, conv.weight, conv.bias, padding, list(conv.output_padding), stride, dilation, groups, "relu", [], ""
        )
    if residual:
        return mkldnn._convolution_pointwise.binary(x, x, conv.weight, conv.bias, *geometry, "add", 1.0, "relu", [], "")
    return mkldnn._convolution_pointwise(x, conv.weight, conv.bias, *geometry, "relu", [], "")


def fuse_cpu_blocks(model: nn.Module) -> bool:
    """Run every conv block (BatchNorm already folded) as one fused oneDNN call; inference on the CPU only.

    Returns whether the blocks were fused (torch built without oneDNN keeps the plain path)."""
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_convolution_pointwise"):
        return False
    blocks = [block for block in model.modules() if isinstance(block, ConvBlock)]
    if any(not isinstance(block.conv_block[1], nn.Identity) for block in blocks):
        raise ValueError("fuse_cpu_blocks needs the BatchNorms folded first (fold_batchnorm)")
    if any(block.residual and isinstance(block.conv_block[0], nn.ConvTranspose2d) for block in blocks):
        raise ValueError("a residual transposed block has no fused form")
    for block in blocks:
        block.fused = True
    return True


def _blocks(layers: Sequence[Layer]) -> nn.Sequential:
    return nn.Sequential(*(ConvBlock(layer) for layer in layers))


class Wav2Lip(nn.Module):
    """The Wav2Lip generator for ``face_size`` 96 (the original) or 256 (LiveTalking's variant).

    ``forward(audio, faces)``: ``audio (B, 1, 80, 16)`` mel windows and ``faces (B, 6, S, S)`` (channels 0-2 the
    target face with its lower half zeroed, 3-5 the reference face; BGR in [0, 1]) give ``(B, 3, S, S)`` in [0, 1].
    The time-axis forms ``audio (B, T, 1, 80, 16)`` and ``faces (B, 6, T, S, S)`` give ``(B, 3, T, S, S)``.
    """

    def __init__(self, face_size: int = 96) -> None:
        super().__init__()
        if face_size not in FACE_SIZES:
            raise ValueError(f"Wav2Lip face_size must be one of {FACE_SIZES}, got {face_size}")
        self.face_size = face_size
        self.variant = VARIANTS[face_size]
        self.face_encoder_blocks = nn.ModuleList(_blocks(stage) for stage in face_encoder_layout(face_size))
        self.audio_encoder = _blocks(audio_encoder_layout())
        self.face_decoder_blocks = nn.ModuleList(_blocks(stage) for stage in face_decoder_layout(face_size))
        self.output_block = nn.Sequential(
            ConvBlock(_conv(80, 32, 3, 1, 1)), nn.Conv2d(32, 3, kernel_size=1, stride=1, padding=0), nn.Sigmoid()
        )

    def forward(self, audio: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        if faces.dim() == 5:
            batch, _, steps = faces.shape[:3]
            if audio.dim() != 5 or tuple(audio.shape[:2]) != (batch, steps):
                raise ValueError(
                    f"with faces (B, 6, T, S, S) = {tuple(faces.shape)}, audio must be (B, T, 1, 80, 16); "
                    f"got {tuple(audio.shape)}"
                )
            # Fold T into the batch (row b * T + t), run, unfold.
            faces = faces.transpose(1, 2).reshape(batch * steps, *faces.shape[1:2], *faces.shape[3:])
            audio = audio.reshape(batch * steps, *audio.shape[2:])
            out = self._forward(audio, faces)
            return out.reshape(batch, steps, *out.shape[1:]).transpose(1, 2)
        return self._forward(audio, faces)

    def _forward(self, audio: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        x = self.audio_encoder(audio)
        features = []
        face = faces
        for stage in self.face_encoder_blocks:
            face = stage(face)
            features.append(face)
        for stage in self.face_decoder_blocks:
            x = torch.cat((stage(x), features.pop()), dim=1)
        return self.output_block(x)


def build_wav2lip(face_size: int) -> Wav2Lip:
    """A Wav2Lip generator with torch's default random initialisation (eval mode, CPU, fp32)."""
    return Wav2Lip(face_size).eval()


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every conv block's eval-mode BatchNorm into its convolution (inference only; changes the state dict).

    ``y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta`` is a convolution with scaled weights and a new bias, so
    each block then runs one convolution instead of a convolution and a normalisation pass.
    """
    for block in model.modules():
        if not isinstance(block, ConvBlock) or not isinstance(block.conv_block[1], nn.BatchNorm2d):
            continue
        conv, norm = block.conv_block[0], block.conv_block[1]
        with torch.no_grad():
            scale = norm.weight.double() / torch.sqrt(norm.running_var.double() + norm.eps)
            shift = norm.bias.double() - norm.running_mean.double() * scale
            # Conv2d weight is (out, in, k, k); ConvTranspose2d weight is (in, out, k, k).
            view = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
            conv.weight.copy_((conv.weight.double() * scale.reshape(view)).to(conv.weight.dtype))
            conv.bias.copy_((conv.bias.double() * scale + shift).to(conv.bias.dtype))
        block.conv_block[1] = nn.Identity()
    return model


class Wav2LipNetwork(LipSyncNetwork):
    """A loaded Wav2Lip generator on its backend, in the shape the avatar domain drives.

    ``prepare_frames`` keeps the crops (in BGR, the order the network was trained on); ``audio_features`` cuts the
    mel windows of the requested video frames out of an audio window; ``render`` builds the 6-channel input (masked
    crop + full crop), runs the batch under the backend's precision and returns RGB crops.

    It takes ownership of ``model``: the BatchNorms are folded into the convolutions, and the module is moved to the
    backend's device, dtype and memory format (and compiled on CUDA when allowed).
    """

    def __init__(
        self, model: Wav2Lip, *, backend: Any, dtype: str = "fp32", config: dict[str, Any] | None = None
    ) -> None:
        from omnirt.models.wav2lip.audio import audio_context_s
        from omnirt.runtime.precision import choose_precision

        config = dict(config or {})
        self.face_size = int(model.face_size)
        self.variant = str(model.variant)
        self.audio_context_s = audio_context_s()
        self.batch_cap = _batch_cap(config.get("batch_size"))
        self.backend = backend
        self.device = backend.device()
        self.precision = choose_precision(backend, dtype, requested=config.get("dtype"))
        self.model = self.precision.place(fold_batchnorm(model), self.device)
        self.weights = self.precision.weight_dtype
        if self.precision.device_type == "cpu" and self.precision.autocast_dtype == "bf16":
            # Autocast casts every convolution's weight and bias to bf16 on each call; with the norms folded away
            # the network is convolutions only, so casting once here gives the same numbers without the copies.
            self.model = self.model.to(torch.bfloat16)
            self.weights = "bf16"
        self.fused = self.precision.device_type == "cpu" and fuse_cpu_blocks(self.model)
        self.timeline: Any = None
        if backend.device_type == "cuda":
            from omnirt.runtime.compile import wrap_module

            self.timeline = wrap_module(self.model, "wav2lip", backend=backend, config=config)

    def prepare_frames(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        crops = np.asarray(crops)
        size = self.face_size
        if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
            raise ValueError(f"face crops must be uint8 (N, {size}, {size}, 3) RGB, got {crops.dtype} {crops.shape}")
        return {"faces": np.ascontiguousarray(crops[..., ::-1])}

    def audio_features(self, audio: np.ndarray, start_sample: int, frames: Sequence[int], fps: int) -> torch.Tensor:
        from omnirt.models.wav2lip.audio import frame_mels

        mels = frame_mels(audio, start_sample, frames, fps)  # (F, 80, 16)
        return torch.from_numpy(mels).unsqueeze(1).to(self.device)

    def render(self, features: Any, frame_inputs: dict[str, np.ndarray]) -> np.ndarray:
        faces = np.asarray(frame_inputs["faces"])
        mels = features if isinstance(features, torch.Tensor) else torch.as_tensor(np.asarray(features))
        if mels.dim() == 3:
            mels = mels.unsqueeze(1)
        if len(mels) != len(faces):
            raise ValueError(f"render got {len(mels)} mel windows for {len(faces)} faces")
        outputs = [
            self._render_batch(mels[start : start + self.batch_cap], faces[start : start + self.batch_cap])
            for start in range(0, len(faces), self.batch_cap)
        ]
        if not outputs:
            return np.zeros((0, self.face_size, self.face_size, 3), np.uint8)
        return np.concatenate(outputs) if len(outputs) > 1 else outputs[0]

    def _render_batch(self, mels: torch.Tensor, faces: np.ndarray) -> np.ndarray:
        half = self.face_size // 2
        with self.precision.running():
            crops = torch.from_numpy(np.ascontiguousarray(faces)).to(self.device, non_blocking=True)
            crops = crops.permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, S, S) BGR in [0, 1]
            masked = crops.clone()
            masked[:, :, half:] = 0.0
            inputs = self.precision.input(torch.cat((masked, crops), dim=1))
            audio = self.precision.input(mels.to(self.device, non_blocking=True))
            out = self.model(audio, inputs)
            pixels = out.float().mul_(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)
            # (B, 3, S, S) BGR -> (B, S, S, 3) RGB
            pixels = pixels.flip(1).permute(0, 2, 3, 1).contiguous().cpu()
        return pixels.numpy()

    def describe(self) -> dict[str, Any]:
        info = self.precision.describe()
        info.update(
            weights=self.weights,
            batchnorm="folded",
            fused_conv_relu=self.fused,
            face_size=self.face_size,
            variant=self.variant,
            batch_cap=self.batch_cap,
        )
        if self.timeline is not None:
            selected = [attempt.level for attempt in self.timeline.attempts if attempt.selected]
            info["compiled"] = selected == ["compile"]
        else:
            info["compiled"] = False
        return info


def _batch_cap(value: Any) -> int:
    if value is None:
        return 16
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        from omnirt.contracts.errors import RequestValidationError

        raise RequestValidationError(f"config.batch_size must be an integer >= 1, got {value!r}.")
    return value
