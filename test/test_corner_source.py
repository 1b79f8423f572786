"""Ground-truth vs landmark_node corners: corner mapping, coverage and the comparison."""

from __future__ import annotations

import json

import numpy as np
import pytest

from antispoof_ros.offline.evaluation import corner_source
from antispoof_ros.offline.evaluation.corner_source import (
    FRONT,
    CornerCycle,
    compare,
    held_out_scenarios,
    iter_corner_cycles,
)
from antispoof_ros.offline.synthetic.render import render_cycle
from antispoof_ros.offline.synthetic.scene import CROP_MODE, Pose, Species
from antispoof_ros.paths import SHIPPED_MODELS

MODEL = SHIPPED_MODELS / 'p2_face.onnx'


def _cycle(spec, detected_offset: float | None) -> CornerCycle:
    crop = render_cycle(spec, 0, CROP_MODE, 0)
    truth = crop.truth[FRONT].corners.as_array()
    detected = (np.full((4, 2), np.nan) if detected_offset is None
                else truth + detected_offset)
    return CornerCycle(crop.frames, truth, detected, corner_source.pai_species(spec),
                       int(spec.is_live), spec.pose.value if spec.pose else 'none')


def test_test_scenarios_are_the_default_protocols_test_split_per_species():
    picked = held_out_scenarios(0, per_species=1)
    assert sorted(corner_source.pai_species(s) for s in picked) == [
        'live', 'mask', 'print_bw', 'print_colour', 'print_nir']
    assert {s.split.value for s in held_out_scenarios(0)} == {'test'}


@pytest.mark.slow
def test_detected_corners_land_near_the_truth_in_crop_pixels():
    """Full-frame detection mapped into the crop: the node's corners on the model's pixels."""
    live = [s for s in held_out_scenarios(0)
            if s.species is Species.LIVE and s.pose is Pose.AHEAD]
    (cycle,) = iter_corner_cycles(live[:1], cycles=1, seed=0, shape_model='synthetic',
                                  workers=1)
    assert cycle.frames.shape == (4, CROP_MODE.height, CROP_MODE.width)
    assert np.isfinite(cycle.detected).all()
    assert np.abs(cycle.detected - cycle.truth).max() < 8.0  # crop px (half the sensor's)


@pytest.mark.slow
def test_compare_scores_the_same_presentations_both_ways_and_counts_the_missing():
    specs = held_out_scenarios(0, per_species=1)
    cycles = [_cycle(spec, 0.0) for spec in specs]
    cycles.append(_cycle(specs[0], None))  # no face found: left out of both columns
    result, columns = compare(cycles, MODEL)
    assert result['cycles'] == len(cycles) and result['scored'] == len(cycles) - 1
    assert sum(c['cycles'] - c['with_corners'] for c in result['coverage'].values()) == 1
    assert np.array_equal(columns['score_truth'], columns['score_detected'])
    assert all(value == 0.0 for value in result['loss_pp'].values())
    assert result['corner_error_px']['max'] == 0.0 and not result['over_tolerance']
    json.dumps(result)  # the report's JSON
    text = corner_source.markdown(result, 'python -m ...')
    assert '| bpcer |' in text and 'within the 0.5 pp tolerance' in text


@pytest.mark.slow
def test_shifted_corners_change_the_scores_and_the_reported_error():
    spec = held_out_scenarios(0, per_species=1)[0]
    result, columns = compare([_cycle(spec, 3.0)], MODEL)
    assert result['corner_error_px']['median'] == pytest.approx(2 * np.hypot(3.0, 3.0))
    assert not np.array_equal(columns['score_truth'], columns['score_detected'])


@pytest.mark.parametrize('bad', [['--cycles', '0'], ['--first-cycle', '-1']])
def test_cli_rejects_bad_counts(capsys, bad):
    with pytest.raises(SystemExit) as exit_info:
        corner_source.parse_args(['--out', 'x', *bad])
    assert exit_info.value.code == 2
    assert bad[0] in capsys.readouterr().err
