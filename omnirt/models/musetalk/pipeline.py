"""The registered ``musetalk-1.5`` audio2video model: MuseTalk 1.5 through :class:`LipSyncPipeline`.

This module owns the registry entry and the one thing the family adds to the lip-sync pipeline: loading
:class:`~omnirt.models.musetalk.network.MuseTalkNetwork` from a weights folder in upstream's ``models/`` layout
(see :mod:`omnirt.models.musetalk.components`). torch, diffusers and transformers are imported only when the model
loads, so the registry can import this module in an API process without them.
"""

from __future__ import annotations

from typing import Any

from omnirt.avatars.lipsync import LipSyncNetwork
from omnirt.models.lipsync import LIPSYNC_CAPABILITIES, LipSyncPipeline, prepare_entry
from omnirt.registry.registry import register_model
from omnirt.runtime.backends import Backend

COMMON: dict[str, Any] = {
    "id": "musetalk-1.5",
    "hub_id": "TMElyralab/MuseTalk",
    # The markers let a models-dir folder in upstream's layout (which has no config.json at its top) be found.
    "resource_hint": {"min_vram_gb": 4, "weights_markers": ("musetalkV15", "musetalk")},
    "default_config": {"fps": 25, "width": 416, "height": 704, "slice_len": 28, "batch_size": 8},
}


@register_model(
    **prepare_entry(COMMON),
    summary="Prepare a stored avatar for musetalk-1.5 sessions (its masked and reference VAE latents), with progress.",
)
@register_model(
    **{**COMMON, **LIPSYNC_CAPABILITIES},
    summary=(
        "MuseTalk 1.5: single-step latent inpainting of the mouth (SD VAE + UNet + whisper-tiny audio); realtime "
        "on a GPU. Code MIT; the weights allow commercial use."
    ),
)
class MuseTalkPipeline(LipSyncPipeline):
    """MuseTalk 1.5: the avatar domain drives its :class:`MuseTalkNetwork`."""

    def load_network(self, location: str, *, backend: Backend, dtype: str, config: dict[str, Any]) -> LipSyncNetwork:
        from omnirt.models.musetalk.components import load_components
        from omnirt.models.musetalk.network import MuseTalkNetwork

        unet, vae, whisper_encoder, feature_extractor = load_components(location)
        return MuseTalkNetwork(
            unet, vae, whisper_encoder, feature_extractor, backend=backend, dtype=dtype, config=config
        )
