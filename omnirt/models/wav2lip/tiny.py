"""Random-weight Wav2Lip checkpoints in the published file format, for `omnirt make-tiny` and the tests.

This module owns :func:`build_tiny`. Wav2Lip is small enough to keep at its real size, so the "tiny" copy is the real
network (96 px for ``wav2lip``, 256 px for ``wav2lip-256``) with seeded random weights, saved exactly as upstream
publishes it: ``wav2lip.pth`` = ``torch.save({"state_dict": {"module." + name: tensor}, "optimizer": {},
"global_step": 0, "global_epoch": 0})``, beside ``omnirt.json``.

torch's default initialisation alone gives a nearly flat grey output (every pixel within a few levels of 0.5), so the
builder calibrates: one pass over random faces and mel windows sets each BatchNorm's running statistics to the
statistics it sees, and scales the last convolution so that its output, before the sigmoid, has zero mean and unit
variance. The result is a face-sized image with real variation that changes with the audio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.tiny_common import seed_everything
from omnirt.runtime.weights import write_folder_defaults

FACE_SIZE_BY_MODEL = {"wav2lip": 96, "wav2lip-256": 256}
CHECKPOINT_NAME = "wav2lip.pth"
CALIBRATION_BATCH = {96: 4, 256: 2}


def calibrate(model: Any, face_size: int) -> Any:
    """Set BatchNorm running statistics and the output scale from one pass over random inputs (see module doc)."""
    import torch

    norms = [module for module in model.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.momentum = None  # cumulative average: after one batch, the running stats are that batch's stats
    captured: dict[str, torch.Tensor] = {}
    last = model.output_block[1]
    hook = last.register_forward_hook(lambda _module, _inputs, output: captured.setdefault("logits", output))
    batch = CALIBRATION_BATCH[face_size]
    model.train()
    try:
        with torch.no_grad():
            model(torch.randn(batch, 1, 80, 16), torch.rand(batch, 6, face_size, face_size))
    finally:
        hook.remove()
        model.eval()
        for norm in norms:
            norm.momentum = 0.1
    logits = captured["logits"]
    with torch.no_grad():
        mean = logits.mean(dim=(0, 2, 3))
        std = logits.std(dim=(0, 2, 3)).clamp_min(1e-6)
        last.weight.div_(std.reshape(-1, 1, 1, 1))
        last.bias.sub_(mean).div_(std)
    return model


def build_tiny(model_id: str, target: Path) -> Path:
    """Write the real-size ``model_id`` network with seeded random weights into ``target``, in upstream's format."""
    import torch

    from omnirt.models.wav2lip.network import build_wav2lip

    if model_id not in FACE_SIZE_BY_MODEL:
        raise ValueError(f"no tiny Wav2Lip for '{model_id}'; one of {', '.join(FACE_SIZE_BY_MODEL)}")
    face_size = FACE_SIZE_BY_MODEL[model_id]
    seed_everything(0)
    model = calibrate(build_wav2lip(face_size), face_size)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    state_dict = {f"module.{name}": tensor.detach().clone() for name, tensor in model.state_dict().items()}
    torch.save(
        {"state_dict": state_dict, "optimizer": {}, "global_step": 0, "global_epoch": 0},
        target / CHECKPOINT_NAME,
    )
    write_folder_defaults(target, model_id=model_id, default_config={}, tiny=True)
    return target
