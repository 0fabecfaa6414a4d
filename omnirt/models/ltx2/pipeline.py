"""LTX-2: image2video, with the soundtrack it generates.

LTX-2 denoises a video latent and an audio latent together; the ``audio_vae`` and ``vocoder`` turn the latter into a
stereo waveform. OmniRT muxes it, mixed down to mono, into the MP4 as AAC. The frame rate reaches the pipeline as
``frame_rate``: it conditions the model and sets the audio's length.
"""

from __future__ import annotations

from typing import Any

from omnirt.contracts.types import Artifact
from omnirt.models.base import RunContext
from omnirt.models.contracts import diffusion_contract
from omnirt.models.diffusers_pipeline import DiffusersPipeline
from omnirt.registry.registry import register_model
from omnirt.runtime.export import write_mp4


@register_model(
    id="ltx2-i2v",
    task="image2video",
    hub_id="Lightricks/LTX-2",
    resource_hint={"min_vram_gb": 48, "dtype": "bf16"},
    **diffusion_contract(
        "image2video",
        defaults={
            "width": 768,
            "height": 512,
            "num_frames": 121,
            "fps": 24,
            "num_inference_steps": 30,
            "guidance_scale": 3.0,
            "max_sequence_length": 1024,
        },
        extra_config=("max_sequence_length",),
        require_prompt=True,
        tier="experimental",
        maturity="beta",
        summary="LTX-2 image to video, with its generated soundtrack.",
    ),
)
class LTX2ImageToVideoFamily(DiffusersPipeline):
    pipeline_classes = {"image2video": "LTX2ImageToVideoPipeline"}
    config_arguments = {"fps": "frame_rate"}
    output_kind = "video"

    def decode(self, ctx: RunContext, raw: Any) -> dict[str, Any]:
        frames = super().decode(ctx, raw)
        audio = getattr(raw, "audio", None)
        # (batch, channels, samples) -> the first video's channels mixed down to mono
        mono = None if audio is None else audio[0].float().mean(dim=0).cpu().numpy()
        return {"frames": frames, "audio": mono}

    def export(self, ctx: RunContext, decoded: dict[str, Any]) -> list[Artifact]:
        stem = self.spec.id.replace("/", "_")
        fps = float(ctx.config.get("fps") or 24)
        sample_rate = self.pipe.vocoder.config.output_sampling_rate
        return [
            write_mp4(
                decoded["frames"],
                ctx.output_dir / f"{stem}.mp4",
                fps=fps,
                audio=decoded["audio"],
                sample_rate=sample_rate,
            )
        ]
