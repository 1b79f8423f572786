"""A rig team's first-day loop on pylon's emulated camera: record, replay, report.

camera_node (emulator, 60 Hz) is recorded with two label segments from a label file (a live
face, then a print), and the recording goes through ``tools.bag_evaluation``: replayed at
the recorded rate into real landmark_node and liveness_node processes (no params file: the
node finds the frame rate itself) and scored in-process, ending in the ISO/IEC 30107-3 report.
The camera shows the same photo throughout and the model is a constant one: what is checked
is the plumbing (labels, pairs, report), not the accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

from face_frames import write_face_cycle
from node_process import start_module, start_node
from onnx_models import constant_face_model
import pytest
import yaml

from antispoof_ros.offline.landmark_training.samples import load_sample_faces

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SEGMENTS = [
    {'at': 0.0, 'subject': 's001', 'species': 'live', 'lighting': 'office'},
    {'at': 3.0, 'subject': 's001', 'species': 'print', 'print_kind': 'nir',
     'lighting': 'office'},
]


def test_recorded_segments_are_replayed_through_the_nodes_into_a_report(tmp_path: Path) -> None:
    astronaut = next(face for face in load_sample_faces() if face.name == 'astronaut')
    write_face_cycle(tmp_path / 'frames', astronaut.cropped())
    model = constant_face_model(tmp_path / 'live.onnx', probability_logit=6.0)
    labels = tmp_path / 'labels.yaml'
    labels.write_text(yaml.safe_dump(SEGMENTS))
    bag, out = tmp_path / 'session', tmp_path / 'evaluation'

    camera = start_node('camera_node', '--ros-args', '-p', 'emulated_cameras:=1',
                        '-p', f'emulator_image_dir:={tmp_path / "frames"}',
                        '-p', 'frame_rate_hz:=60.0')
    try:
        assert camera.wait_for_line(r'resulting frame rate', timeout=60), camera.output
        recorder = start_module('antispoof_ros.offline.bagtools.record', '--out', str(bag),
                                '--labels', str(labels), '--duration', '6')
        assert recorder.wait(timeout=120) == 0, recorder.output
    finally:
        camera.stop()
    assert 'frame counter' in recorder.output, recorder.output

    evaluation = start_module('antispoof_ros.tools.bag_evaluation', '--bag', str(bag),
                              '--out', str(out), '--model', str(model),
                              '--corners', 'landmark-node', '--shape-model', 'five-point')
    assert evaluation.wait(timeout=600) == 0, evaluation.output
    comparison = json.loads((out / 'comparison.json').read_text())
    node = comparison['node']
    assert comparison['pairs_scored_by_node'] >= 20, comparison
    assert node['bona_fide_count'] > 0 and node['attack_counts'].get('print_nir', 0) > 0, node
    assert comparison['max_score_difference'] < 1e-5, comparison
    report = (out / 'report' / 'report.md').read_text()
    assert 'print_nir' in report and 'bona fide' in report
    metrics = json.loads((out / 'report' / 'metrics.json').read_text())
    assert metrics['metrics']['attack_counts'] == node['attack_counts']
