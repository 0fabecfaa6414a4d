"""Wav2Lip lip sync: ``wav2lip`` (96 px faces, Rudrabha/Wav2Lip) and ``wav2lip-256`` (LiveTalking's 256 px variant).

``network`` holds the generator and the :class:`~omnirt.avatars.lipsync.LipSyncNetwork` the avatar domain drives;
``audio`` the mel features; ``loading`` reads checkpoints; ``pipeline`` registers the two models; ``tiny`` writes
random-weight checkpoints in the published format. Importing this package imports neither torch nor numpy: the two
public helpers below import their modules when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.models.wav2lip import pipeline  # noqa: F401 - registers the family

__all__ = ["load_network", "mel_spectrogram"]


def load_network(path: str | Path) -> Any:
    """The Wav2Lip generator (a ``torch.nn.Module``) in a checkpoint file or a folder holding one.

    See :func:`omnirt.models.wav2lip.loading.load_network`.
    """
    from omnirt.models.wav2lip.loading import load_network as load

    return load(path)


def mel_spectrogram(samples: Any) -> Any:
    """Wav2Lip's ``(80, T)`` float32 mel spectrogram of 16 kHz float samples.

    See :func:`omnirt.models.wav2lip.audio.mel_spectrogram`.
    """
    from omnirt.models.wav2lip.audio import mel_spectrogram as compute

    return compute(samples)
