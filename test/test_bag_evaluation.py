"""The bag evaluation through the real liveness node agrees with the direct evaluation.

It runs the node with the pair, region and eye its model was trained for; a contradicting
choice is one error line before anything runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from antispoof_ros.flash import Phase
from antispoof_ros.offline.bagtools.labels import METADATA_KEY
from antispoof_ros.offline.bagtools.synthetic_bag import write_synthetic_bag
from antispoof_ros.offline.bagtools.writer import FlashBagWriter
from antispoof_ros.offline.synthetic.protocol import (
    ProtocolConfig,
    build_protocol,
    pick_pylon_scenarios,
)
from antispoof_ros.offline.synthetic.scene import Split
from antispoof_ros.paths import SHIPPED_MODELS
from antispoof_ros.tools.bag_evaluation import main as bag_evaluation_main


@pytest.mark.parametrize('argv, message', [
    (['--pair', 'P3'], "p2_face.onnx was trained for pair 'P2', not 'P3'"),
    (['--model', str(SHIPPED_MODELS / 'p2_eye.onnx'), '--region', 'face'],
     "p2_eye.onnx was trained for region 'eye', not 'face'"),
])
def test_a_choice_the_model_contradicts_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    out = tmp_path / 'evaluation'
    assert bag_evaluation_main(['--bag', str(tmp_path / 'no_bag'), '--out', str(out),
                                *argv]) == 2
    error = capsys.readouterr().err
    assert error.startswith('antispoof_ros.tools.bag_evaluation: error: ')
    assert message in error and error.count('\n') == 1, error
    assert not out.exists()


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.parametrize('damage', ['storage file', 'label segments'])
def test_a_damaged_bag_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                         damage: str) -> None:
    bag = tmp_path / 'bag'
    labels = {'subject': 's001', 'species': 'live', 'lighting': 'office'}
    with FlashBagWriter(bag, labels) as writer:
        writer.write_frame(Phase.DARK, np.zeros((4, 4), np.uint8), 0, 1_000_000)
    if damage == 'storage file':
        next(bag.glob('*.mcap')).unlink()
        expected = 'files are missing'
    else:
        metadata = bag / 'metadata.yaml'
        metadata.write_text(metadata.read_text().replace(METADATA_KEY, 'x.renamed'))
        expected = 'no antispoof_ros labels'
    out = tmp_path / 'evaluation'
    assert bag_evaluation_main(['--bag', str(bag), '--out', str(out)]) == 2
    error = capsys.readouterr().err
    assert expected in error and error.count('\n') == 1, error
    assert not out.exists()


def test_node_and_direct_scores_agree_on_every_pair(tmp_path: Path) -> None:
    protocol = build_protocol(ProtocolConfig())
    picked = pick_pylon_scenarios([s for s in protocol.scenarios if s.split == Split.TEST], 3)
    bag = tmp_path / 'bag'
    write_synthetic_bag(bag, picked, cycles=3, progress=False)
    out = tmp_path / 'evaluation'
    assert bag_evaluation_main(['--bag', str(bag), '--out', str(out),
                                '--model', str(SHIPPED_MODELS / 'p2_face.onnx')]) == 0
    comparison = json.loads((out / 'comparison.json').read_text())
    assert comparison['pairs_in_bag'] == 9
    assert comparison['pairs_scored_directly'] == comparison['pairs_scored_by_node'] == 9
    assert comparison['max_score_difference'] < 1e-6
    assert comparison['direct']['accuracy'] == comparison['node']['accuracy']
    assert comparison['direct']['apcer'] == comparison['node']['apcer']


@pytest.mark.ros
@pytest.mark.slow
def test_with_landmark_node_corners_node_and_direct_scores_agree(tmp_path: Path) -> None:
    protocol = build_protocol(ProtocolConfig())
    live = next(s for s in protocol.scenarios if s.split == Split.TEST
                and s.species.value == 'live' and s.pose is not None
                and s.pose.value == 'camera')
    bag = tmp_path / 'bag'
    write_synthetic_bag(bag, [live], cycles=4, progress=False, continuous=True)
    out = tmp_path / 'evaluation'
    assert bag_evaluation_main(['--bag', str(bag), '--out', str(out), '--corners',
                                'landmark-node', '--shape-model', 'synthetic']) == 0
    comparison = json.loads((out / 'comparison.json').read_text())
    assert comparison['corners'] == 'landmark-node'
    # the tracker finds this frontal face in every front frame, in the node as in-process
    assert comparison['pairs_scored_directly'] == comparison['pairs_scored_by_node'] == 4
    assert comparison['max_score_difference'] < 1e-6
    assert comparison['direct']['accuracy'] == comparison['node']['accuracy']
