"""Geometric augmentation of aligned crops, as Keras' ImageDataGenerator did in the thesis.

Thesis 3.4: rotation within 30 degrees, shifts within 10 % of height and width, zoom of up
to 15 % (Keras ``zoom_range=0.15``: each axis scaled by a factor in [0.85, 1.15]). It acts on
the aligned (H, W, 2) crop before sample-wise normalisation, and both channels get the same
transform so the pair stays registered. Pixels from outside repeat the border, as Keras'
default ``fill_mode='nearest'``. Training set only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentationSettings:
    """Ranges of the random transform (all zero: no augmentation)."""

    rotation_degrees: float = 30.0
    shift_fraction: float = 0.1
    zoom_range: float = 0.15

    def __post_init__(self) -> None:
        if min(self.rotation_degrees, self.shift_fraction, self.zoom_range) < 0:
            raise ValueError('augmentation ranges must not be negative')
        if self.zoom_range >= 1.0:
            raise ValueError('zoom range must be below 1 (a zoom factor must stay positive)')


def random_affine(height: int, width: int, settings: AugmentationSettings,
                  rng: np.random.Generator) -> np.ndarray:
    """2x3 matrix: rotate and zoom about the crop centre, then shift."""
    angle = np.deg2rad(rng.uniform(-settings.rotation_degrees, settings.rotation_degrees))
    shift = rng.uniform(-settings.shift_fraction, settings.shift_fraction, 2) * (width, height)
    zoom_x, zoom_y = rng.uniform(1.0 - settings.zoom_range, 1.0 + settings.zoom_range, 2)
    cos, sin = np.cos(angle), np.sin(angle)
    linear = np.array([[cos, -sin], [sin, cos]]) @ np.diag([zoom_x, zoom_y])
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    offset = centre - linear @ centre + shift
    return np.hstack([linear, offset[:, np.newaxis]])


def augment_batch(crops: np.ndarray, settings: AugmentationSettings,
                  rng: np.random.Generator) -> np.ndarray:
    """(N, H, W, 2) crops -> float32 crops, each with its own random transform."""
    count, height, width, _channels = crops.shape
    out = np.empty(crops.shape, np.float32)
    for index in range(count):
        matrix = random_affine(height, width, settings, rng)
        out[index] = cv2.warpAffine(
            crops[index].astype(np.float32), matrix, (width, height),
            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE,
        )
    return out
