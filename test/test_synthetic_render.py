"""Physical cues of the synthetic NIR renderer: determinism, corners, pupils, flash geometry."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.offline.synthetic.render import render_cycle
from antispoof_ros.offline.synthetic.scene import (
    CROP_MODE,
    FULL_MODE,
    Lighting,
    Pose,
    PrintKind,
    ScenarioSpec,
    Species,
)

FRONT, RIGHT, LEFT = (DEFAULT_PATTERN.index(p) for p in (Phase.FRONT, Phase.RIGHT, Phase.LEFT))


def live(subject: int, lighting: Lighting = Lighting.OFFICE, pose: Pose = Pose.CAMERA
         ) -> ScenarioSpec:
    return ScenarioSpec(f'test-live-{subject}-{lighting.value}-{pose.value}', Species.LIVE,
                        lighting, pose, 1, subject_id=subject)


def nir_print(subject: int) -> ScenarioSpec:
    return ScenarioSpec(f'test-print-{subject}', Species.PRINT, Lighting.OFFICE, None, 1,
                        subject_id=subject, print_kind=PrintKind.NIR)


def window(image: np.ndarray, centre: np.ndarray, radius: int) -> np.ndarray:
    x, y = (int(round(c)) for c in centre)
    return image[y - radius:y + radius + 1, x - radius:x + radius + 1]


def test_same_seed_same_cycle_and_other_seed_differs():
    spec = live(3)
    first, again = render_cycle(spec, 0, root_seed=5), render_cycle(spec, 0, root_seed=5)
    other = render_cycle(spec, 0, root_seed=6)
    assert np.array_equal(first.frames, again.frames)
    assert np.array_equal(first.corners_array(), again.corners_array())
    assert not np.array_equal(first.frames, other.frames)
    assert first.frames.shape == (4, CROP_MODE.height, CROP_MODE.width)
    assert first.frames.dtype == np.uint8


def test_corners_follow_the_small_head_motion_within_a_cycle():
    corners = render_cycle(live(4, pose=Pose.AHEAD), 2).corners_array()
    shift = np.abs(corners - corners[0]).max(axis=(1, 2))
    assert shift[1:].max() > 0.0  # the head moves between the 8.3 ms frames ...
    assert shift.max() < 3.0  # ... but only by a pixel or so
    assert np.all((corners >= 0) & (corners < [CROP_MODE.width, CROP_MODE.height]))


@pytest.mark.parametrize('spec', [live(5), nir_print(5)], ids=['live', 'print'])
def test_a_continuous_take_moves_smoothly_and_loops_without_a_jump(spec):
    period_s = 8 * len(DEFAULT_PATTERN) / 120.0  # 8 cycles

    def front_corners(index: int, take: bool) -> np.ndarray:
        cycle = render_cycle(spec, index, take_period_s=period_s if take else None)
        return cycle.corners_array()[FRONT]

    take = [front_corners(index, True) for index in range(9)]
    steps = [np.abs(b - a).max() for a, b in pairwise(take)]
    assert 0.0 < max(steps) < 3.0  # the head sways by a pixel or so per cycle
    assert np.allclose(take[8], take[0])  # one period later it is back: the clip loops
    independent = [front_corners(index, False) for index in range(3)]
    assert max(np.abs(b - a).max() for a, b in pairwise(independent)) > 5.0


@pytest.mark.parametrize('subject', [1, 2, 6])
def test_corners_land_on_the_eyes(subject):
    """Between the corners lie dark iris and lashes; the same spot shifted onto the cheek
    (by one eye width downwards) is skin, much brighter."""
    cycle = render_cycle(live(subject), 0)
    frame = cycle.frames[FRONT].astype(np.float32)
    corners = cycle.truth[FRONT].corners.as_array()
    for outer, inner in ((corners[0], corners[1]), (corners[2], corners[3])):
        middle, eye_width = (outer + inner) / 2, np.linalg.norm(outer - inner)
        on_eye = window(frame, middle, 2).min()
        on_cheek = window(frame, middle + [0, eye_width], 2).min()
        assert on_eye < 0.7 * on_cheek


def eye_excess(cycle) -> float:
    """How much more the eyes brighten from the right to the front flash than the face."""
    difference = cycle.frames[FRONT].astype(np.float32) - cycle.frames[RIGHT]
    corners = cycle.truth[FRONT].corners.as_array()
    x0, y0, x1, y1 = (int(c) for c in cycle.truth[FRONT].face_box)
    face = np.median(difference[max(y0, 0):y1, max(x0, 0):x1])
    eyes = [window(difference, (corners[i] + corners[i + 1]) / 2, 2).mean() for i in (0, 2)]
    return float(max(eyes) - face)


def test_bright_pupil_under_the_front_flash_for_live_faces_only():
    for subject in (1, 2, 5):
        live_cycle = render_cycle(live(subject, Lighting.DARK), 0)
        print_cycle = render_cycle(nir_print(subject), 0)
        assert live_cycle.pupil_radius_cm > 0.2 and print_cycle.pupil_radius_cm is None
        assert eye_excess(live_cycle) > 20.0
        assert abs(eye_excess(print_cycle)) < 8.0


def side_asymmetry(cycle) -> float:
    """(right - left flash) / front, image-left half of the face minus image-right half."""
    front = cycle.frames[FRONT].astype(np.float32) + 1
    ratio = (cycle.frames[RIGHT].astype(np.float32) - cycle.frames[LEFT]) / front
    corners = cycle.truth[FRONT].corners.as_array()
    centre_x = int(corners[:, 0].mean())
    x0, y0, x1, y1 = (int(c) for c in cycle.truth[FRONT].face_box)
    band = ratio[max(y0, 0):y1]
    return float(band[:, max(x0, 0):centre_x].mean() - band[:, centre_x:x1].mean())


def test_right_flash_lights_the_image_left_side_of_3d_faces_but_not_of_prints():
    """The right flash sits at the subject's right = image left (x = -10 cm)."""
    live_asymmetry = [side_asymmetry(render_cycle(live(s), 0)) for s in (1, 2, 3)]
    print_asymmetry = [side_asymmetry(render_cycle(nir_print(s), 0)) for s in (1, 2, 3)]
    assert min(live_asymmetry) > 0.1
    assert max(abs(a) for a in print_asymmetry) < 0.4 * min(live_asymmetry)


def test_full_frame_truth_matches_the_crop_mapping():
    spec = live(2, Lighting.HALOGEN, Pose.RIGHT45)
    crop, full = render_cycle(spec, 1, CROP_MODE), render_cycle(spec, 1, FULL_MODE)
    assert full.frames.shape == (4, 1200, 1920)
    mapped = np.array(crop.crop_origin) + crop.corners_array() / CROP_MODE.scale
    np.testing.assert_allclose(full.corners_array(), mapped, atol=1e-3)
    assert full.frames[0].mean() > 1.0  # the halogen lamp lights the dark frame
