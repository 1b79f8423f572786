"""What the tracker needs from a face detector + landmark fitter, whatever library provides it.

The proprietary tracker of the thesis (3.3.2) is replaced by open models; keeping the tracker
behind this small interface lets a better backend be swapped in without touching the node.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from antispoof_ros.eye_corners import EyeCornerPoints


@dataclass(frozen=True)
class FaceBox:
    """Axis-aligned face box in image pixels (right/bottom exclusive) and its detector score.

    ``score`` is the detector's own margin (0 = at its default threshold); backends use it
    in the fit confidence, since a landmark fit alone cannot tell a face from a non-face.
    """

    left: float
    top: float
    right: float
    bottom: float
    score: float = 0.0

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.right - self.left

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.bottom - self.top

    @property
    def area(self) -> float:
        """Box area in square pixels (0 for a degenerate box)."""
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def centre(self) -> tuple[float, float]:
        """Box centre (x, y)."""
        return (self.left + self.right) / 2, (self.top + self.bottom) / 2

    @classmethod
    def around_eyes(cls, corners: np.ndarray, side_per_outer_distance: float,
                    eye_line_from_top: float) -> FaceBox:
        """A square box placed by eye corners (EyeCornerPoints order, (4, 2)).

        Its side is ``side_per_outer_distance`` times the distance of the outer corners,
        centred on the corners, the eye line ``eye_line_from_top`` sides below its top.
        """
        side = side_per_outer_distance * float(np.hypot(*(corners[2] - corners[0])))
        centre_x, eye_y = np.asarray(corners, np.float64).mean(axis=0)
        top = eye_y - eye_line_from_top * side
        return cls(centre_x - side / 2, top, centre_x + side / 2, top + side)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Per point of an (N, 2) array: inside the box (left/top inclusive, right/bottom not)."""
        points = np.asarray(points, np.float64)
        return np.all((points >= (self.left, self.top)) & (points < (self.right, self.bottom)),
                      axis=1)

    def scaled(self, factor: float) -> FaceBox:
        """The same box in an image resized by ``factor``."""
        return FaceBox(self.left * factor, self.top * factor, self.right * factor,
                       self.bottom * factor, self.score)

    def shifted(self, dx: float, dy: float) -> FaceBox:
        """The same box in an image whose origin moved by (-dx, -dy), e.g. out of a crop."""
        return FaceBox(self.left + dx, self.top + dy, self.right + dx, self.bottom + dy,
                       self.score)

    def expanded(self, margin: float) -> FaceBox:
        """The box grown by ``margin`` times its size on every side."""
        dx, dy = self.width * margin, self.height * margin
        return FaceBox(self.left - dx, self.top - dy, self.right + dx, self.bottom + dy,
                       self.score)

    def clipped(self, width: int, height: int) -> FaceBox:
        """The part of the box inside a ``width`` x ``height`` image."""
        return FaceBox(min(max(self.left, 0.0), width), min(max(self.top, 0.0), height),
                       min(max(self.right, 0.0), width), min(max(self.bottom, 0.0), height),
                       self.score)

    def intersection_over_union(self, other: FaceBox) -> float:
        """Overlap measure used to recognise the tracked face among new detections."""
        inner = FaceBox(max(self.left, other.left), max(self.top, other.top),
                        min(self.right, other.right), min(self.bottom, other.bottom))
        union = self.area + other.area - inner.area
        return inner.area / union if union > 0 else 0.0


class LandmarkBackend(ABC):
    """Face detection on a (downscaled) grey image and eye-corner fitting at full resolution."""

    #: Short name for logs and benchmark output.
    name: str = 'abstract'
    #: Width in pixels of the smallest face ``detect_faces`` finds in the image it is given;
    #: the tracker derives its downscale factors from it.
    min_face_px: int = 80

    @abstractmethod
    def detect_faces(self, gray: np.ndarray) -> list[FaceBox]:
        """All faces in a 2-D uint8 image, in that image's pixel coordinates."""

    @abstractmethod
    def fit_corners(self, gray: np.ndarray, box: FaceBox) -> tuple[EyeCornerPoints, float]:
        """Eye corners of the face in ``box`` and a fit confidence in [0, 1].

        The confidence says how plausible the fitted shape is as a face seen roughly
        frontally; it is what tells the tracker that it has lost the face.
        """
