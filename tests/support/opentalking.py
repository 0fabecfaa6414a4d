"""OpenTalking's side of the speech contract, as the tests send it: its legacy TTS request body (tests only)."""

from __future__ import annotations

from typing import Any

OPENTALKING_TTS_BODY: dict[str, Any] = {  # OpenTalking's TTS request (§11 item 7), less the text
    "voice": "local-default",
    "model": "IndexTeam/IndexTTS-2",
    "sample_rate": 16000,
    "streaming": True,
    "streaming_mode": "token_window",
    "max_text_tokens_per_segment": 80,
    "quick_streaming_tokens": 4,
    "interval_silence_ms": 0,
    "token_window_size": 40,
    "token_window_hop": 96,
    "token_window_context": 8,
    "token_window_overlap_ms": 60,
    "emo_alpha": 0.6,  # IndexTTS-2 extras the route ignores
    "use_random": False,
}
