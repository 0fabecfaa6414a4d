"""Face geometry for the avatar families: offline detection, crop boxes, and feathered paste-back.

Detection uses OpenCV's frontal-face Haar cascade, which ships inside ``opencv-python-headless``: no downloaded
weights, a few milliseconds on a downscaled copy of the frame. A caller that knows better (an unusual pose, a
cartoon) passes its own ``face_box`` instead.

The crop box is a square around the detected face, extended below the chin (Wav2Lip's upstream recipe pads 10 px
below; the Haar box ends near the lower lip on many faces, so the extension is relative to the box). The network
redraws the crop's lower half; the paste-back blends only a feathered ellipse over the mouth and jaw, so no seam or
box edge is visible and the eyes stay the photograph's own. Nothing here imports torch.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from omnirt.contracts.errors import DependencyUnavailableError

Box = tuple[int, int, int, int]  # x, y, width, height in pixels
DETECT_SIDE = 480  # frames are scaled so that their longer side is at most this before detection


def require_cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - a dependency of the runtime extra
        raise DependencyUnavailableError("opencv-python-headless is not installed (the runtime extra).") from exc
    return cv2


_local = threading.local()


@functools.lru_cache(maxsize=1)
def _cascade_path() -> str:
    cv2 = require_cv2()
    return cv2.data.haarcascades + "haarcascade_frontalface_default.xml"


def _cascade() -> Any:
    # CascadeClassifier is not safe to share between threads: one per thread.
    cascade = getattr(_local, "cascade", None)
    if cascade is None:
        cascade = _local.cascade = require_cv2().CascadeClassifier(_cascade_path())
    return cascade


def face_candidates(image: np.ndarray) -> list[Box]:
    """Every frontal face the detector finds in an RGB image, largest first (false positives included)."""
    cv2 = require_cv2()
    height, width = image.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(height, width))
    small = cv2.resize(
        image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
    )
    gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
    side = min(gray.shape[:2])
    faces = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(max(24, side // 10),) * 2)
    ordered = sorted(faces, key=lambda face: int(face[2]) * int(face[3]), reverse=True)
    return [(round(x / scale), round(y / scale), round(w / scale), round(h / scale)) for x, y, w, h in ordered]


def detect_face(image: np.ndarray) -> Box | None:
    """The largest frontal face in an RGB image, or None."""
    faces = face_candidates(image)
    return faces[0] if faces else None


CHIN_PAD = 0.12  # of the face box height, added below it
FEATHER = 0.12  # of the crop side: the width of the soft edge of the blend mask


def crop_box(face: Box, frame_width: int, frame_height: int) -> Box:
    """A square crop box around ``face`` (x, y, w, h), extended below the chin, clipped into the frame."""
    x, y, w, h = face
    bottom = y + h + round(h * CHIN_PAD)
    side = max(w, bottom - y)
    center_x = x + w / 2
    left = round(center_x - side / 2)
    top = bottom - side
    side = min(side, frame_width, frame_height)
    left = int(min(max(0, left), frame_width - side))
    top = int(min(max(0, top), frame_height - side))
    return left, top, int(side), int(side)


def cut(frame: np.ndarray, box: Box, size: int) -> np.ndarray:
    """The crop ``box`` of ``frame`` resized to ``size`` x ``size``."""
    cv2 = require_cv2()
    x, y, w, h = box
    patch = frame[y : y + h, x : x + w]
    interpolation = cv2.INTER_AREA if w > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)


@dataclass(frozen=True)
class BlendMask:
    """A feathered lower-face mask for crops of one side length, as float32 weights in [0, 1] (H, W, 1)."""

    side: int
    weights: np.ndarray

    @classmethod
    def for_side(cls, side: int) -> BlendMask:
        cv2 = require_cv2()
        mask = np.zeros((side, side), np.float32)
        center = (round(side * 0.5), round(side * 0.68))
        axes = (max(1, round(side * 0.34)), max(1, round(side * 0.26)))
        cv2.ellipse(mask, center, axes, 0, 0, 360, 1.0, -1)
        blur = max(3, int(side * FEATHER) | 1)
        mask = cv2.GaussianBlur(mask, (blur, blur), 0)
        return cls(side, mask[..., None])


def paste(frame: np.ndarray, face: np.ndarray, box: Box, mask: BlendMask) -> None:
    """Blend ``face`` (a square crop, any size) into ``frame`` at ``box`` in place, through ``mask``."""
    cv2 = require_cv2()
    x, y, w, h = box
    if face.shape[0] != w:
        face = cv2.resize(face, (w, h), interpolation=cv2.INTER_LINEAR if w > face.shape[0] else cv2.INTER_AREA)
    region = frame[y : y + h, x : x + w]
    blended = region.astype(np.float32) + (face.astype(np.float32) - region) * mask.weights
    frame[y : y + h, x : x + w] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
