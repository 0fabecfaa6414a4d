"""The reference avatar: a real portrait whose mouth opens and closes with the speech, on any CPU.

No learned lip-sync model ships in a package, so this one is drawn: OpenCV's Haar cascade (bundled with
opencv-python-headless 4.x) finds the face, the mouth sits at a fixed place in the face box, and each frame's mouth
opening follows the loudness of that frame's slice of audio (with a quick attack and a slower release, as a jaw
moves). The portrait is the user's ``ref_image``, or scikit-image's bundled astronaut photograph. It renders exactly
``slice_len`` JPEG frames per chunk at the session's size.

It is the embedded default avatar. It answers its own name only; an operator may map another name to it in the
alias map, and discovery then says so.
"""

from __future__ import annotations

import threading
from typing import Any

from omnirt.avatars.face import require_cv2
from omnirt.avatars.session import fit_frame
from omnirt.avatars.store import default_portrait
from omnirt.contracts.errors import RequestValidationError
from omnirt.models.avatar import AvatarPipeline, AvatarSession, SessionSpec
from omnirt.registry.registry import register_model

SILENCE_DB = -45.0
FULL_DB = -12.0
ATTACK = 0.7
RELEASE = 0.35


def decode_portrait(image: bytes) -> Any:
    import numpy as np

    cv2 = require_cv2()
    decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise RequestValidationError("ref_image is not a readable PNG or JPEG image.")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def find_face(image: Any) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the largest face, or a centred guess when none is found."""
    cv2 = require_cv2()
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    side = min(image.shape[:2])
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(side // 8, side // 8))
    if len(faces):
        x, y, w, h = max(faces, key=lambda face: face[2] * face[3])
        return int(x), int(y), int(w), int(h)
    w = side // 2
    return (image.shape[1] - w) // 2, image.shape[0] // 4, w, w


class ReferenceAvatarSession(AvatarSession):
    def __init__(self, spec: SessionSpec, portrait: Any) -> None:
        self.spec = spec
        self.base = fit_frame(portrait, spec.width, spec.height)[0]
        x, y, w, h = find_face(self.base)
        self.center = (x + w // 2, y + int(h * 0.8))
        self.half_width = max(4, int(w * 0.2))
        self.max_open = max(3, int(h * 0.12))
        cv2 = require_cv2()
        patch = self.base[y + int(h * 0.75) : y + int(h * 0.85), x + w // 3 : x + 2 * w // 3]
        tone = patch.reshape(-1, 3).mean(axis=0) if patch.size else (150, 100, 90)
        self.lip = tuple(int(value * 0.6) for value in tone)
        self.mouth = (40, 15, 20)
        self.openness = 0.0
        self.mouth_gain = float(spec.config.get("mouth_open_multiplier", 1.0))
        self._encode = lambda frame: cv2.imencode(
            ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality]
        )[1].tobytes()

    def update(self, config: dict[str, Any]) -> dict[str, Any]:
        if "mouth_open_multiplier" in config:
            self.mouth_gain = float(config["mouth_open_multiplier"])
            return {"mouth_open_multiplier": self.mouth_gain}
        return {}

    def levels(self, pcm: Any) -> list[float]:
        """Target mouth opening in [0, 1] for each frame's slice of the chunk."""
        import numpy as np

        samples = pcm.astype(np.float32) / 32768.0
        frames = self.spec.slice_len
        per_frame = max(1, len(samples) // frames)
        targets = []
        for index in range(frames):
            window = samples[index * per_frame : (index + 1) * per_frame]
            rms = float(np.sqrt(np.mean(window * window))) if len(window) else 0.0
            decibels = 20 * np.log10(max(rms, 1e-6))
            targets.append(float(np.clip((decibels - SILENCE_DB) / (FULL_DB - SILENCE_DB), 0.0, 1.0)))
        return targets

    def render(self, pcm: Any) -> list[bytes]:
        cv2 = require_cv2()
        frames = []
        for target in self.levels(pcm):
            rate = ATTACK if target > self.openness else RELEASE
            self.openness += (target - self.openness) * rate
            frame = self.base.copy()
            opening = int(self.max_open * min(1.0, self.openness * self.mouth_gain))
            axes = (self.half_width, max(1, opening))
            if opening > 1:
                cv2.ellipse(frame, self.center, axes, 0, 0, 360, self.mouth, -1, cv2.LINE_AA)
            cv2.ellipse(
                frame,
                self.center,
                (self.half_width, max(2, opening)),
                0,
                0,
                360,
                self.lip,
                max(2, self.half_width // 6),
                cv2.LINE_AA,
            )
            frames.append(self._encode(frame))
        return frames


@register_model(
    id="reference-avatar",
    task="audio2video",
    weightless=True,
    resource_hint={"min_vram_gb": 0},
    required_inputs=("audio",),
    optional_inputs=("image", "prompt"),
    supported_config=("fps", "width", "height", "slice_len", "seed", "output_dir"),
    default_config={"fps": 25, "width": 416, "height": 704, "slice_len": 28},
    artifact_kind="video",
    tier="core",
    maturity="beta",
    realtime=True,
    streaming=True,
    service_adapter="realtime-avatar.ws.v1",
    backend_status={"cpu": "supported", "cuda": "supported", "ascend": "supported"},
    summary="Reference avatar: a real portrait with audio-driven mouth motion; CPU, offline; the embedded default.",
)
class ReferenceAvatar(AvatarPipeline):
    def __init__(self, *, spec: Any, backend: Any, dtype: str, **_: Any) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)
        require_cv2()
        self._portrait: Any = None
        self._lock = threading.Lock()

    def portrait(self) -> Any:
        with self._lock:
            if self._portrait is None:
                self._portrait = default_portrait()
            return self._portrait

    def open_session(self, spec: SessionSpec, image: bytes | None, avatars: Any = None) -> AvatarSession:
        portrait = decode_portrait(image) if image else self.portrait()
        return ReferenceAvatarSession(spec, portrait)
