"""SenseVoice through FunASR builds its model once per worker and reuses it (FunASR is an optional extra; its
library surface is stood in for by tests/support/fake_funasr, since neither it nor its weights install here)."""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from omnirt.contracts.types import GenerateRequest
from omnirt.workers.engine import Engine


def test_sensevoice_model_is_built_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "support" / "fake_funasr"))
    for name in [module for module in sys.modules if module.startswith("funasr")]:
        monkeypatch.delitem(sys.modules, name)
    import funasr

    weights = tmp_path / "models" / "sensevoice-small"
    weights.mkdir(parents=True)
    (weights / "config.json").write_text("{}")
    audio = tmp_path / "a.wav"
    with wave.open(str(audio), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes((np.sin(np.arange(32000) / 10) * 8000).astype("<i2").tobytes())
    engine = Engine(models_dir=tmp_path / "models", output_dir=tmp_path / "out")
    request = GenerateRequest(task="audio2text", model="sensevoice-small", backend="cpu", inputs={"audio": str(audio)})
    texts = [Path(engine.run(request).outputs[0].path).read_text().strip() for _ in range(3)]
    assert texts == ["heard 2.0 seconds."] * 3  # tags removed by rich_transcription_postprocess
    assert len(funasr.constructed) == 1 and funasr.constructed[0]["model"] == str(weights.resolve())
    assert funasr.constructed[0]["device"] == "cpu"
    bad = GenerateRequest(
        task="audio2text",
        model="sensevoice-small",
        backend="cpu",
        inputs={"audio": str(audio)},
        config={"language": "fr"},
    )
    with pytest.raises(Exception, match="sensevoice-small languages"):
        engine.run(bad)
