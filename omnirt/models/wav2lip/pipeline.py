"""The registered ``wav2lip`` (96 px) and ``wav2lip-256`` audio2video models: Wav2Lip through :class:`LipSyncPipeline`.

This module owns the two registry entries and the one thing the family adds to the lip-sync pipeline: loading the
generator from a checkpoint (:func:`omnirt.models.wav2lip.loading.load_network`), checking that the file's layout is
the one the model id names, and wrapping it as a :class:`~omnirt.models.wav2lip.network.Wav2LipNetwork`. torch is
imported only when the model loads, so the registry can import this module in an API process without it.

The weights are not on the Hugging Face hub under an official id (upstream links a Google Drive folder; mirrors are
unofficial), so no ``hub_id`` is registered: put ``wav2lip_gan.pth`` / ``wav2lip.pth`` in ``<models dir>/wav2lip``
(or ``wav2lip-256``), or name the file or its folder in ``config.model_path``.
"""

from __future__ import annotations

from typing import Any

from omnirt.avatars.lipsync import LipSyncNetwork
from omnirt.contracts.errors import WeightsInvalidError
from omnirt.models.lipsync import LIPSYNC_CAPABILITIES, LipSyncPipeline, prepare_entry
from omnirt.registry.registry import register_model
from omnirt.runtime.backends import Backend

#: Face size each registered id expects of its checkpoint.
FACE_SIZE_BY_MODEL = {"wav2lip": 96, "wav2lip-256": 256}

COMMON: dict[str, Any] = {
    **LIPSYNC_CAPABILITIES,
    "hub_id": None,
    # The markers let a models-dir folder holding only the published checkpoint be found (there is no config.json).
    "resource_hint": {"min_vram_gb": 1, "weights_markers": ("wav2lip_gan.pth", "wav2lip.pth")},
    "default_config": {"fps": 25, "width": 416, "height": 704, "slice_len": 28, "batch_size": 16},
}


@register_model(
    id="wav2lip-256",
    summary="Prepare a stored avatar for wav2lip-256 sessions (256 px face crops), with progress.",
    **prepare_entry(COMMON),
)
@register_model(
    id="wav2lip",
    summary="Prepare a stored avatar for wav2lip sessions (96 px face crops), with progress.",
    **prepare_entry(COMMON),
)
@register_model(
    id="wav2lip-256",
    summary=(
        "Wav2Lip at 256 px (LiveTalking's variant, 53.6M parameters): mouth redrawn from the audio, realtime on a "
        "GPU. Weights of unclear provenance; like the original, assume non-commercial use only."
    ),
    **COMMON,
)
@register_model(
    id="wav2lip",
    summary=(
        "Wav2Lip (96 px face, 36.3M parameters): one forward pass per frame redraws the mouth from the audio; "
        "realtime on one CPU core in bf16. Weights trained on LRS2: non-commercial use only."
    ),
    example="omnirt generate --task audio2video --model wav2lip --audio speech.wav --image face.png",
    **COMMON,
)
class Wav2LipPipeline(LipSyncPipeline):
    """Wav2Lip: the avatar domain drives its :class:`~omnirt.models.wav2lip.network.Wav2LipNetwork`."""

    def load_network(self, location: str, *, backend: Backend, dtype: str, config: dict[str, Any]) -> LipSyncNetwork:
        from omnirt.models.wav2lip.loading import find_checkpoint, load_network
        from omnirt.models.wav2lip.network import Wav2LipNetwork

        model_id = self.spec.canonical_id
        expected = FACE_SIZE_BY_MODEL.get(model_id, 96)
        model = load_network(location)
        if model.face_size != expected:
            other = next(name for name, size in FACE_SIZE_BY_MODEL.items() if size == model.face_size)
            raise WeightsInvalidError(
                f"{find_checkpoint(location)} holds the Wav2Lip {model.face_size} px layout, but '{model_id}' is the "
                f"{expected} px model; load it as '{other}'.",
                details={"model": model_id, "location": location, "face_size": model.face_size},
            )
        network = Wav2LipNetwork(model, backend=backend, dtype=dtype, config=config)
        if network.timeline is not None:
            self.backend_timeline.append(network.timeline)
        self.device_placement = {"wav2lip": str(network.device)}
        return network
