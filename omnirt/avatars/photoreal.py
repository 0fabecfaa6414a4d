"""A photoreal talking photo without weights: the portrait itself is warped, frame by frame, by the audio.

Preparation (once per portrait and session size): the Haar face box, the 468-point MediaPipe mesh
(:mod:`omnirt.avatars.landmarks`), and from its points a warp basis over a region of interest around the head: the
lip line between the inner lip contours, the jaw's reach (the whole lower face, fading out below the chin and toward
the ears), the lip corners, the upper eyelids, and a soft head mask for the sway. Everything outside that region is
the photograph's own pixels, untouched.

Per frame, from that frame's 40 ms of 16 kHz audio (plus 24 ms of context before it): the mouth opens with the
loudness (RMS in dB, with a quick onset and a slower decay) and widens or rounds with the spectral centroid (bright
sounds spread the lips, dark ones round them). The lower face slides down below the lip line by the opening; the
band that opens between the lips is the photo's own pixels at the lip line, stretched and darkened (the inner
mouth). Blinks every few seconds and a slow head sway keep it alive when silent. One ``cv2.remap`` of the region
per frame, then JPEG.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from omnirt.avatars.errors import NoFaceDetectedError
from omnirt.avatars.face import face_candidates, require_cv2
from omnirt.avatars.landmarks import FACE_SCORE, face_mesh
from omnirt.avatars.media import AvatarSession, SessionSpec

SILENCE_DB = -40.0
FULL_DB = -15.0
ATTACK = 0.8
RELEASE = 0.6
CONTEXT = 384  # samples of audio before a frame's own that its features see
MAX_OPEN = 0.09  # of the face height (forehead to chin), at full loudness
TONGUE = 0.4  # how much of the tongue shows toward the lower lip in a wide-open mouth
MAX_WIDTH = 0.12  # of the mouth half-width, lip corners out (spread) or in (rounded)
MAX_CANDIDATES = 4  # detector boxes tried, largest first, until the mesh sees a face in one
BLINK_FRAMES = (1.0, 0.9, 0.45)  # eyelid closure on the frames of a blink (~120 ms at 25 fps)

INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
INNER_LIPS = INNER_UPPER + INNER_LOWER[-2:0:-1]
OUTER_LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
LOWER_LIP_OUTER = 17
PARTING_WITH_TEETH = 0.85  # where the lips part, from the upper inner lip to the lower, when teeth show
TEETH_SHOWN = 0.3  # of the gap, the upper teeth's edge showing below the upper lip (portraits with closed lips)
TEETH_MAX = 0.22  # of the mouth half-width, the most of that edge
MOUTH_CORNERS = (61, 291)
FOREHEAD, CHIN = 10, 152
CHEEKS = (234, 454)
EYES = (  # (upper lid, lower lid) of each eye, from corner to corner
    ((33, 246, 161, 160, 159, 158, 157, 173, 133), (33, 7, 163, 144, 145, 153, 154, 155, 133)),
    ((263, 466, 388, 387, 386, 385, 384, 398, 362), (263, 249, 390, 373, 374, 380, 381, 382, 362)),
)


def _curve(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """y of a contour (points sorted by x) at the columns ``xs``, held flat beyond its ends."""
    order = np.argsort(points[:, 0])
    return np.interp(xs, points[order, 0], points[order, 1])


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class FaceRig:
    """The warp basis of one portrait at one frame size (everything in region-of-interest pixels)."""

    def __init__(self, frame: np.ndarray, points: np.ndarray) -> None:
        cv2 = require_cv2()
        height, width = frame.shape[:2]
        self.points = points
        face_height = float(np.linalg.norm(points[CHIN] - points[FOREHEAD]))
        face_width = float(np.linalg.norm(points[CHEEKS[1]] - points[CHEEKS[0]]))
        self.face_height = face_height
        low, high = points.min(axis=0), points.max(axis=0)
        x0 = int(max(0, low[0] - 0.35 * face_width))
        x1 = int(min(width, high[0] + 0.35 * face_width))
        y0 = int(max(0, low[1] - 0.3 * face_height))
        y1 = int(min(height, high[1] + 0.45 * face_height))
        self.box = (x0, y0, x1, y1)
        local = points - np.array([x0, y0], np.float32)
        roi_w, roi_h = x1 - x0, y1 - y0
        xs = np.arange(roi_w, dtype=np.float32)
        ys = np.arange(roi_h, dtype=np.float32)
        self.xs = xs
        self.grid_x, self.grid_y = np.meshgrid(xs, ys)
        patch = frame[y0:y1, x0:x1]

        # the parting line: where the lips part when the jaw drops. Between the inner lip contours: in the middle for
        # closed lips, just above the lower lip when the photo shows the upper teeth (they stay with the upper jaw)
        upper = _curve(local[list(INNER_UPPER)], xs)
        lower = _curve(local[list(INNER_LOWER)], xs)
        self.teeth = _shows_teeth(patch, local)
        mid = upper + (lower - upper) * (PARTING_WITH_TEETH if self.teeth is not None else 0.5)
        corners = local[list(MOUTH_CORNERS)]
        inner_left, inner_right = local[INNER_UPPER[0], 0], local[INNER_UPPER[-1], 0]
        left_t = np.clip((inner_left - xs) / max(1.0, inner_left - corners[0, 0]), 0, 1)
        right_t = np.clip((xs - inner_right) / max(1.0, corners[1, 0] - inner_right), 0, 1)
        lip = np.where(xs < inner_left, mid + (corners[0, 1] - mid) * left_t, mid)
        lip = np.where(xs > inner_right, mid + (corners[1, 1] - mid) * right_t, lip)
        self.below_lip = (self.grid_y - lip[None, :]).astype(np.float32)
        center_x = float((corners[0, 0] + corners[1, 0]) / 2)
        half_mouth = float(max(4.0, (corners[1, 0] - corners[0, 0]) / 2))
        self.half_mouth = half_mouth
        # the gap's shape across the mouth: a lens, widest in the middle, closed at the corners
        across_mouth = np.clip(np.abs(xs - center_x) / (0.92 * half_mouth), 0.0, 1.0)
        self.lens = (np.clip(1.0 - across_mouth**2, 0.0, 1.0) ** 0.7).astype(np.float32)
        # below the gap the lower lip follows it, then the chin follows the jaw, over the lower lip's thickness
        # (more gently outside the mouth, where the skin just stretches)
        lip_thickness = float(max(3.0, local[LOWER_LIP_OUTER, 1] - local[INNER_LOWER[5], 1]))
        outside = np.maximum(0.0, np.abs(xs - center_x) - 0.6 * half_mouth)
        self.follow = (1.2 * lip_thickness + 1.5 * outside).astype(np.float32)[None, :]
        reach = np.maximum(0.0, np.abs(xs - center_x) - 0.2 * face_width)
        jaw_x = np.exp(-(reach**2) / (2 * (0.16 * face_width) ** 2))
        chin_y = local[CHIN, 1]
        jaw_y = 1.0 - _smoothstep((ys - chin_y) / (0.35 * face_height))
        self.jaw = (jaw_y[:, None] * jaw_x[None, :]).astype(np.float32)

        # the inside of the mouth, in the photo's own colours: its lips, darkened toward the throat; teeth in the
        # colour of the photo's own teeth or, when it shows none, of the whites of its eyes
        lips = _polygon_mean(patch, local, OUTER_LIPS, exclude=INNER_LIPS)
        self.cavity_shadow = _lip_tone(lips, saturation=1.5, value=0.16)
        self.cavity_deep = _lip_tone(lips, saturation=1.6, value=0.30)
        self.tongue = _lip_tone(lips, saturation=1.25, value=0.62)
        self.teeth_colour = (_eye_whites(patch, local) * 0.88).astype(np.float32)
        self.mouth_rows = (int(max(0, lip.min() - 2)), int(min(roi_h, chin_y + 0.35 * face_height + 2)))

        # the lip corners: out (spread) or in (rounded), peaking at the corners, zero at the middle
        ratio = (xs - center_x) / half_mouth
        along = ratio * np.exp(-(ratio**2 - 1) / 2)
        mouth_y = float(np.mean(lip[int(max(0, corners[0, 0])) : int(corners[1, 0]) + 1]))
        across = np.exp(-((ys - mouth_y) ** 2) / (2 * (0.45 * half_mouth) ** 2))
        self.spread = (across[:, None] * along[None, :] * half_mouth).astype(np.float32)

        # the upper eyelids: down to the lower lids
        blink = np.zeros((roi_h, roi_w), np.float32)
        for upper_ids, lower_ids in EYES:
            top = local[list(upper_ids)]
            bottom = local[list(lower_ids)]
            first, last = int(np.floor(top[:, 0].min())), int(np.ceil(top[:, 0].max()))
            cols = np.arange(max(0, first), min(roi_w, last + 1))
            lid = _curve(top, cols.astype(np.float32))
            floor = _curve(bottom, cols.astype(np.float32))
            opening = np.maximum(0.0, floor - lid)
            span = 1.6 * float(opening.max()) + 4.0
            rows = ys[:, None]
            profile = np.where(
                rows < lid[None, :],
                _smoothstep((rows - (lid[None, :] - span)) / span),
                np.where(rows <= floor[None, :], 1.0, 1.0 - np.clip((rows - floor[None, :]) / 1.5, 0, 1)),
            )
            blink[:, cols] = np.maximum(blink[:, cols], profile * opening[None, :])
        self.blink = cv2.GaussianBlur(blink, (3, 3), 0)

        # the head: a soft mask over the face and hair that sways about a pivot below the chin
        hull = cv2.convexHull(local.astype(np.float32)).reshape(-1, 2)
        centroid = hull.mean(axis=0)
        hull = (hull - centroid) * 1.25 + centroid
        head = np.zeros((roi_h, roi_w), np.float32)
        cv2.fillConvexPoly(head, hull.astype(np.int32), 1.0)
        blur = int(0.35 * face_width) | 1
        head = cv2.GaussianBlur(head, (blur, blur), 0)
        self.pivot = (float(local[CHIN, 0]), float(local[CHIN, 1] + 0.3 * face_height))
        self.mouth_center = (center_x, mouth_y)
        self.head = head

        # everything fades to nothing at the region's edge, so the paste-back is seamless
        edge = 10.0
        taper_x = np.clip(np.minimum(xs, roi_w - 1 - xs) / edge, 0, 1)
        taper_y = np.clip(np.minimum(ys, roi_h - 1 - ys) / edge, 0, 1)
        self.taper = (taper_y[:, None] * taper_x[None, :]).astype(np.float32)
        self.head *= self.taper
        self.jaw *= self.taper
        self.spread *= self.taper

    def warp(
        self, patch: np.ndarray, opening: float, width: float, blink: float, sway: tuple[float, float, float]
    ) -> np.ndarray:
        """The region ``patch`` with the mouth opened by ``opening`` pixels, the corners moved by ``width`` (of the
        half-width), the lids closed by ``blink`` (0..1) and the head swayed by (angle, dx, dy)."""
        cv2 = require_cv2()
        angle, shift_x, shift_y = sway
        pivot_x, pivot_y = self.pivot
        dx = self.head * (-angle * (self.grid_y - pivot_y) + shift_x)
        dy = self.head * (angle * (self.grid_x - pivot_x) + shift_y)
        inside = None
        if opening > 0.05:
            # the mouth's fields move with the head: near the mouth the sway is a shift
            mouth_x, mouth_y = self.mouth_center
            sway_x = -angle * (mouth_y - pivot_y) + shift_x
            sway_y = angle * (mouth_x - pivot_x) + shift_y
            top, bottom = self.mouth_rows
            below = self.below_lip[top:bottom] - sway_y
            gap = opening * np.interp(self.xs - sway_x, self.xs, self.lens).astype(np.float32)[None, :]
            jaw = opening * self.jaw[top:bottom]
            follow = _smoothstep((below - gap) / self.follow)
            drop = np.where(below < 0.0, 0.0, gap + (jaw - gap) * follow)
            dy[top:bottom] += drop
            depth = np.clip(below / np.maximum(gap, 1e-3), 0.0, 1.0)
            inside = (_smoothstep(below + 0.5) * _smoothstep(gap - below + 0.5) * (gap > 0.5)).astype(np.float32)
        if abs(width) > 1e-3:
            dx += self.spread * width
        if blink > 0.0:
            dy += self.blink * blink
        out = cv2.remap(patch, self.grid_x - dx, self.grid_y - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if inside is not None:
            rows, cols = np.nonzero(inside.any(axis=1))[0], np.nonzero(inside.any(axis=0))[0]
            if len(rows):  # shade only the gap's bounding box
                r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
                out[top + r0 : top + r1, c0:c1] = self._shade(
                    out[top + r0 : top + r1, c0:c1], inside[r0:r1, c0:c1], depth[r0:r1, c0:c1], gap[:, c0:c1]
                )
        return out

    def _shade(self, rows: np.ndarray, inside: np.ndarray, depth: np.ndarray, gap: np.ndarray) -> np.ndarray:
        """The opened gap filled from top to bottom: the upper teeth's edge (portraits with closed lips), the shadow
        under the upper jaw, the dark of the mouth, and the tongue rising toward the lower lip as the mouth opens."""
        tongue = np.clip((depth - 0.55) / 0.45, 0.0, 1.0) ** 1.5 * np.clip((gap - 3.0) / 8.0, 0.0, 1.0)
        colour = self.cavity_deep + (self.cavity_shadow - self.cavity_deep) * _smoothstep(1.0 - depth / 0.35)[..., None]
        colour = colour + (self.tongue - colour) * (TONGUE * tongue)[..., None]
        if self.teeth is None:
            edge = np.minimum(gap * TEETH_SHOWN, TEETH_MAX * self.half_mouth)
            teeth = _smoothstep((edge - depth * gap) / 1.2)[..., None]
            colour = colour + (self.teeth_colour - colour) * teeth
        alpha = inside[..., None]
        return (rows * (1.0 - alpha) + colour * alpha).astype(np.uint8)


def _lip_tone(lips: np.ndarray, *, saturation: float, value: float) -> np.ndarray:
    """The lips' hue (BGR mean ``lips``) more saturated by ``saturation`` at brightness ``value`` (0..1 of white)."""
    cv2 = require_cv2()
    hsv = cv2.cvtColor(np.clip(lips, 0, 255).astype(np.uint8).reshape(1, 1, 3), cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 1] = min(255.0, hsv[0, 0, 1] * saturation)
    hsv[..., 2] = 255.0 * value
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR).reshape(3).astype(np.float32)


