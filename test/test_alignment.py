"""Alignment (thesis 3.3.2): eye corners land on the target pixels after the warp.

Each test draws small bright spots at known corner positions of a rotated, scaled frame,
warps it with the shared alignment code and finds the spots again in the crop.
"""

from __future__ import annotations

import numpy as np
import pytest

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.liveness.alignment import (
    EYE_REGION,
    FACE_REGION,
    AlignmentError,
    align_pair,
    normalize_samplewise,
    region_transform,
    similarity_transform,
    to_model_input,
    warp_to_region,
)

FRAME_SHAPE = (1200, 1920)


def corners_for(angle_deg: float, iod: float, center: tuple[float, float]) -> EyeCornerPoints:
    """Corners of a face rotated by ``angle_deg`` with outer-corner distance ``iod``."""
    # canonical layout (iod = 1): outer corners at +-0.5, inner corners at +-0.17
    canonical = np.array([[-0.5, 0.0], [-0.17, 0.01], [0.5, 0.0], [0.17, 0.01]])
    angle = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return EyeCornerPoints.from_array(canonical @ rotation.T * iod + np.array(center))


def spot_frame(points: np.ndarray, sigma: float) -> np.ndarray:
    """Float frame with a Gaussian spot at each point (subpixel positions)."""
    yy, xx = np.mgrid[0:FRAME_SHAPE[0], 0:FRAME_SHAPE[1]].astype(np.float32)
    frame = np.zeros(FRAME_SHAPE, np.float32)
    for x, y in points:
        window = (slice(int(y) - 40, int(y) + 41), slice(int(x) - 40, int(x) + 41))
        frame[window] += np.exp(
            -((xx[window] - x) ** 2 + (yy[window] - y) ** 2) / (2 * sigma**2)
        )
    return frame


