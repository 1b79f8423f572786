"""Eye corners on every front frame: detect the driver's face, then track it cheaply.

Full-frame detection costs tens of milliseconds even on a downscaled frame, too much for each
30 Hz front frame, so after a detection the face is only searched for in a small region
around its last box, shrunk so the face is barely above the detector's minimum size (a few
ms). The corners are always fitted at full resolution. Tracking falls back to a full detection
when the face is not found near its last place, the fit becomes implausible, the face reaches
the frame edge, or a configured number of frames has passed (so a second face or a better
candidate is noticed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
import time
from typing import NamedTuple

import cv2
import numpy as np

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.landmarks.backend import FaceBox, LandmarkBackend

# Larger sides than this are corrupt headers or wrong reshapes, not camera frames.
MAX_SIDE_PX = 16384


class Status(StrEnum):
    """Outcome of one frame."""

    OK = 'ok'
    NO_FACE = 'no_face'
    BAD_INPUT = 'bad_input'


class Method(StrEnum):
    """How the face box of a result was found."""

    DETECTED = 'detected'
    TRACKED = 'tracked'


class DriverChoice(StrEnum):
    """Which face is the driver when several are detected."""

    LARGEST = 'largest'
    CENTRAL = 'central'


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker settings; see the module docstring for what they trade off."""

    #: Width (full-resolution px) of the smallest face a full detection must find. It sets the
    #: detection downscale: 320 px with the dlib backend gives 1/4 (480x300 for 1920x1200).
    min_face_px: int = 320
    #: A full detection at least every this many frames (1 = detect on every frame).
    redetect_every: int = 30
    driver_choice: DriverChoice = DriverChoice.LARGEST
    #: Fits less confident than this are no face: a lost track, or a weak detection that is
    #: not counted (0.6 = HOG score 0.14; the mission patch on the astronaut's suit scores 0.005,
    #: the sample faces 0.2-1.5 even when degraded).
    min_confidence: float = 0.6
    #: Tracking searches the last box grown by this fraction of its size on each side
    #: (a head moves far less than 0.4 face widths in the 33 ms between front frames).
    track_margin: float = 0.4
    #: The tracking region is scaled so the last face is this wide (px) for the detector:
    #: just above dlib's 80 px HOG window. The search costs ~0.4x that of 100 px + 0.5 margin.
    track_face_px: int = 85
    #: Fraction of the box width that may lie outside the frame before the face is lost.
    max_box_outside: float = 0.2

    def __post_init__(self) -> None:
        """Reject settings that would make the tracker silently useless."""
        if self.min_face_px < 1:
            raise ValueError(f'min_face_px must be >= 1, got {self.min_face_px}')
        if self.redetect_every < 1:
            raise ValueError(f'redetect_every must be >= 1, got {self.redetect_every}')
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f'min_confidence must be in [0, 1], got {self.min_confidence}')
        if self.track_margin <= 0:
            raise ValueError(f'track_margin must be > 0, got {self.track_margin}')
        if self.track_face_px < 1:
            raise ValueError(f'track_face_px must be >= 1, got {self.track_face_px}')
        if not 0.0 <= self.max_box_outside < 1.0:
            raise ValueError(f'max_box_outside must be in [0, 1), got {self.max_box_outside}')


