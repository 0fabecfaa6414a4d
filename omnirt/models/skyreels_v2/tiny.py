"""Tiny random-weight SkyReels-V2 checkpoint (`skyreels-v2`) for `omnirt make-tiny`.

The folder has the layout of ``Skywork/SkyReels-V2-T2V-14B-540P-Diffusers``: a ``SkyReelsV2Pipeline`` with a UMT5
text encoder, the Wan VAE, the SkyReels-V2 transformer and UniPC with flow sigmas. The architecture is Wan 2.1's, so
the tiny components take their sizes from :mod:`omnirt.models.wan.tiny`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.tiny_common import build_seeded_tiny
from omnirt.models.wan import tiny as wan_tiny

MODEL_IDS = ("skyreels-v2",)

# The real repository ships UniPC with flow sigmas and a shift of 8.
SCHEDULER: dict[str, Any] = {**wan_tiny.SCHEDULER, "flow_shift": 8.0}

DEFAULT_CONFIG: dict[str, Any] = dict(wan_tiny.DEFAULT_CONFIG)


def _build_pipeline() -> Any:
    from diffusers import AutoencoderKLWan, SkyReelsV2Pipeline, SkyReelsV2Transformer3DModel, UniPCMultistepScheduler
    from transformers import UMT5Config, UMT5EncoderModel

    from omnirt.models.tiny_tokenizers import t5_tokenizer

    return SkyReelsV2Pipeline(
        tokenizer=t5_tokenizer(),
        text_encoder=UMT5EncoderModel(UMT5Config(**wan_tiny.TEXT_ENCODER)).eval(),
        vae=AutoencoderKLWan(**wan_tiny.VAE),
        transformer=SkyReelsV2Transformer3DModel(**wan_tiny.TRANSFORMER_T2V),
        scheduler=UniPCMultistepScheduler(**SCHEDULER),
    )


def build_tiny(model_id: str, target: Path) -> Path:
    """Write a tiny random-weight copy of the SkyReels-V2 checkpoint ``model_id`` into ``target``."""
    builders = dict.fromkeys(MODEL_IDS, _build_pipeline)
    return build_seeded_tiny(model_id, target, family="SkyReels-V2", builders=builders, default_config=DEFAULT_CONFIG)
