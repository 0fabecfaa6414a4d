"""A stand-in for the FunASR library's SenseVoice surface (tests only; FunASR and its weights are not installable
here): ``AutoModel(model=..., device=...)`` and ``generate(input=..., language=..., use_itn=...)`` returning
``[{"key", "text"}]`` with SenseVoice's rich tags. It counts constructions so tests can check reuse."""

from __future__ import annotations

from typing import Any

constructed: list[dict[str, Any]] = []


class AutoModel:
    def __init__(self, **kwargs: Any) -> None:
        constructed.append(kwargs)
        self.kwargs = kwargs

    def generate(self, *, input: Any, language: str = "auto", use_itn: bool = True, **_: Any) -> list[dict[str, Any]]:
        seconds = len(input) / 16000
        return [{"key": "utt", "text": f"<|en|><|NEUTRAL|><|Speech|><|withitn|>heard {seconds:.1f} seconds."}]
