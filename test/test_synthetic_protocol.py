"""Synthetic dataset protocol: splits, determinism, atomic output and the command line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np
import pytest

from antispoof_ros.offline.synthetic import protocol as protocol_module
from antispoof_ros.offline.synthetic.protocol import (
    ProtocolConfig,
    build_protocol,
    restrict_to_splits,
    split_scenarios,
    write_dataset,
)
from antispoof_ros.offline.synthetic.render import render_cycle
from antispoof_ros.offline.synthetic.scene import Species, Split

SMALL = ['--species', 'live,print', '--subjects', '2', '--cycles-live', '1', '--cycles-print',
         '1', '--prints-nir', '1', '--prints-bw', '0', '--prints-colour', '0',
         '--pylon-scenarios', '1', '--pylon-cycles', '1', '--no-progress']


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', 'antispoof_ros.offline.synthetic.protocol', *args],
        capture_output=True, text=True, timeout=120)


def test_default_protocol_mirrors_the_thesis_and_has_about_20000_cycles():
    protocol = build_protocol(ProtocolConfig())
    assert 19_000 <= protocol.n_cycles <= 21_000
    live = [s for s in protocol.scenarios if s.species is Species.LIVE]
    assert len(live) == 40 * 3 * 4
    prints = [s for s in protocol.scenarios if s.species is Species.PRINT]
    assert {s.lighting.value for s in prints} == {'office'}
    assert {s.print_kind.value for s in prints} == {'nir', 'bw', 'colour'}
    masks = [s for s in protocol.scenarios if s.species is Species.MASK]
    assert {s.mask_id for s in masks} == set(range(6))
    assert all(len({(s.lighting, s.pose) for s in masks if s.mask_id == m
                    and s.subject_id == w}) == 12 for m, w in {(s.mask_id, s.subject_id)
                                                               for s in masks})


@pytest.mark.parametrize('seed', [0, 1, 7])
def test_splits_are_subject_and_mask_disjoint(seed):
    protocol = build_protocol(ProtocolConfig(seed=seed))
    groups = split_scenarios(protocol.scenarios)
    subjects = {split: {s.subject_id for s in specs} for split, specs in groups.items()}
    masks = {split: {s.mask_id for s in specs if s.mask_id is not None}
             for split, specs in groups.items()}
    for a, b in ((Split.TRAIN, Split.VALIDATION), (Split.TRAIN, Split.TEST),
                 (Split.VALIDATION, Split.TEST)):
        assert not subjects[a] & subjects[b]  # mask wearers included
        assert not masks[a] & masks[b]
    assert masks[Split.VALIDATION] and masks[Split.TEST] and masks[Split.TRAIN]
    assert all(subjects[split] for split in Split)


def test_protocol_is_deterministic_by_seed():
    first, again = build_protocol(ProtocolConfig(seed=3)), build_protocol(ProtocolConfig(seed=3))
    other = build_protocol(ProtocolConfig(seed=4))
    assert first.scenarios == again.scenarios
    assert first.plan.subjects != other.plan.subjects


def test_seed_0_default_protocol_is_the_one_the_shipped_models_were_made_from():
    """Scenario list fingerprint of the data behind the shipped models (19,920 cycles)."""
    protocol = build_protocol(ProtocolConfig())
    text = json.dumps([s.as_dict() for s in protocol.scenarios], sort_keys=True)
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == '8e8a4cb40000ac7d'
    assert protocol.n_cycles == 19_920


@pytest.mark.parametrize('seed', [0, 1, 5])
def test_twelve_masks_put_at_least_two_worn_masks_into_the_test_split(seed):
    protocol = build_protocol(ProtocolConfig(seed=seed, masks=12))
    test = split_scenarios(protocol.scenarios)[Split.TEST]
    worn = {s.mask_id for s in test if s.species is Species.MASK}
    assert len(worn) >= 2
    assert worn == {m for m, split in protocol.plan.masks.items() if split is Split.TEST}


def test_restricting_to_a_split_keeps_its_scenarios_and_the_plan():
    full = build_protocol(ProtocolConfig(seed=1, masks=12))
    test = restrict_to_splits(full, [Split.TEST])
    assert test.plan == full.plan
    assert test.scenarios == split_scenarios(full.scenarios)[Split.TEST]


def test_cli_renders_only_the_chosen_split_with_the_same_pixels(tmp_path):
    out = tmp_path / 'data'
    args = ['--seed', '2', '--species', 'live', '--subjects', '7', '--cycles-live', '1',
            '--pylon-scenarios', '0', '--workers', '1', '--no-progress']
    result = run_cli('--out', str(out), '--splits', 'test', *args)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['rendered_splits'] == ['test']
    config = ProtocolConfig(seed=2, subjects=7, cycles_live=1, species=(Species.LIVE,))
    expected = split_scenarios(build_protocol(config).scenarios)[Split.TEST]
    assert [s['scenario_id'] for s in manifest['scenarios']] == [s.scenario_id for s in expected]
    with np.load(out / manifest['shards'][0]['file']) as shard:
        assert set(shard['split'].tolist()) == {Split.TEST.code}
        assert np.array_equal(shard['frames'][0], render_cycle(expected[0], 0, root_seed=2).frames)
    bad = run_cli('--out', str(tmp_path / 'never'), '--splits', 'holdout', *args)
    assert bad.returncode == 2 and 'unknown split' in bad.stderr


def test_cli_writes_shards_pylon_folders_and_manifest(tmp_path):
    out = tmp_path / 'data'
    result = run_cli('--out', str(out), '--seed', '2', *SMALL)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / 'manifest.json').read_text())
    assert manifest['n_cycles'] == 2 * 12 + 2
    with np.load(out / manifest['shards'][0]['file']) as shard:
        assert shard['frames'].shape == (26, 4, 256, 224)
        assert shard['corners'].shape == (26, 4, 4, 2)
        assert shard['label'].sum() == 24
    folder = out / manifest['pylon_folders'][0]
    names = sorted(p.name for p in folder.glob('*.png'))
    assert names == ['000000_dark.png', '000001_front.png', '000002_right.png', '000003_left.png']
    assert cv2.imread(str(folder / names[1]), cv2.IMREAD_UNCHANGED).shape == (1200, 1920)
    assert not list(out.glob('.staging*')) and not list(out.rglob('*.tmp'))
    again = run_cli('--out', str(out), *SMALL)  # never mixes two datasets
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize('bad, message', [
    (['--species', 'live,hologram'], 'unknown species'),
    (['--subjects', '-3'], 'must not be negative'),
    (['--out-of-range'], 'unrecognized arguments'),
])
def test_bad_input_gives_one_error_line_and_exit_2(tmp_path, bad, message):
    out = tmp_path / 'never'
    result = run_cli('--out', str(out), *bad)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert not out.exists()


def test_unwritable_output_gives_one_error_line_and_exit_2(tmp_path):
    blocker = tmp_path / 'file.txt'
    blocker.write_text('not a directory')
    result = run_cli('--out', str(blocker / 'data'), *SMALL)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and 'error' in result.stderr
    assert blocker.read_text() == 'not a directory'


def test_interrupted_run_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    calls = []
    real = protocol_module.render_cycle

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(protocol_module, 'render_cycle', failing)
    config = ProtocolConfig(subjects=1, cycles_live=1, species=(Species.LIVE,))
    with pytest.raises(KeyboardInterrupt):
        write_dataset(build_protocol(config), tmp_path / 'out', shard_size=2, progress=False)
    assert len(calls) == 6
    assert sorted(Path(tmp_path / 'out').iterdir()) == []


PARALLEL_CHECK = '''
import numpy as np
from antispoof_ros.offline.synthetic.protocol import ProtocolConfig, build_protocol, iter_cycles
config = ProtocolConfig(subjects=3, masks=3, mask_wearers=1, cycles_live=1, cycles_mask=1,
                        cycles_print=1)
specs = build_protocol(config).scenarios[::9][:6]
serial = [c.frames for c in iter_cycles(specs, workers=1)]  # OpenCV threads now running
parallel = [c.frames for c in iter_cycles(specs, workers=2)]
print(all(np.array_equal(a, b) for a, b in zip(serial, parallel, strict=True)))
'''


def test_parallel_rendering_matches_serial_and_does_not_hang():
    """Workers must give the same cycles, even when the parent process rendered before."""
    result = subprocess.run([sys.executable, '-c', PARALLEL_CHECK], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'True'