def _polygon_mean(patch: np.ndarray, local: np.ndarray, ring: tuple[int, ...], exclude: tuple[int, ...] = ()) -> Any:
    """Mean colour of the pixels inside the landmark ring ``ring`` (and outside ``exclude``)."""
    cv2 = require_cv2()
    mask = np.zeros(patch.shape[:2], np.uint8)
    cv2.fillPoly(mask, [local[list(ring)].astype(np.int32)], 1)
    if exclude:
        cv2.fillPoly(mask, [local[list(exclude)].astype(np.int32)], 0)
    if not mask.any():
        return patch.reshape(-1, 3).mean(axis=0)
    return patch[mask.astype(bool)].mean(axis=0)


def _shows_teeth(patch: np.ndarray, local: np.ndarray) -> Any:
    """The colour of the teeth when the photo shows them (the inner lips apart, bright between them), else None."""
    cv2 = require_cv2()
    mask = np.zeros(patch.shape[:2], np.uint8)
    cv2.fillPoly(mask, [local[list(INNER_LIPS)].astype(np.int32)], 1)
    if mask.sum() < 12:
        return None
    inner = patch[mask.astype(bool)].astype(np.float32)
    lips = _polygon_mean(patch, local, OUTER_LIPS, exclude=INNER_LIPS)
    bright = inner[inner.sum(axis=1) > lips.sum() + 60]
    if len(bright) < 0.3 * len(inner):
        return None
    return bright.mean(axis=0)


