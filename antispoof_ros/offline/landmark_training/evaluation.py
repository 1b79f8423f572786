"""Corner accuracy of a tracker or a bare backend against known corners.

``evaluate`` is generic so that a caller can feed it frames from the synthetic NIR scene
generator as well; ``degraded_samples`` makes the set this module reports on by itself:
the package photos under roll, scale, darkening and noise (``python -m
antispoof_ros.offline.landmark_training.evaluation``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
import sys

import numpy as np
from tqdm import tqdm

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.landmarks.backend import LandmarkBackend
from antispoof_ros.landmarks.tracker import FaceTracker
from antispoof_ros.offline.landmark_training.samples import (
    CORNER_NAMES,
    DEFAULT_ANNOTATIONS,
    SampleFace,
    load_sample_faces,
    nir_like,
    place_in_frame,
)

# Photo scale that makes the sample faces driver-sized in a 1920x1200 frame
# (outer corners 180-350 px apart); the degradations vary the scale around it.
BASE_SCALE = 3.0


def locate_corners(locator: FaceTracker | LandmarkBackend,
                   frame: np.ndarray) -> EyeCornerPoints | None:
    """Corners from a tracker (its state carries over) or a backend (largest face, full res)."""
    if isinstance(locator, FaceTracker):
        result = locator.process(frame)
        return result.corners if result.ok else None
    boxes = locator.detect_faces(frame)
    if not boxes:
        return None
    corners, _ = locator.fit_corners(frame, max(boxes, key=lambda box: box.area))
    return corners


def evaluate(locator: FaceTracker | LandmarkBackend, frames: Iterable[np.ndarray],
             truth: Iterable[EyeCornerPoints | None]) -> np.ndarray:
    """Per-corner errors in px: (frames, 4) in ``EyeCornerPoints`` field order, NaN = not found.

    Frames are processed in order, so a tracker is evaluated as on a video; reset it between
    frames for independent images. Frames whose truth is None hold no face; finding one
    there counts as ``inf``.
    """
    rows = []
    for frame, expected in zip(frames, truth, strict=True):
        found = locate_corners(locator, frame)
        if expected is None:
            rows.append(np.full(4, np.inf if found is not None else 0.0))
        elif found is None:
            rows.append(np.full(4, np.nan))
        else:
            rows.append(np.hypot(*(found.as_array() - expected.as_array()).T))
    return np.array(rows, np.float64).reshape(-1, 4)


@dataclass(frozen=True)
class ErrorSummary:
    """Median and 95th percentile of the corner errors of the frames where corners were found."""

    frames: int
    found: int
    median_px: float
    p95_px: float
    max_px: float

    def __str__(self) -> str:
        return (f'found {self.found}/{self.frames}, corner error median {self.median_px:.2f} px, '
                f'p95 {self.p95_px:.2f} px, max {self.max_px:.2f} px')


def summarise(errors: np.ndarray) -> ErrorSummary:
    """Summary of an ``evaluate`` result (errors of found faces only)."""
    found = errors[np.all(np.isfinite(errors), axis=1)]
    if found.size == 0:
        return ErrorSummary(len(errors), 0, np.nan, np.nan, np.nan)
    return ErrorSummary(len(errors), len(found), float(np.median(found)),
                        float(np.percentile(found, 95)), float(found.max()))


@dataclass(frozen=True)
class DegradedSample:
    """One degraded frame, its true corners and the degradation parameters."""

    face: str
    frame: np.ndarray
    corners: EyeCornerPoints
    scale: float
    angle_deg: float
    gain: float
    gamma: float
    noise_sigma: float


def degraded_samples(faces: list[SampleFace], count: int, seed: int = 0,
                     base_scale: float = BASE_SCALE) -> Iterator[DegradedSample]:
    """``count`` random NIR-like frames per photo, each with its true corners.

    Roll +-15 deg, scale 0.5-1.5 x ``base_scale``, gain 0.25-0.8, gamma 1-1.8, noise sigma
    2-8 grey levels, eye centre anywhere in the middle of the frame.
    """
    rng = np.random.default_rng(seed)
    for face in faces:
        for _ in range(count):
            scale = base_scale * rng.uniform(0.5, 1.5)
            angle = rng.uniform(-15.0, 15.0)
            centre = (rng.uniform(600, 1320), rng.uniform(400, 700))
            gain, gamma, sigma = rng.uniform(0.25, 0.8), rng.uniform(1.0, 1.8), rng.uniform(2, 8)
            frame, corners = place_in_frame(face, rng, scale, angle, centre)
            yield DegradedSample(face.name, nir_like(frame, rng, gain, gamma, sigma), corners,
                                 scale, angle, gain, gamma, sigma)


def main(argv: list[str] | None = None) -> int:
    """Report corner errors on degraded sample photos (independent frames, tracker reset)."""
    parser = argparse.ArgumentParser(
        prog='python -m antispoof_ros.offline.landmark_training.evaluation',
        description=main.__doc__)
    parser.add_argument('--count', type=int, default=25, help='frames per photo')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--min-face-px', type=int, default=160,
                        help='tracker setting; the smallest faces here are ~230 px wide')
    parser.add_argument('--annotations', type=Path, default=DEFAULT_ANNOTATIONS)
    args = parser.parse_args(argv)
    try:
        if args.count < 1:
            raise ValueError(f'--count must be >= 1, got {args.count}')
        from antispoof_ros.landmarks.dlib_backend import DlibBackend
        from antispoof_ros.landmarks.tracker import TrackerConfig
        tracker = FaceTracker(DlibBackend(), TrackerConfig(min_face_px=args.min_face_px))
        faces = load_sample_faces(args.annotations)
    except (OSError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    errors, scales, names = [], [], []
    samples = degraded_samples(faces, args.count, args.seed)
    for sample in tqdm(samples, total=args.count * len(faces), desc='frames'):
        tracker.reset()
        errors.append(evaluate(tracker, [sample.frame], [sample.corners])[0])
        scales.append(sample.scale)
        names.append(sample.face)
    frame_errors = np.array(errors)
    photo_errors = frame_errors / np.array(scales)[:, None]
    for name in dict.fromkeys(names):
        rows = [row for row, face in zip(photo_errors, names, strict=True) if face == name]
        print(f'{name:>13} (photo px): {summarise(np.array(rows))}')
    print(f'{"all":>13} (photo px): {summarise(photo_errors)}')
    print(f'{"all":>13} (frame px): {summarise(frame_errors)}')
    found = photo_errors[np.all(np.isfinite(photo_errors), axis=1)]
    if found.size:
        print('  p95 per corner (photo px): ' + ', '.join(
            f'{name} {value:.2f}' for name, value in zip(
                CORNER_NAMES, np.percentile(found, 95, axis=0), strict=True)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
