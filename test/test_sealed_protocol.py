"""The sealed test set: new people and masks, frozen before it is scored, scored once."""

from __future__ import annotations

from dataclasses import astuple
import json
import shutil

import numpy as np
import pytest

from antispoof_ros.offline.evaluation import sealed
from antispoof_ros.offline.evaluation.sealed import SEALED_PROTOCOL
from antispoof_ros.offline.synthetic.face_model import make_identity, make_mask
from antispoof_ros.offline.synthetic.protocol import (
    ProtocolConfig,
    build_protocol,
    restrict_to_splits,
    write_dataset,
)
from antispoof_ros.offline.synthetic.scene import Species, Split
from antispoof_ros.paths import SHIPPED_MODELS

MODEL = SHIPPED_MODELS / 'p2_face.onnx'
ORIGINAL = ProtocolConfig()
TINY = ProtocolConfig(seed=1, subjects=8, masks=12, mask_wearers=1, cycles_live=1,
                      cycles_mask=1, cycles_print=1, prints_nir=1, prints_bw=0, prints_colour=0)


def _fingerprint(model) -> bytes:
    return b''.join(np.asarray(v, dtype=float).tobytes() for v in astuple(model)
                    if isinstance(v, (float, np.ndarray)))


def test_sealed_test_split_holds_two_masks_and_new_people():
    protocol = restrict_to_splits(build_protocol(SEALED_PROTOCOL), [Split.TEST])
    masks = {s.mask_id for s in protocol.scenarios if s.species is Species.MASK}
    subjects = {s.subject_id for s in protocol.scenarios}
    assert len(masks) >= 2 and SEALED_PROTOCOL.masks >= 12
    assert SEALED_PROTOCOL.seed != ORIGINAL.seed  # the seed draws the people and the masks
    seen_masks = {_fingerprint(make_mask(m, ORIGINAL.seed)) for m in range(ORIGINAL.masks)}
    seen_people = {_fingerprint(make_identity(s, ORIGINAL.seed))
                   for s in range(ORIGINAL.subjects)}
    assert all(_fingerprint(make_mask(m, SEALED_PROTOCOL.seed)) not in seen_masks for m in masks)
    assert all(_fingerprint(make_identity(s, SEALED_PROTOCOL.seed)) not in seen_people
               for s in subjects)
    assert 500 <= protocol.n_cycles <= 1500  # a few hundred pairs per kind: minutes to render


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    out = tmp_path_factory.mktemp('sealed') / 'data'
    write_dataset(restrict_to_splits(build_protocol(TINY), [Split.TEST]), out,
                  pylon_scenarios=0, progress=False)
    yield out
    shutil.rmtree(out, ignore_errors=True)


@pytest.mark.slow
def test_freeze_then_score_once(tiny_data, tmp_path):
    record, out = tmp_path / 'freeze.json', tmp_path / 'report'
    frozen = sealed.freeze(MODEL, record)
    assert frozen['threshold_rule'] == 'centre100' and len(frozen['model']['sha256']) == 64
    with pytest.raises(OSError, match='frozen already'):
        sealed.freeze(MODEL, record)
    result = sealed.score(record, tiny_data, tiny_data, out, MODEL, protocol=TINY)
    assert result['frozen']['frozen_utc'] <= result['scored_utc']
    column = result['columns']['sealed']
    assert column['seed'] == 1 and len(column['test_masks']) >= 2
    assert column['bona_fide_count'] > 0 and column['attack_counts']['mask'] > 0
    assert result['columns']['original'] == column  # same data, same frozen model
    saved = json.loads((out / 'sealed.json').read_text())
    assert saved['frozen'] == frozen
    assert '| APCER mask |' in (out / 'sealed.md').read_text()
    with pytest.raises(OSError, match='scored once'):
        sealed.score(record, tiny_data, tiny_data, out, MODEL, protocol=TINY)


@pytest.mark.slow
def test_score_refuses_another_model_or_another_protocol(tiny_data, tmp_path):
    record = tmp_path / 'freeze.json'
    sealed.freeze(MODEL, record)
    with pytest.raises(ValueError, match='not the frozen model'):
        sealed.score(record, tiny_data, tiny_data, tmp_path / 'a',
                     SHIPPED_MODELS / 'p2_eye.onnx', protocol=TINY)
    with pytest.raises(ValueError, match='not rendered from the sealed protocol'):
        sealed.score(record, tiny_data, tiny_data, tmp_path / 'b', MODEL)
    assert not (tmp_path / 'a').exists() and not (tmp_path / 'b').exists()


def test_cli_refuses_a_missing_record_with_one_line(tmp_path, capsys):
    code = sealed.main(['score', '--record', str(tmp_path / 'none.json'), '--original',
                        str(tmp_path), '--sealed', str(tmp_path), '--out', str(tmp_path / 'o')])
    assert code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
