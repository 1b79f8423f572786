"""The one-command reproduction, end to end on a tiny protocol (CI smoke run)."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from antispoof_ros.liveness.model_metadata import ModelMetadata
from antispoof_ros.offline.training import reproduce


@pytest.mark.slow
def test_tiny_reproduction_trains_scores_and_reports_every_input_type(tmp_path: Path) -> None:
    out = tmp_path / 'run'
    argv = ['--out', str(out), '--tiny', '--epochs', '1', '--ablation-epochs', '1',
            '--max-steps', '2', '--batch-size', '8', '--workers', '1', '--no-progress']
    assert reproduce.main(argv) == 0

    types = (reproduce.MAIN, reproduce.EYE, *reproduce.ablation_types('eye'))
    for input_type in types:
        run = out / 'runs' / input_type.name
        card = json.loads((run / 'model_card.json').read_text())
        assert card['threshold']['target'] == 'bpcer100'
        assert card['data']['region'] == input_type.region
        session = ort.InferenceSession(str(run / 'model.onnx'))
        metadata = ModelMetadata.from_onnx_properties(session.get_modelmeta().custom_metadata_map)
        assert metadata.threshold == pytest.approx(card['threshold']['value'])
        assert (metadata.pair, metadata.region) == (input_type.pair, input_type.region)
        with np.load(run / 'scores.npz') as scores:
            assert set(scores['split']) == {'validation', 'test'}
    for report in ('p2_face', 'p2_eye'):
        text = (out / 'reports' / report / 'report.md').read_text()
        assert 'BPCER100 operating point' in text
        for input_type in types:
            assert input_type.label in text


@pytest.mark.slow
def test_a_model_trained_further_is_scored_again(tmp_path: Path) -> None:
    out = tmp_path / 'run'
    argv = ['--out', str(out), '--tiny', '--epochs', '1', '--ablation-epochs', '1',
            '--max-steps', '1', '--batch-size', '8', '--workers', '1', '--no-progress',
            '--ablation-region', 'face']
    assert reproduce.main(argv) == 0
    scores = out / 'runs' / 'p2_face' / 'scores.npz'
    model = out / 'runs' / 'p2_face' / 'model.onnx'
    model.touch()  # as a continued training run rewrites it
    assert reproduce.main(argv) == 0
    assert scores.stat().st_mtime >= model.stat().st_mtime
