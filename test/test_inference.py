"""LivenessModel on small real ONNX models built here with onnx.helper."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
from onnx_models import EYE_METADATA, SCALE, build_model
import pytest

from antispoof_ros.liveness.alignment import EYE_REGION, FACE_REGION
from antispoof_ros.liveness.inference import LivenessModel, ModelExpectation, ModelLoadError
from antispoof_ros.liveness.model_metadata import ModelMetadata


def expected_probability(x: np.ndarray) -> float:
    return 1.0 / (1.0 + math.exp(-SCALE * float(x.mean())))


def eye_input(value: float) -> np.ndarray:
    rng = np.random.default_rng(3)
    return (rng.normal(value, 0.1, (1, 2, 48, 48))).astype(np.float32)


def test_predicts_the_graphs_probability_and_reports_identity(tmp_path: Path) -> None:
    path = build_model(tmp_path / 'probe.onnx')
    model = LivenessModel.load(path, expected=ModelExpectation(pair='P2', region='eye'))
    for value in (-1.0, 0.0, 0.7):
        x = eye_input(value)
        assert model.predict(x) == pytest.approx(expected_probability(x), abs=1e-6)
    assert model.metadata == EYE_METADATA
    assert model.threshold == 0.6
    assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model.input_shape == (1, 2, EYE_REGION.height, EYE_REGION.width)


def test_thread_counts_reach_the_session(tmp_path: Path) -> None:
    model = LivenessModel.load(build_model(tmp_path / 'probe.onnx'), threads=2)
    options = model.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 2)
    with pytest.raises(ValueError, match='threads'):
        LivenessModel.load(tmp_path / 'probe.onnx', threads=0)


def test_nan_output_is_flagged(tmp_path: Path) -> None:
    model = LivenessModel.load(build_model(tmp_path / 'nan.onnx', scale=math.nan))
    assert math.isnan(model.predict(eye_input(0.5)))


def test_output_outside_zero_one_is_flagged_not_clipped(tmp_path: Path) -> None:
    model = LivenessModel.load(build_model(tmp_path / 'logit.onnx', squash=False))
    assert model.predict(eye_input(0.1)) == pytest.approx(SCALE * eye_input(0.1).mean())
    assert math.isnan(model.predict(eye_input(1.0)))  # logit 3.0
    assert math.isnan(model.predict(eye_input(-1.0)))  # logit -3.0


def test_wrong_input_is_refused(tmp_path: Path) -> None:
    model = LivenessModel.load(build_model(tmp_path / 'probe.onnx'))
    with pytest.raises(ValueError, match='float32'):
        model.predict(np.zeros((1, 2, 48, 48), np.float64))
    with pytest.raises(ValueError, match='float32'):
        model.predict(np.zeros((1, 2, 250, 200), np.float32))


@pytest.mark.parametrize(
    ('expected', 'message'),
    [
        (ModelExpectation(pair='P3'), "trained for pair 'P2', node uses 'P3'"),
        (ModelExpectation(region='face'), "trained for region 'eye', node uses 'face'"),
    ],
)
def test_metadata_contradicting_the_node_is_refused(
    tmp_path: Path, expected: ModelExpectation, message: str
) -> None:
    path = build_model(tmp_path / 'probe.onnx')
    with pytest.raises(ModelLoadError, match=message):
        LivenessModel.load(path, expected=expected)


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'input_shape': ('N', 2, 48, 47)}, r'input shape .* is not \(N, 2, 48, 48\)'),
        ({'input_shape': ('N', 1, 48, 48)}, r'input shape'),
        ({'input_shape': (4, 2, 48, 48)}, r'input shape'),
        ({'output_shape': ('N', 2)}, r'output shape'),
        ({'input_name': 'image'}, r"expected input 'input'"),
        ({'metadata': None}, r"lacks 'antispoof.name'"),
    ],
)
def test_wrong_signature_or_metadata_is_refused(
    tmp_path: Path, kwargs: dict, message: str
) -> None:
    path = build_model(tmp_path / 'odd.onnx', **kwargs)
    with pytest.raises(ModelLoadError, match=message) as error:
        LivenessModel.load(path)
    assert '\n' not in str(error.value)


def test_face_model_with_matching_geometry_loads(tmp_path: Path) -> None:
    metadata = ModelMetadata(name='face_probe', region='face', pair='P1',
                             input_width=FACE_REGION.width, input_height=FACE_REGION.height)
    path = build_model(tmp_path / 'face.onnx', metadata, input_shape=(1, 2, 250, 200))
    model = LivenessModel.load(path, expected=ModelExpectation(pair='P1', region='face'))
    x = np.full((1, 2, 250, 200), -0.2, np.float32)
    # float32 accumulation over 100,000 values: agreement to ~1e-5
    assert model.predict(x) == pytest.approx(expected_probability(x), abs=1e-4)


@pytest.mark.parametrize('content', [None, b'', b'not an onnx model \x00\xff' * 10])
def test_missing_or_corrupt_file_gives_one_line(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / 'model.onnx'
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=str(path)) as error:
        LivenessModel.load(path)
    assert '\n' not in str(error.value)
