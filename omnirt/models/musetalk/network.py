"""``MuseTalkNetwork``: MuseTalk 1.5 as a :class:`~omnirt.avatars.lipsync.LipSyncNetwork`.

This module owns running the three loaded components (see :mod:`omnirt.models.musetalk.components`) for the avatar
domain:

* ``prepare_frames``: each 256x256 face crop is encoded twice by the VAE, once with its lower half blacked out and
  once whole, and the two 4x32x32 latents are concatenated (masked first): ``(N, 8, 32, 32)`` float16, stored with
  the prepared avatar.
* ``audio_features``: the Whisper encoder over the window of audio the caller gives, each requested frame's
  10-step window (:mod:`omnirt.models.musetalk.audio`), plus the positional encoding: ``(n, 50, d)``.
* ``render``: one UNet call at timestep 0 (MuseTalk inpaints in a single step; there is no sampler), then the VAE
  decoder: ``(B, 256, 256, 3)`` uint8 RGB.

Precision comes from :func:`~omnirt.runtime.precision.choose_precision` (fp32 weights with bf16 autocast on a CPU
with native bf16, fp16 or bf16 weights on accelerators); on CUDA the UNet goes through ``wrap_module`` (compiled
when allowed, eager otherwise).

Audio context. Frame ``i``'s window spans 80 ms before its time and 120 ms after it. The Whisper encoder's own
receptive field is short in its front end (a 25 ms STFT and two 3-tap convolutions, about 60 ms) but its attention
is global over 30 s, so more audio on the left gives states closer to upstream's whole-file encoding. The network
asks for 1.0 s on the left (80 ms of window, 920 ms of attention context) and 0.2 s on the right (120 ms of window,
80 ms for the STFT and convolutions): the right context is the latency floor, so it stays small.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from omnirt.avatars.lipsync import LipSyncNetwork
from omnirt.models.musetalk.audio import (
    LEAD_STEPS,
    SAMPLES_PER_STEP,
    TOKENS,
    encoder_states,
    frame_step,
    positional_encoding,
    select_windows,
)
from omnirt.runtime.backends import Backend
from omnirt.runtime.precision import Precision, choose_precision

FACE_SIZE = 256
LATENT_SIZE = FACE_SIZE // 8
LATENT_CHANNELS = 8
#: The VAE latent scale MuseTalk's UNet was trained with (sd-vae-ft-mse's scaling factor).
LATENT_SCALE = 0.18215
DEFAULT_BATCH = 8


class _EmptyFp32ModulesFilter(logging.Filter):
    """Drop diffusers' notice that a model cast with ``.to(dtype)`` has modules to keep in fp32, when it has none.

    diffusers 0.42 logs it on every ``ModelMixin.to`` with a dtype, even when the list is empty (the UNet and the
    VAE here); placing the components in their precision is exactly such a cast.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "should be kept in float32: []" not in record.getMessage()


def quiet_empty_fp32_notices() -> None:
    modeling_logger = logging.getLogger("diffusers.models.modeling_utils")
    if not any(isinstance(existing, _EmptyFp32ModulesFilter) for existing in modeling_logger.filters):
        modeling_logger.addFilter(_EmptyFp32ModulesFilter())


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor sharing ``array``'s memory when it can (copied when read-only, e.g. from an npz)."""
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)


