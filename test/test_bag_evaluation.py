"""The bag evaluation through the real liveness node agrees with the direct evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from antispoof_ros.offline.bagtools.synthetic_bag import write_synthetic_bag
from antispoof_ros.offline.synthetic.protocol import (
    ProtocolConfig,
    build_protocol,
    pick_pylon_scenarios,
)
from antispoof_ros.offline.synthetic.scene import Split
from antispoof_ros.paths import SHIPPED_MODELS
from antispoof_ros.tools.bag_evaluation import main as bag_evaluation_main

pytestmark = [pytest.mark.ros, pytest.mark.slow]


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
