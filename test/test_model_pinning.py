"""Pinned models: a file runs only with the sha256 its card (or expected_sha256) records."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
import shutil

from node_process import start_node
from onnx_models import build_model
import pytest

from antispoof_ros.liveness.inference import LivenessModel, ModelExpectation, ModelLoadError
from antispoof_ros.liveness.model_metadata import card_sha256, find_model_card
from antispoof_ros.paths import SHIPPED_MODELS

SHIPPED = ('p2_face', 'p2_eye')


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_shipped(name: str, folder: Path, flip_byte_at: int | None = None) -> Path:
    """A copy of a shipped model and its card; one byte of the model inverted if asked."""
    model = folder / f'{name}.onnx'
    shutil.copyfile(SHIPPED_MODELS / f'{name}.onnx', model)
    shutil.copyfile(SHIPPED_MODELS / f'{name}.model_card.json', folder / f'{name}.model_card.json')
    if flip_byte_at is not None:
        content = bytearray(model.read_bytes())
        content[flip_byte_at % len(content)] ^= 0xFF
        model.write_bytes(bytes(content))
    return model


@pytest.mark.parametrize('name', SHIPPED)
def test_every_shipped_model_is_pinned_by_its_card(name: str) -> None:
    path = SHIPPED_MODELS / f'{name}.onnx'
    card = find_model_card(path)
    assert card == SHIPPED_MODELS / f'{name}.model_card.json'
    assert card_sha256(card) == sha256_of(path)
    model = LivenessModel.load(path, allow_unpinned=False)
    assert model.pinned_by == (card.name,) and model.label == model.metadata.name


@pytest.mark.parametrize('name', SHIPPED)
@pytest.mark.parametrize('where', [0, 1000, -1])
def test_one_flipped_byte_is_refused_before_it_is_parsed(tmp_path: Path, name: str,
                                                         where: int) -> None:
    model = copy_shipped(name, tmp_path, flip_byte_at=where)
    with pytest.raises(ModelLoadError, match=f'{name}.model_card.json: refusing') as refused:
        LivenessModel.load(model)
    assert '\n' not in str(refused.value) and str(model) in str(refused.value)


def test_expected_sha256_pins_too_and_must_agree(tmp_path: Path) -> None:
    model = build_model(tmp_path / 'probe.onnx')
    sha256 = sha256_of(model)
    pinned = LivenessModel.load(model, expected=ModelExpectation(sha256=sha256),
                                allow_unpinned=False)
    assert pinned.pinned_by == ('expected_sha256',) and pinned.label == 'mean_probe'
    with pytest.raises(ModelLoadError, match='expected_sha256: refusing'):
        LivenessModel.load(model, expected=ModelExpectation(sha256='0' * 64))
    # a shipped model whose card agrees, but not the caller
    shipped = SHIPPED_MODELS / 'p2_face.onnx'
    with pytest.raises(ModelLoadError, match='expected_sha256'):
        LivenessModel.load(shipped, expected=ModelExpectation(sha256=sha256))
    with pytest.raises(ValueError, match='64 lowercase hex digits'):
        ModelExpectation(sha256='abc')


def test_a_model_without_a_card_needs_allow_unpinned(tmp_path: Path) -> None:
    model = build_model(tmp_path / 'probe.onnx')
    with pytest.raises(ModelLoadError, match='is not pinned') as refused:
        LivenessModel.load(model, allow_unpinned=False)
    assert '\n' not in str(refused.value)
    unpinned = LivenessModel.load(model)
    assert not unpinned.pinned and unpinned.label == 'mean_probe (unpinned)'


def test_a_training_runs_card_pins_the_model_it_names(tmp_path: Path) -> None:
    model = build_model(tmp_path / 'model.onnx')
    card = tmp_path / 'model_card.json'
    card.write_text(json.dumps({'model': {'file': 'model.onnx', 'sha256': sha256_of(model)}}))
    assert LivenessModel.load(model, allow_unpinned=False).pinned_by == ('model_card.json',)
    other = build_model(tmp_path / 'other.onnx', bias=1.0)
    assert find_model_card(other) is None  # the run's card names model.onnx only
    card.write_text(json.dumps({'model': {'file': 'model.onnx'}}))  # a card of old: no hash
    assert not LivenessModel.load(model).pinned


@pytest.mark.parametrize(('card', 'message'), [
    ('{"model": {"file": "model.onnx", "sha256": "beef"}}', 'is no sha256'),
    ('{"model": ', 'is not valid JSON'),
    ('[]', "has no 'model' section"),
])
def test_an_unreadable_card_is_one_line(tmp_path: Path, card: str, message: str) -> None:
    model = build_model(tmp_path / 'probe.onnx')
    (tmp_path / 'probe.model_card.json').write_text(card)
    with pytest.raises(ModelLoadError, match=message) as refused:
        LivenessModel.load(model)
    assert '\n' not in str(refused.value)


@pytest.mark.ros
@pytest.mark.slow
def test_liveness_node_refuses_a_shipped_model_with_one_flipped_byte(tmp_path: Path) -> None:
    model = copy_shipped('p2_face', tmp_path, flip_byte_at=4096)
    node = start_node('liveness_node', '--ros-args', '-p', f'model_path:={model}')
    code = node.wait(timeout=30)
    lines = [line for line in node.lines if line.strip()]
    assert code == 2 and len(lines) == 1, node.output
    assert lines[0].startswith(f'[ERROR] liveness_node: configuration error: {model} has '
                               'sha256 ')
    assert 'of its p2_face.model_card.json: refusing to run it' in lines[0]
    print(lines[0])  # quoted in the notes of the change


@pytest.mark.ros
@pytest.mark.slow
def test_liveness_node_refuses_an_unpinned_model_unless_allowed(tmp_path: Path) -> None:
    model = copy_shipped('p2_face', tmp_path)
    (tmp_path / 'p2_face.model_card.json').unlink()
    node = start_node('liveness_node', '--ros-args', '-p', f'model_path:={model}')
    code = node.wait(timeout=30)
    lines = [line for line in node.lines if line.strip()]
    assert code == 2 and len(lines) == 1, node.output
    assert lines[0] == (f'[ERROR] liveness_node: configuration error: {model} is not pinned: '
                        'no model card with its sha256 beside it and no expected sha256 given')