def _eye_whites(patch: np.ndarray, local: np.ndarray) -> Any:
    """The colour of the whites of the eyes: the brightest fifth of the pixels inside the eye contours."""
    cv2 = require_cv2()
    mask = np.zeros(patch.shape[:2], np.uint8)
    for upper_ids, lower_ids in EYES:
        ring = list(upper_ids) + list(reversed(lower_ids))
        cv2.fillPoly(mask, [local[ring].astype(np.int32)], 1)
    pixels = patch[mask.astype(bool)].astype(np.float32)
    if len(pixels) < 10:
        return np.array([215.0, 215.0, 210.0], np.float32)
    brightness = pixels.sum(axis=1)
    return pixels[brightness >= np.percentile(brightness, 80)].mean(axis=0)


class MouthDriver:
    """Per-frame mouth opening (0..1) and width (-1 rounded .. 1 spread) from 16 kHz PCM."""

    def __init__(self, sample_rate: int, fps: int) -> None:
        self.per_frame = sample_rate // fps
        self.sample_rate = sample_rate
        self.history = np.zeros(CONTEXT, np.float32)
        self.openness = 0.0
        self.width = 0.0
        size = self.per_frame + CONTEXT
        self.window = np.hanning(size).astype(np.float32)
        freqs = np.fft.rfftfreq(size, 1.0 / sample_rate)
        self.band = (freqs >= 90) & (freqs <= 5000)
        self.freqs = freqs[self.band]

    def frames(self, pcm: np.ndarray, count: int) -> list[tuple[float, float]]:
        samples = np.concatenate([self.history, pcm.astype(np.float32) / 32768.0])
        out = []
        for index in range(count):
            end = CONTEXT + (index + 1) * self.per_frame
            window = samples[max(0, end - self.per_frame - CONTEXT) : end]
            if len(window) < len(self.window):
                window = np.pad(window, (len(self.window) - len(window), 0))
            rms = float(np.sqrt(np.mean(window[-self.per_frame - CONTEXT // 2 :] ** 2)))
            level = float(np.clip((20 * math.log10(max(rms, 1e-7)) - SILENCE_DB) / (FULL_DB - SILENCE_DB), 0, 1))
            rate = ATTACK if level > self.openness else RELEASE
            self.openness += (level - self.openness) * rate
            spectrum = np.abs(np.fft.rfft(window * self.window))[self.band]
            total = float(spectrum.sum())
            target = 0.0
            if total > 1e-6 and level > 0.05:
                centroid = float((spectrum * self.freqs).sum() / total)
                target = float(np.clip((centroid - 1100.0) / 900.0, -1.0, 1.0)) * min(1.0, level * 2)
            self.width += (target - self.width) * 0.35
            out.append((self.openness, self.width))
        self.history = samples[-CONTEXT:].copy()
        return out


def portrait_landmarks(portrait: np.ndarray, face_box: Any = None) -> dict[str, np.ndarray]:
    """The preparation of one portrait, at its own resolution: the 468 mesh points (``points``) and the face score.

    ``face_box`` (x, y, w, h) skips the detector. ``no_face_detected`` when no face is found or the mesh does not
    recognise one."""
    faces = [tuple(int(value) for value in face_box)] if face_box is not None else face_candidates(portrait)
    for face in faces[:MAX_CANDIDATES]:  # the detector's false positives are told apart by the mesh's face score
        points, score = face_mesh().landmarks(portrait, face)
        if score >= FACE_SCORE:
            return {"points": points.astype(np.float32), "score": np.float32(score)}
    raise NoFaceDetectedError("the portrait")


class PhotorealSession(AvatarSession):
    """A session on one portrait: ``render`` takes PCM and gives JPEG frames (``slice_len`` per chunk when chunked,
    else one per 40 ms of audio received). ``points`` are the portrait's mesh points (:func:`portrait_landmarks`,
    computed when not given)."""

    def __init__(
        self,
        spec: SessionSpec,
        portrait: np.ndarray,
        points: np.ndarray | None = None,
        *,
        avatar_id: str | None = None,
        prepared: bool = False,
    ) -> None:
        from omnirt.avatars.session import fit_frame

        cv2 = require_cv2()
        self.spec = spec
        if points is None:
            points = portrait_landmarks(portrait, spec.config.get("face_box"))["points"]
        base, scale, left, top = fit_frame(portrait, spec.width, spec.height)
        self.points = points * scale - np.array([left, top], np.float32)
        self.avatar_id, self.prepared = avatar_id, prepared
        self.base = cv2.cvtColor(base, cv2.COLOR_RGB2BGR)  # kept in BGR: JPEG-encoded as is
        self.rig = FaceRig(self.base, self.points)
        x0, y0, x1, y1 = self.rig.box
        self.patch = self.base[y0:y1, x0:x1].copy()
        self.driver = MouthDriver(spec.sample_rate, spec.fps)
        self.mouth_gain = float(spec.config.get("mouth_open_multiplier", 1.0))
        self.frame_index = 0
        self.rng = np.random.default_rng(spec.seed)
        self.next_blink = int(self.rng.uniform(1.5, 3.5) * spec.fps)
        self._pending = np.zeros(0, np.int16)
        self._params = [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality]

    def mouth_box(self) -> list[int]:
        """Where the mouth moves, in frame pixels (x, y, w, h): the lips with room for the open jaw."""
        lips = self.points[list(OUTER_LIPS)]
        (x0, y0), (x1, y1) = lips.min(axis=0), lips.max(axis=0)
        drop = MAX_OPEN * self.rig.face_height
        return [int(x0), int(y0), int(np.ceil(x1 - x0)), int(np.ceil(y1 - y0 + drop))]

    def update(self, config: dict[str, Any]) -> dict[str, Any]:
        if "mouth_open_multiplier" in config:
            self.mouth_gain = float(config["mouth_open_multiplier"])
            return {"mouth_open_multiplier": self.mouth_gain}
        return {}

    def describe(self) -> dict[str, Any]:
        return {
            "lookahead_frames": 0,
            "lookahead_ms": 0,
            "landmarks": "mediapipe-face-mesh-468",
            "mouth_box": self.mouth_box(),
            "avatar_id": self.avatar_id,
            "preprocessed": self.prepared,
        }

    def _blink(self) -> float:
        offset = self.frame_index - self.next_blink
        if offset >= len(BLINK_FRAMES):
            self.next_blink = self.frame_index + int(self.rng.uniform(2.5, 5.5) * self.spec.fps)
            offset = self.frame_index - self.next_blink
        return BLINK_FRAMES[offset] if 0 <= offset < len(BLINK_FRAMES) else 0.0

    def _sway(self) -> tuple[float, float, float]:
        """(angle, dx, dy) of the head now: a slow tilt, a slower drift across, and the rise and fall of breathing
        (about 14 breaths a minute), in proportion to the face's size."""
        t = self.frame_index / self.spec.fps
        size = self.rig.face_height / 150.0
        angle = 0.010 * math.sin(2 * math.pi * t / 6.3) + 0.004 * math.sin(2 * math.pi * t / 2.9 + 1.0)
        drift = 1.2 * size * math.sin(2 * math.pi * t / 7.1 + 0.5)
        breath = 0.7 * size * math.sin(2 * math.pi * t / 4.3 + 2.0)
        return angle, drift, breath

    def frame(self, openness: float, width: float) -> np.ndarray:
        """One BGR frame for a mouth state (0..1 opening, -1..1 width)."""
        opening = MAX_OPEN * self.rig.face_height * min(1.5, openness * self.mouth_gain)
        warped = self.rig.warp(self.patch, opening, MAX_WIDTH * width, self._blink(), self._sway())
        frame = self.base.copy()
        x0, y0, x1, y1 = self.rig.box
        frame[y0:y1, x0:x1] = warped
        self.frame_index += 1
        return frame

    def _encode(self, frame: np.ndarray) -> bytes:
        return require_cv2().imencode(".jpg", frame, self._params)[1].tobytes()

    def _render_frames(self, pcm: np.ndarray, count: int) -> list[bytes]:
        return [self._encode(self.frame(o, w)) for o, w in self.driver.frames(pcm, count)]

    def render(self, pcm: Any) -> list[bytes]:
        pcm = np.asarray(pcm, dtype=np.int16).reshape(-1)
        per_frame = self.spec.sample_rate // self.spec.fps
        if self.spec.chunked:
            pcm = np.pad(pcm[: self.spec.chunk_samples], (0, max(0, self.spec.chunk_samples - len(pcm))))
            return self._render_frames(pcm, self.spec.slice_len)
        samples = np.concatenate([self._pending, pcm])
        count = len(samples) // per_frame
        self._pending = samples[count * per_frame :]
        return self._render_frames(samples[: count * per_frame], count)

    def flush(self) -> list[bytes]:
        if self.spec.chunked or not len(self._pending):
            return []
        per_frame = self.spec.sample_rate // self.spec.fps
        pcm = np.pad(self._pending, (0, per_frame - len(self._pending)))
        self._pending = np.zeros(0, np.int16)
        return self._render_frames(pcm, 1)