class MuseTalkNetwork(LipSyncNetwork):
    """MuseTalk's UNet, VAE and Whisper encoder on one device, in the precision the backend runs best."""

    face_size = FACE_SIZE
    audio_context_s = (1.0, 0.2)

    def __init__(
        self,
        unet: Any,
        vae: Any,
        whisper_encoder: Any,
        feature_extractor: Any,
        *,
        backend: Backend,
        dtype: str,
        config: dict[str, Any] | None = None,
    ) -> None:
        config = dict(config or {})
        batch = config.get("batch_size", DEFAULT_BATCH)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            from omnirt.contracts.errors import RequestValidationError

            raise RequestValidationError(f"config.batch_size must be an integer >= 1, got {batch!r}.")
        self.batch_cap = batch
        self.precision: Precision = choose_precision(backend, dtype, requested=config.get("dtype"))
        self.device = backend.device()
        quiet_empty_fp32_notices()
        self.unet = self.precision.place(unet, self.device)
        self.vae = self.precision.place(vae, self.device)
        self.whisper_encoder = self.precision.place(whisper_encoder, self.device)
        self.feature_extractor = feature_extractor
        self.width = int(whisper_encoder.config.d_model)
        self.timestep = torch.zeros((), dtype=torch.long, device=self.device)
        self.unet_timeline: Any = None
        if backend.device_type == "cuda":
            from omnirt.runtime.compile import wrap_module

            self.unet_timeline = wrap_module(self.unet, "unet", backend=backend, config=config)

    @property
    def feature_dtype(self) -> torch.dtype:
        """The dtype ``audio_features`` returns: the weights' dtype."""
        return next(self.unet.parameters()).dtype

    def prepare_frames(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (FACE_SIZE, FACE_SIZE, 3) or crops.dtype != np.uint8:
            raise ValueError(
                f"MuseTalk reads uint8 RGB face crops of shape (N, {FACE_SIZE}, {FACE_SIZE}, 3); "
                f"got {crops.dtype} {crops.shape}"
            )
        parts: list[np.ndarray] = []
        with self.precision.running():
            for first in range(0, len(crops), self.batch_cap):
                pixels = _tensor(crops[first : first + self.batch_cap]).to(self.device)
                pixels = pixels.permute(0, 3, 1, 2).float() / 255.0
                # Upstream blacks out the lower half before normalising (pixels * mask, then (x - 0.5) / 0.5), so
                # the masked rows are -1 in the VAE's [-1, 1] input, not 0.
                masked = pixels.clone()
                masked[:, :, FACE_SIZE // 2 :, :] = 0.0
                images = torch.cat([masked, pixels]) * 2.0 - 1.0
                # The posterior's mean (``mode()``), not upstream's random ``sample()``: the cached latents of an
                # avatar are then the same on every preparation and on every worker.
                latents = self.vae.encode(self.precision.input(images)).latent_dist.mode() * LATENT_SCALE
                masked_latents, reference_latents = latents.float().chunk(2)
                both = torch.cat([masked_latents, reference_latents], dim=1)
                parts.append(both.to(torch.float16).cpu().numpy())
        if not parts:
            return {"latents": np.zeros((0, LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE), np.float16)}
        return {"latents": np.concatenate(parts)}

    def audio_features(self, audio: np.ndarray, start_sample: int, frames: Sequence[int], fps: int) -> torch.Tensor:
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        start_sample = int(start_sample)
        if start_sample < 0:
            # Samples before the stream's start are silence; upstream's states there are zero padding, and its
            # encoder sees the audio from sample 0. Do the same.
            skip, first_sample = -start_sample, 0
        else:
            # Step k of the window must be an absolute step (centred on sample 320 k): drop under 20 ms of the
            # left context to land on the grid.
            skip = -start_sample % SAMPLES_PER_STEP
            first_sample = start_sample + skip
        samples = samples[skip:]
        starts = [frame_step(int(frame), fps) - LEAD_STEPS for frame in frames]
        with self.precision.running():
            if not starts:
                return torch.zeros((0, TOKENS, self.width), dtype=self.feature_dtype, device=self.device)
            states = encoder_states(samples, self.whisper_encoder, self.feature_extractor)
            windows = select_windows(states, first_sample // SAMPLES_PER_STEP, starts)
            return positional_encoding(windows).to(device=self.device, dtype=self.feature_dtype)

    def render(self, features: Any, frame_inputs: dict[str, np.ndarray]) -> np.ndarray:
        latents = np.asarray(frame_inputs["latents"])
        if latents.ndim != 4 or latents.shape[1:] != (LATENT_CHANNELS, LATENT_SIZE, LATENT_SIZE):
            raise ValueError(
                f"MuseTalk renders from latents of shape (B, {LATENT_CHANNELS}, {LATENT_SIZE}, {LATENT_SIZE}); "
                f"got {latents.shape}"
            )
        features = torch.as_tensor(features)
        if features.shape != (len(latents), TOKENS, self.width):
            raise ValueError(
                f"features must be ({len(latents)}, {TOKENS}, {self.width}) for {len(latents)} latents; "
                f"got {tuple(features.shape)}"
            )
        faces: list[np.ndarray] = []
        with self.precision.running():
            for first in range(0, len(latents), self.batch_cap):
                batch = self.precision.input(_tensor(latents[first : first + self.batch_cap]).to(self.device))
                condition = features[first : first + self.batch_cap].to(self.device, dtype=self.feature_dtype)
                predicted = self.unet(batch, self.timestep, encoder_hidden_states=condition).sample
                image = self.vae.decode(self.precision.input(predicted / LATENT_SCALE)).sample
                pixels = ((image.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
                faces.append(pixels.permute(0, 2, 3, 1).cpu().numpy())
        if not faces:
            return np.zeros((0, FACE_SIZE, FACE_SIZE, 3), np.uint8)
        return np.concatenate(faces)

    def describe(self) -> dict[str, Any]:
        compiled: bool | str = False
        if self.unet_timeline is not None:
            selected = [attempt for attempt in self.unet_timeline.attempts if attempt.selected]
            if selected and selected[0].level == "compile":
                compiled = "pending" if selected[0].reason == "pending first call" else True
        info: dict[str, Any] = {**self.precision.describe(), "compiled": compiled, "batch_cap": self.batch_cap}
        if self.unet_timeline is not None:
            info["unet_timeline"] = self.unet_timeline.to_dict()
        return info
