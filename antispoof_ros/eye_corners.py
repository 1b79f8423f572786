"""Eye-corner positions: the only landmarks the alignment needs (thesis 3.3.2).

"Right eye" is the subject's right eye, which appears on the left of the image.
Coordinates are image pixels, x to the right and y downwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Point = tuple[float, float]


@dataclass(frozen=True)
class EyeCornerPoints:
    """Outer and inner corner of both eyes in one image."""

    right_outer: Point
    right_inner: Point
    left_outer: Point
    left_inner: Point

    def as_array(self) -> np.ndarray:
        """(4, 2) float array in field order: right_outer, right_inner, left_outer, left_inner."""
        return np.array(
            [self.right_outer, self.right_inner, self.left_outer, self.left_inner], np.float64
        )

    @classmethod
    def from_array(cls, points: np.ndarray) -> EyeCornerPoints:
        """Inverse of ``as_array``."""
        rows = [(float(x), float(y)) for x, y in np.asarray(points, np.float64).reshape(4, 2)]
        return cls(*rows)

    @property
    def interocular_distance(self) -> float:
        """Distance between the two outer corners, the face scale used for alignment."""
        (x1, y1), (x2, y2) = self.right_outer, self.left_outer
        return float(np.hypot(x2 - x1, y2 - y1))

    def is_finite(self) -> bool:
        """True when every coordinate is a finite number."""
        return bool(np.all(np.isfinite(self.as_array())))