def spot_center(crop: np.ndarray, near: tuple[float, float], radius: int = 4) -> np.ndarray:
    """Intensity-weighted centroid of the crop around ``near``."""
    x0, y0 = int(round(near[0])), int(round(near[1]))
    patch = crop[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1].astype(np.float64)
    yy, xx = np.mgrid[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
    return np.array([(patch * xx).sum(), (patch * yy).sum()]) / patch.sum()


POSES = [(0.0, 300.0), (12.0, 180.0), (-25.0, 420.0), (40.0, 250.0)]


@pytest.mark.parametrize(('angle', 'iod'), POSES)
def test_face_region_puts_outer_corners_on_targets(angle: float, iod: float) -> None:
    corners = corners_for(angle, iod, (960.0, 600.0))
    scale = FACE_REGION.width / 2 / iod  # 100 px between targets
    frame = spot_frame([corners.right_outer, corners.left_outer], sigma=1.5 / scale)
    crop = warp_to_region(frame, region_transform(corners, FACE_REGION), FACE_REGION)
    for target in (FACE_REGION.target_a, FACE_REGION.target_b):
        assert np.linalg.norm(spot_center(crop, target) - target) < 0.5


@pytest.mark.parametrize(('angle', 'iod'), POSES)
@pytest.mark.parametrize('eye', ['right', 'left'])
def test_eye_region_puts_outer_and_inner_corner_on_targets(
    angle: float, iod: float, eye: str
) -> None:
    corners = corners_for(angle, iod, (960.0, 600.0))
    outer, inner = (
        (corners.right_outer, corners.right_inner)
        if eye == 'right'
        else (corners.left_outer, corners.left_inner)
    )
    eye_width = float(np.hypot(*np.subtract(outer, inner)))
    scale = (EYE_REGION.target_b[0] - EYE_REGION.target_a[0]) / eye_width
    frame = spot_frame([outer], sigma=1.2 / scale) + 0.5 * spot_frame([inner], sigma=1.2 / scale)
    crop = warp_to_region(frame, region_transform(corners, EYE_REGION, eye), EYE_REGION)
    # the brighter spot (outer corner) must be at target_a = (7, 24), the inner one at (41, 24)
    outer_found = spot_center(crop, EYE_REGION.target_a)
    inner_found = spot_center(crop, EYE_REGION.target_b)
    assert np.linalg.norm(outer_found - EYE_REGION.target_a) < 0.5
    assert np.linalg.norm(inner_found - EYE_REGION.target_b) < 0.5
    assert crop[24, 7] > crop[24, 41]


def test_left_eye_is_mirrored_like_the_right_one() -> None:
    """In a frame that is mirror-symmetric about the face midline both eye crops are equal."""
    rng = np.random.default_rng(3)
    half = rng.integers(0, 255, (FRAME_SHAPE[0], FRAME_SHAPE[1] // 2)).astype(np.uint8)
    frame = np.concatenate([half, half[:, ::-1]], axis=1)  # pixel x <-> 1919 - x
    corners = corners_for(0.0, 400.0, (959.5, 600.0))  # symmetric about x = 959.5
    right = warp_to_region(frame, region_transform(corners, EYE_REGION, 'right'), EYE_REGION)
    left = warp_to_region(frame, region_transform(corners, EYE_REGION, 'left'), EYE_REGION)
    assert right.std() > 10
    # OpenCV resamples uint8 frames at 1/32-pixel fixed-point positions and rounds the
    # result to whole grey levels: mirrored positions may round one level apart.
    np.testing.assert_allclose(left, right, atol=1.0)
    assert np.mean(left != right) < 0.02


def test_similarity_maps_both_points_exactly() -> None:
    matrix = similarity_transform((10.0, 20.0), (110.0, 70.0), (50.0, 100.0), (150.0, 100.0))
    points = np.array([[10.0, 20.0, 1.0], [110.0, 70.0, 1.0]]) @ matrix.T
    np.testing.assert_allclose(points, [[50.0, 100.0], [150.0, 100.0]], atol=1e-9)


def test_align_pair_stacks_frame_a_then_b() -> None:
    corners = corners_for(5.0, 300.0, (960.0, 600.0))
    frame_a = np.full(FRAME_SHAPE, 40, np.uint8)
    frame_b = np.full(FRAME_SHAPE, 200, np.uint8)
    crop = align_pair(frame_a, frame_b, corners, FACE_REGION)
    assert crop.shape == (250, 200, 2) and crop.dtype == np.float32
    assert crop[125, 100, 0] == 40 and crop[125, 100, 1] == 200


def test_bad_inputs_raise_alignment_errors() -> None:
    corners = corners_for(0.0, 300.0, (960.0, 600.0))
    with pytest.raises(AlignmentError, match='frame sizes differ'):
        align_pair(np.zeros((10, 10)), np.zeros((10, 12)), corners, FACE_REGION)
    with pytest.raises(AlignmentError, match='not finite'):
        region_transform(EyeCornerPoints((np.nan, 0), (1, 1), (2, 2), (3, 3)), FACE_REGION)
    with pytest.raises(AlignmentError, match='coincide'):
        region_transform(EyeCornerPoints((5, 5), (1, 1), (5, 5), (3, 3)), FACE_REGION)
    with pytest.raises(AlignmentError, match='greyscale'):
        warp_to_region(np.zeros((4, 4, 3)), np.eye(2, 3), FACE_REGION)


def test_samplewise_normalisation_keeps_channel_ratio_cue() -> None:
    sample = np.stack([np.full((250, 200), 50.0), np.full((250, 200), 150.0)], axis=-1)
    normalised = normalize_samplewise(sample)
    assert normalised.mean() == pytest.approx(0.0, abs=1e-6)
    assert normalised.std() == pytest.approx(1.0, abs=1e-5)
    assert normalised[..., 0].mean() < normalised[..., 1].mean()
    batch = normalize_samplewise(np.stack([sample, sample * 3 + 7]))
    np.testing.assert_allclose(batch[0], batch[1], atol=1e-5)
    tensor = to_model_input(sample)
    assert tensor.shape == (1, 2, 250, 200) and tensor.flags.c_contiguous
