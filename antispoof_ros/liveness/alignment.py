"""Frame preparation of thesis 3.3.2: align a flash pair by the eye corners, stack, normalise.

One implementation for the liveness node and the training pipeline, so the model sees at
run time exactly what it was trained on. A similarity transform (rotation, uniform scale,
translation) is fully determined by two point pairs:
- face region 200x250 (w x h): the outer eye corners go to (50, 100) and (150, 100);
- eye region 48x48: outer and inner corner of one eye go to (7, 24) and (41, 24). The
  subject's left eye (image right) is mirrored so both eyes look alike to the model.
Corners found on the front-flash frame are used for every frame of its cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from antispoof_ros.eye_corners import EyeCornerPoints, Point


@dataclass(frozen=True)
class Region:
    """Output crop geometry: size and where the two reference points land."""

    name: str
    width: int
    height: int
    target_a: Point
    target_b: Point


FACE_REGION = Region('face', 200, 250, (50.0, 100.0), (150.0, 100.0))
EYE_REGION = Region('eye', 48, 48, (7.0, 24.0), (41.0, 24.0))
REGIONS = {region.name: region for region in (FACE_REGION, EYE_REGION)}
EYES = ('right', 'left')


class AlignmentError(ValueError):
    """Corners or frames that cannot be aligned; the message says why."""


def region_by_name(name: str) -> Region:
    """Look up ``'face'`` or ``'eye'``."""
    try:
        return REGIONS[name]
    except KeyError:
        raise ValueError(f"unknown region '{name}' (known: {', '.join(REGIONS)})") from None


def similarity_transform(src_a: Point, src_b: Point, dst_a: Point, dst_b: Point) -> np.ndarray:
    """2x3 matrix of the similarity that maps src_a -> dst_a and src_b -> dst_b exactly."""
    src = complex(*src_b) - complex(*src_a)
    if abs(src) < 1e-6:
        raise AlignmentError('reference points coincide')
    # As complex numbers the similarity is z -> s * z + t with s = scale * e^(i angle).
    s = (complex(*dst_b) - complex(*dst_a)) / src
    t = complex(*dst_a) - s * complex(*src_a)
    return np.array([[s.real, -s.imag, t.real], [s.imag, s.real, t.imag]], np.float64)


def region_transform(corners: EyeCornerPoints, region: Region, eye: str = 'right') -> np.ndarray:
    """2x3 matrix from frame pixels to region pixels for these corners.

    ``eye`` (the subject's eye) matters only for the eye region.
    """
    if not corners.is_finite():
        raise AlignmentError('eye corners are not finite')
    if region.name == 'face':
        return similarity_transform(
            corners.right_outer, corners.left_outer, region.target_a, region.target_b
        )
    if eye == 'right':  # image left: outer corner is already on the left
        return similarity_transform(
            corners.right_outer, corners.right_inner, region.target_a, region.target_b
        )
    if eye != 'left':
        raise ValueError(f"unknown eye '{eye}' (known: {', '.join(EYES)})")
    # Map outer -> target_b, inner -> target_a, then mirror about the targets' midline.
    matrix = similarity_transform(
        corners.left_outer, corners.left_inner, region.target_b, region.target_a
    )
    mirror_x = region.target_a[0] + region.target_b[0]
    matrix[0] = [-matrix[0, 0], -matrix[0, 1], mirror_x - matrix[0, 2]]
    return matrix


def warp_to_region(frame: np.ndarray, matrix: np.ndarray, region: Region) -> np.ndarray:
    """Resample one greyscale frame into the region as float32 (outside the frame: 0).

    The warp runs on the frame's own dtype (uint8/uint16/float) and only the small crop is
    converted: converting a 1920x1200 frame to float first would cost milliseconds.
    """
    if frame.ndim != 2 or frame.size == 0:
        raise AlignmentError(f'expected a non-empty greyscale frame, got shape {frame.shape}')
    crop = cv2.warpAffine(
        frame,
        matrix,
        (region.width, region.height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return crop.astype(np.float32, copy=False)


def align_pair(
    frame_a: np.ndarray,
    frame_b: np.ndarray,
    corners: EyeCornerPoints,
    region: Region,
    eye: str = 'right',
) -> np.ndarray:
    """Aligned (height, width, 2) float32 crop: channel 0 from frame A, channel 1 from B."""
    if frame_a.shape != frame_b.shape:
        raise AlignmentError(f'frame sizes differ: {frame_a.shape} vs {frame_b.shape}')
    matrix = region_transform(corners, region, eye)
    return np.stack(
        [warp_to_region(frame_a, matrix, region), warp_to_region(frame_b, matrix, region)],
        axis=-1,
    )


def normalize_samplewise(sample: np.ndarray, epsilon: float = 1e-6) -> np.ndarray:
    """Zero mean, unit variance over the whole sample (both channels together).

    Keras' samplewise normalisation, as in the thesis (3.4). Statistics are shared by the
    two channels so their brightness ratio, the flash-response cue, survives.
    Works on one sample (H, W, C) or a batch (N, ...): each sample on its own.
    """
    data = np.asarray(sample, np.float32)
    if data.ndim == 4:
        axes: tuple[int, ...] = (1, 2, 3)
    elif data.ndim == 3:
        axes = (0, 1, 2)
    else:
        raise ValueError(f'expected (H, W, C) or (N, H, W, C), got shape {data.shape}')
    mean = data.mean(axis=axes, keepdims=True)
    std = data.std(axis=axes, keepdims=True)
    return (data - mean) / np.maximum(std, epsilon)


def to_model_input(aligned: np.ndarray) -> np.ndarray:
    """Normalised (1, 2, H, W) float32 tensor (NCHW) from one aligned (H, W, 2) crop."""
    return np.ascontiguousarray(normalize_samplewise(aligned).transpose(2, 0, 1)[np.newaxis])