@dataclass(frozen=True)
class LandmarkResult:
    """Everything the landmark node publishes about one frame."""

    status: Status
    #: Why the status is not ``ok`` (empty when it is).
    reason: str = ''
    corners: EyeCornerPoints | None = None
    face_box: FaceBox | None = None
    #: Fit plausibility in [0, 1] (see ``LandmarkBackend.fit_corners``).
    confidence: float = 0.0
    #: Faces seen by the latest full detection (tracking frames repeat that count).
    face_count: int = 0
    method: Method | None = None
    elapsed_ms: float = 0.0
    #: Per-stage times: 'resize', 'detect', 'fit' (ms).
    stage_ms: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when corners were found."""
        return self.status is Status.OK


def frame_problem(frame: object) -> str:
    """Why ``frame`` cannot be searched for a face, or '' when it can."""
    if not isinstance(frame, np.ndarray):
        return f'expected a numpy array, got {type(frame).__name__}'
    if frame.dtype != np.uint8:
        return f'expected dtype uint8 (mono8), got {frame.dtype}'
    if frame.ndim != 2:
        return f'expected a 2-D grey image, got shape {frame.shape}'
    if frame.size == 0:
        return f'empty image of shape {frame.shape}'
    if max(frame.shape) > MAX_SIDE_PX:
        return f'image side larger than {MAX_SIDE_PX} px: shape {frame.shape}'
    return ''


def choose_driver(boxes: list[FaceBox], frame_shape: tuple[int, int],
                  choice: DriverChoice) -> FaceBox:
    """The box of the driver among several detected faces."""
    if choice is DriverChoice.LARGEST:
        return max(boxes, key=lambda box: box.area)
    centre_x, centre_y = frame_shape[1] / 2, frame_shape[0] / 2
    return min(boxes, key=lambda box: np.hypot(box.centre[0] - centre_x, box.centre[1] - centre_y))


def _resized(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` scaled by ``factor``, contiguous.

    Halvings by ``pyrDown`` first (Gaussian, ~0.1 ms for a 700 px region) and area averaging
    only for the rest: area averaging straight down to 1/7 costs ~0.8 ms, and plain linear
    sampling would alias the fine texture HOG looks at.
    """
    while factor <= 0.5:
        image = cv2.pyrDown(image)
        factor *= 2.0
    if factor == 1.0:
        return np.ascontiguousarray(image)
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    interpolation = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)


class _Fit(NamedTuple):
    """A face box with the corners fitted in it."""

    box: FaceBox
    corners: EyeCornerPoints
    confidence: float


class _Stopwatch:
    """Adds up the milliseconds spent in named stages of one frame."""

    def __init__(self) -> None:
        self.stage_ms: dict[str, float] = {}
        self._start = time.perf_counter()
        self._last = self._start

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stage_ms[stage] = self.stage_ms.get(stage, 0.0) + (now - self._last) * 1e3
        self._last = now

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._start) * 1e3


