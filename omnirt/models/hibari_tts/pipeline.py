"""hibari-tts: a neural English voice (Kokoro-82M distilled, int8 ONNX) that ships inside the ``hibari-tts`` wheel.

Real speech, offline, on the CPU. It synthesises one sentence per model call, sentence by sentence as the text is
read (phonemes too, so a long text does not delay the first sentence). The wheel holds the ``heart`` voice; other
hibari voices download on first use, so only ``heart`` is offered.

Streaming (``config.stream``) is shaped for the first packet: the first sentence is said as a short leading phrase
and then the rest of it (:func:`leading_split`: at a clause mark in its first six words, else before a conjunction
or preposition there), so the first audio exists after a fraction of a sentence's synthesis. The parts are joined
without clicks: the model pads each call with digital silence, which is cut at the join (the cut falls where the
signal is below -60 dBFS and is faded over a few ms), leaving a pause like the model's own (a comma pause at a
clause, a word gap otherwise). The stream also starts :data:`LEAD_IN_MS` before the voice rather than after the
model's ~250 ms of leading padding.
Without ``stream`` the audio is exactly the model's, one segment per sentence.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from omnirt.contracts.errors import DependencyUnavailableError
from omnirt.models.contracts import speech_contract
from omnirt.models.speech import TextToSpeechPipeline
from omnirt.registry.registry import register_model

VOICES = ("heart",)

LEAD_MIN_WORDS = 3  # a leading phrase ending before a function word has at least this many words ...
LEAD_MAX_WORDS = 6  # ... and at most this many, as one ending at a clause mark (, ; : or a dash)
MIN_REST_WORDS = 3  # a sentence is split only if at least this many words follow the leading phrase
CLAUSE_MARKS = (",", ";", ":", "\u2014", "\u2013")  # the dashes: em, en
#: Words a phrase boundary comes before (conjunctions, prepositions, relatives): cutting there keeps the prosody of
#: both parts close to the sentence's own.
PHRASE_STARTS = frozenset(
    "and but or nor so because with without at in on for from by about into over under through "
    "that which who whom whose when where while if until before after since".split()
)
LEAD_IN_MS = 40  # silence kept before the voice at the start of a stream
CLAUSE_GAP_MS = 200  # silence kept after a leading phrase that ends at a clause mark (hibari's own: 100-450 ms)
WORD_GAP_MS = 30  # silence kept after a leading phrase that ends before a function word
FADE_MS = 5  # linear fade at a cut
QUIET = 1e-3  # -60 dBFS: below this the model's padding and decay are inaudible


def leading_split(sentence: str) -> tuple[str, str, int] | None:
    """(leading phrase, rest, pause in ms to keep between them) of a sentence, or None to say it whole.

    The phrase ends at the first clause mark within :data:`LEAD_MAX_WORDS` words, else before the first word of
    :data:`PHRASE_STARTS` between :data:`LEAD_MIN_WORDS` and :data:`LEAD_MAX_WORDS`; a sentence with neither (or too
    short to leave :data:`MIN_REST_WORDS` after it) is said whole."""
    words = sentence.split()
    last = min(LEAD_MAX_WORDS, len(words) - MIN_REST_WORDS)
    for end in range(1, last + 1):
        if words[end - 1].endswith(CLAUSE_MARKS):
            return " ".join(words[:end]), " ".join(words[end:]), CLAUSE_GAP_MS
    for end in range(LEAD_MIN_WORDS, last + 1):
        if words[end].lower().strip("\"'()[]") in PHRASE_STARTS:
            return " ".join(words[:end]), " ".join(words[end:]), WORD_GAP_MS
    return None


def trim_start(audio: Any, keep_ms: int, rate: int) -> Any:
    """``audio`` from ``keep_ms`` before its first audible sample, faded in over :data:`FADE_MS`."""
    import numpy as np

    loud = np.flatnonzero(np.abs(audio) > QUIET)
    if len(loud) == 0:
        return audio
    fade = max(1, rate * FADE_MS // 1000)
    start = max(0, int(loud[0]) - max(fade, rate * keep_ms // 1000))
    out = audio[start:].copy()
    out[:fade] *= np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)[: len(out[:fade])]
    return out


def trim_end(audio: Any, keep_ms: int, rate: int) -> Any:
    """``audio`` up to ``keep_ms`` after its last audible sample, faded out over :data:`FADE_MS`."""
    import numpy as np

    loud = np.flatnonzero(np.abs(audio) > QUIET)
    if len(loud) == 0:
        return audio
    fade = max(1, rate * FADE_MS // 1000)
    end = min(len(audio), int(loud[-1]) + 1 + max(fade, rate * keep_ms // 1000))
    out = audio[:end].copy()
    tail = out[-fade:]
    tail *= np.linspace(1.0, 0.0, len(tail), dtype=np.float32)
    return out


@register_model(
    id="hibari-tts",
    task="text2audio",
    weightless=True,
    resource_hint={"min_vram_gb": 0, "dtype": "fp32"},
    **speech_contract(
        "text2audio",
        defaults={"voice": "heart", "speed": 1.0},
        tier="core",
        maturity="beta",
        summary="hibari-tts: neural English voice in its wheel; streams from a short first phrase; CPU, offline.",
        example='curl -N localhost:8000/v1/text2audio/stream -d \'{"text": "Hello", "model": "hibari-tts"}\'',
        backend_status={"cpu": "supported"},
    ),
)
class HibariTTS(TextToSpeechPipeline):
    #: Say a stream's first sentence as a leading phrase and the rest (``omnirt bench tts --compare`` turns it off
    #: on the class to measure the old behaviour).
    leading_phrase: bool = True

    def __init__(self, *, spec: Any, backend: Any, dtype: str, **_: Any) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)
        try:
            from hibari import Hibari
        except ImportError as exc:
            raise DependencyUnavailableError("hibari-tts is not installed: pip install hibari-tts") from exc
        self.engine = Hibari(voice="heart", threads=1)
        self._rate = int(self.engine.sample_rate)
        # The first synthesis initialises the ONNX session's kernels: do it at load, not in a client's first packet.
        next(iter(self.engine.stream("Ready.")), None)

    @property
    def sample_rate(self) -> int:
        return self._rate

    def voices(self) -> tuple[str, ...]:
        return VOICES

    def phrases(self, text: str, shaped: bool) -> Iterator[tuple[str, int | None]]:
        """(phonemes, pause in ms to keep after them when the next part continues the sentence, else None), a
        sentence at a time (hibari cuts a very long one at clauses); with ``shaped`` the first sentence is said as
        :func:`leading_split` parts."""
        for index, sentence in enumerate(self.engine.split_sentences(text)):
            split = leading_split(sentence) if shaped and index == 0 else None
            parts = [(sentence, None)] if split is None else [(split[0], split[2]), (split[1], None)]
            for part, pause_ms in parts:
                chunks = self.engine.phonemize(part)
                for position, phonemes in enumerate(chunks):
                    yield phonemes, pause_ms if position == len(chunks) - 1 else None

    def synthesize(self, text: str, config: dict[str, Any], inputs: dict[str, Any]) -> Iterator[Any]:
        import numpy as np

        self.check_voice(config.get("voice") or VOICES[0])
        speed = float(config.get("speed") or 1.0)
        rng = np.random.default_rng(config.get("seed"))  # one generator for the request, as hibari's own stream
        shaped = bool(config.get("stream")) and self.leading_phrase
        continues = False  # this phrase continues the previous one's sentence
        for index, (phonemes, pause_ms) in enumerate(self.phrases(text, shaped)):
            audio = self.engine.from_ids(self.engine.ids(phonemes), speed, rng)
            if shaped and index == 0:
                audio = trim_start(audio, LEAD_IN_MS, self._rate)
            elif continues:
                audio = trim_start(audio, 0, self._rate)
            if pause_ms is not None:
                audio = trim_end(audio, pause_ms, self._rate)
            continues = pause_ms is not None
            if len(audio):
                yield audio
