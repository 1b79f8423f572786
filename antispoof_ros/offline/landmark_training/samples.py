"""Real face photos shipped by Python packages, made to look like NIR camera frames.

No NIR face data exists offline (platform facts 6), so accuracy is measured on the two
public-domain portraits that scikit-image and matplotlib install, turned grey, darkened,
noised and placed (rotated, scaled) into a 1920x1200 frame, with their hand-annotated corners
transformed alongside.
"""

from __future__ import annotations

from dataclasses import dataclass
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.paths import SOURCE_TREE

FRAME_SHAPE = (1200, 1920)  # rows, columns of the camera's front frame
CORNER_NAMES = ('right_outer', 'right_inner', 'left_outer', 'left_inner')
# Committed with the tests; present in a source checkout, not in an installed wheel.
DEFAULT_ANNOTATIONS = SOURCE_TREE / 'test/data/landmark_annotations.json'


@dataclass(frozen=True)
class SampleFace:
    """A grey photo and its hand-annotated eye corners."""

    name: str
    gray: np.ndarray
    corners: EyeCornerPoints

    def cropped(self, margin: float = 1.2) -> SampleFace:
        """Just the face, ``margin`` outer-corner distances around the eyes.

        Multi-face frames need it: whole photos pasted side by side would overlap.
        """
        points = self.corners.as_array()
        reach = margin * self.corners.interocular_distance
        rows, cols = self.gray.shape
        left, top = (max(0, int(v - reach)) for v in points.min(axis=0))
        right = min(cols, int(points[:, 0].max() + reach))
        bottom = min(rows, int(points[:, 1].max() + 1.5 * reach))
        return SampleFace(self.name, self.gray[top:bottom, left:right].copy(),
                          EyeCornerPoints.from_array(points - (left, top)))


def _package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f'package {package!r} is not installed')
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f'{path} is missing from package {package!r}')
    return path


PHOTO_FILES = {
    'astronaut': ('skimage', 'data/astronaut.png'),
    'grace_hopper': ('matplotlib', 'mpl-data/sample_data/grace_hopper.jpg'),
}


def load_sample_faces(annotations: Path = DEFAULT_ANNOTATIONS) -> list[SampleFace]:
    """The package photos in grey with the corners from ``annotations`` (JSON)."""
    if not annotations.is_file():
        raise FileNotFoundError(f'annotation file not found: {annotations}')
    images = json.loads(annotations.read_text())['images']
    faces = []
    for name, (package, relative) in PHOTO_FILES.items():
        gray = cv2.imread(str(_package_file(package, relative)), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise ValueError(f'cannot decode the {name} photo')
        points = np.array([images[name][corner] for corner in CORNER_NAMES], np.float64)
        faces.append(SampleFace(name, gray, EyeCornerPoints.from_array(points)))
    return faces


def nir_like(gray: np.ndarray, rng: np.random.Generator, gain: float = 0.45,
             gamma: float = 1.3, noise_sigma: float = 4.0) -> np.ndarray:
    """Darker, contrast-compressed, noisy version of a photo, like an under-lit NIR frame."""
    normalised = gray.astype(np.float32) / 255.0
    dark = 255.0 * gain * normalised ** gamma
    noisy = dark + rng.normal(0.0, noise_sigma, gray.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def place_in_frame(face: SampleFace, rng: np.random.Generator, scale: float = 1.0,
                   angle_deg: float = 0.0, centre: tuple[float, float] | None = None,
                   frame: np.ndarray | None = None,
                   frame_shape: tuple[int, int] = FRAME_SHAPE,
                   ) -> tuple[np.ndarray, EyeCornerPoints]:
    """Photo rotated (counter-clockwise) and scaled about its eye centre, pasted into a frame.

    The eye centre lands on ``centre`` (default: frame centre). Without ``frame`` the
    background is a dim noisy grey. Returns the frame and the corners moved the same way.
    """
    if frame is None:
        frame = np.clip(rng.normal(20, 3, frame_shape), 0, 255).astype(np.uint8)
    else:
        frame = frame.copy()
    rows, cols = frame.shape
    target = centre if centre is not None else (cols / 2, rows / 2)
    eye_centre = face.corners.as_array()[[0, 2]].mean(axis=0)
    matrix = cv2.getRotationMatrix2D((float(eye_centre[0]), float(eye_centre[1])),
                                     angle_deg, scale)
    matrix[:, 2] += np.asarray(target) - eye_centre
    warped = cv2.warpAffine(face.gray, matrix, (cols, rows), flags=cv2.INTER_LINEAR)
    inside = cv2.warpAffine(np.full_like(face.gray, 255), matrix, (cols, rows),
                            flags=cv2.INTER_NEAREST) > 0
    frame[inside] = warped[inside]
    points = face.corners.as_array()
    moved = np.hstack([points, np.ones((4, 1))]) @ matrix.T
    return frame, EyeCornerPoints.from_array(moved)