class FaceTracker:
    """Stateful per-camera eye-corner finder: call ``process`` on each front frame in order."""

    def __init__(self, backend: LandmarkBackend, config: TrackerConfig | None = None) -> None:
        """Detect and fit with ``backend``; ``config`` defaults to ``TrackerConfig()``."""
        self.backend = backend
        self.config = config or TrackerConfig()
        self.reset()

    def reset(self) -> None:
        """Forget the tracked face, so the next frame runs a full detection."""
        self._last_box: FaceBox | None = None
        self._frames_since_detection = 0
        self._refresh_pending = False
        self._face_count = 0

    @property
    def detection_scale(self) -> float:
        """Downscale factor of full detections (1 = full resolution)."""
        return min(1.0, self.backend.min_face_px / self.config.min_face_px)

    @property
    def refresh_due(self) -> bool:
        """The frame just answered by ``process(..., defer_refresh=True)`` wants ``refresh``."""
        return self._refresh_pending

    def _detection_due(self) -> bool:
        """The periodic full detection is due: the next frame would run one."""
        return (self._last_box is not None
                and self._frames_since_detection + 1 >= self.config.redetect_every)

    def process(self, frame: np.ndarray, *, defer_refresh: bool = False) -> LandmarkResult:
        """Eye corners of the driver in one frame; never raises on bad input.

        ``defer_refresh``: track even when the periodic detection is due; then
        ``refresh_due`` says so and the caller runs ``refresh`` on this frame after it has
        sent the answer, so the detection costs no latency.
        """
        self._refresh_pending = False
        watch = _Stopwatch()
        problem = frame_problem(frame)
        if problem:
            return LandmarkResult(Status.BAD_INPUT, reason=problem, elapsed_ms=watch.elapsed_ms)
        result = None
        if self._last_box is not None and (defer_refresh or not self._detection_due()):
            result = self._track(frame, self._last_box, watch)
        if result is None:
            result = self._detect(frame, watch)
        self._refresh_pending = defer_refresh and self._detection_due()
        return result

    def refresh(self, frame: np.ndarray) -> LandmarkResult:
        """The periodic full detection on a frame already answered by tracking.

        It re-chooses the driver and notices new faces for the frames that follow; its
        result is not an answer (the frame had one). A face it cannot find is lost.
        """
        self._refresh_pending = False
        return self._detect(frame, _Stopwatch())

    def _track(self, frame: np.ndarray, last_box: FaceBox,
               watch: _Stopwatch) -> LandmarkResult | None:
        """Search near the last box; None when the face is lost there."""
        height, width = frame.shape
        region = last_box.expanded(self.config.track_margin).clipped(width, height)
        left, top = int(region.left), int(region.top)
        right, bottom = int(np.ceil(region.right)), int(np.ceil(region.bottom))
        factor = min(1.0, self.config.track_face_px / max(last_box.width, 1.0))
        if min(right - left, bottom - top) * factor < self.backend.min_face_px:
            return None  # the face is mostly outside the frame: nothing to search
        small = _resized(frame[top:bottom, left:right], factor)
        watch.lap('resize')
        candidates = self.backend.detect_faces(small)
        watch.lap('detect')
        boxes = [box.scaled(1.0 / factor).shifted(left, top) for box in candidates]
        overlapping = [box for box in boxes if box.intersection_over_union(last_box) > 0.2]
        if not overlapping:
            return None
        box = max(overlapping, key=last_box.intersection_over_union)
        fit = _Fit(box, *self.backend.fit_corners(frame, box))
        watch.lap('fit')
        result = self._accept(frame, fit, Method.TRACKED, watch)
        return result if result.ok else None

    def downscaled_for_detection(self, frame: np.ndarray) -> np.ndarray:
        """The frame as a full detection searches it (a detector trainer needs the same)."""
        return _resized(frame, self.detection_scale)

    def detect_boxes(self, frame: np.ndarray, watch: _Stopwatch | None = None) -> list[FaceBox]:
        """Faces of a full detection on the downscaled frame, in full-resolution pixels."""
        factor = self.detection_scale
        small = self.downscaled_for_detection(frame)
        if watch:
            watch.lap('resize')
        boxes = [box.scaled(1.0 / factor) for box in self.backend.detect_faces(small)]
        if watch:
            watch.lap('detect')
        return boxes

    def _detect(self, frame: np.ndarray, watch: _Stopwatch) -> LandmarkResult:
        """Full detection on the downscaled frame, then the fit on the driver's face."""
        self._last_box = None
        boxes = self.detect_boxes(frame, watch)
        # fitting every candidate (~0.2 ms each) lets weak detections drop out before the
        # driver is chosen: a large false positive must not win 'largest'
        fits = [_Fit(box, *self.backend.fit_corners(frame, box)) for box in boxes]
        watch.lap('fit')
        faces = [fit for fit in fits if fit.confidence >= self.config.min_confidence]
        self._face_count = len(faces)
        if not faces:
            reason = 'no face detected' if not boxes else (
                f'{len(boxes)} detection(s), none with confidence >= '
                f'{self.config.min_confidence:.2f}')
            return self._no_face(reason, watch)
        driver = choose_driver([fit.box for fit in faces], frame.shape, self.config.driver_choice)
        return self._accept(frame, next(fit for fit in faces if fit.box is driver),
                            Method.DETECTED, watch)

    def _accept(self, frame: np.ndarray, fit: _Fit, method: Method,
                watch: _Stopwatch) -> LandmarkResult:
        """An ok result from a fit that passes the checks; it also becomes the tracking state."""
        height, width = frame.shape
        box, corners, confidence = fit
        outside = box.width * box.height - box.clipped(width, height).area
        if outside > self.config.max_box_outside * box.width * box.height:
            return self._no_face('face box leaves the frame', watch)
        if confidence < self.config.min_confidence:
            return self._no_face(
                f'implausible corner fit (confidence {confidence:.2f} < '
                f'{self.config.min_confidence:.2f})', watch)
        points = corners.as_array()
        if not corners.is_finite() or np.any(points < 0) or np.any(
                points >= (width, height)):
            return self._no_face('eye corners outside the frame', watch)
        self._last_box = box
        self._frames_since_detection = (
            0 if method is Method.DETECTED else self._frames_since_detection + 1)
        return LandmarkResult(Status.OK, corners=corners, face_box=box, confidence=confidence,
                              face_count=self._face_count, method=method,
                              elapsed_ms=watch.elapsed_ms, stage_ms=watch.stage_ms)

    def _no_face(self, reason: str, watch: _Stopwatch) -> LandmarkResult:
        self._last_box = None
        return LandmarkResult(Status.NO_FACE, reason=reason, face_count=self._face_count,
                              elapsed_ms=watch.elapsed_ms, stage_ms=watch.stage_ms)
