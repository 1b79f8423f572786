"""Dataset cache, splits, augmentation, thresholds and the training command on tiny data."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import Phase
from antispoof_ros.liveness.alignment import EYE_REGION, FACE_REGION, align_pair
from antispoof_ros.offline.model.export import read_onnx_metadata
from antispoof_ros.offline.training import train as train_cli
from antispoof_ros.offline.training.augment import AugmentationSettings, augment_batch
from antispoof_ros.offline.training.checkpoint import load_checkpoint
from antispoof_ros.offline.training.dataset import (
    FrameCycle,
    build_pair_dataset,
    load_pair_dataset,
)
from antispoof_ros.offline.training.splits import split_by_subject_and_mask

FRAME_SHAPE = (240, 320)
# A tilted, enlarged face: outer corners 130 px apart at about 11 degrees.
TILTED_CORNERS = EyeCornerPoints(
    right_outer=(95.0, 100.0), right_inner=(135.0, 108.0),
    left_outer=(222.6, 125.4), left_inner=(183.0, 117.0),
)
PHASE_BRIGHTNESS = {Phase.DARK: 40, Phase.FRONT: 200, Phase.RIGHT: 120, Phase.LEFT: 80}


def corner_blobs(corners: EyeCornerPoints, brightness: int) -> np.ndarray:
    """Dark frame with a small bright spot on each eye corner."""
    frame = np.zeros(FRAME_SHAPE, np.float32)
    for x, y in corners.as_array():
        cv2.circle(frame, (round(x), round(y)), 3, 1.0, -1)
    return np.rint(cv2.GaussianBlur(frame, (0, 0), 1.5) / frame.max() * brightness).astype(
        np.uint8
    )


def peak(channel: np.ndarray, x: float, y: float, radius: int = 6) -> tuple[float, float]:
    """Location of the brightest pixel within ``radius`` of (x, y)."""
    x0, y0 = round(x) - radius, round(y) - radius
    window = channel[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1]
    row, col = np.unravel_index(np.argmax(window), window.shape)
    return x0 + col, y0 + row


def blob_cycle(label: int = 1, subject: str = 's0', **info: str) -> FrameCycle:
    frames = {phase: corner_blobs(TILTED_CORNERS, level)
              for phase, level in PHASE_BRIGHTNESS.items()}
    return FrameCycle(frames, TILTED_CORNERS, label, 'live' if label else 'print', subject,
                      **info)


def textured_cycle(rng: np.random.Generator, label: int, subject: str,
                   mask_id: str = '') -> FrameCycle:
    """Noise frames where a live face answers each flash differently, a print does not."""
    height, width = 120, 160
    ramp = np.linspace(0.5, 1.5, width)[np.newaxis, :]
    frames = {}
    for phase in Phase:
        shading = (ramp if phase == Phase.RIGHT else ramp[:, ::-1]) if label else 1.0
        base = rng.uniform(40, 120, (height, width)) * shading
        frames[phase] = np.clip(base, 0, 255).astype(np.uint8)
    corners = EyeCornerPoints((50.0, 60.0), (70.0, 60.0), (110.0, 60.0), (90.0, 60.0))
    species = 'mask' if mask_id else ('live' if label else 'print')
    return FrameCycle(frames, corners, label, species, subject, mask_id=mask_id,
                      lighting='lab', pose='frontal', source_id=f'{subject}-{label}')


@pytest.fixture(scope='module')
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eye-region P2 cache: six subjects, two live and two print cycles each."""
    rng = np.random.default_rng(7)
    cycles = [textured_cycle(rng, label, f'subject{s}')
              for s in range(6) for label in (1, 1, 0, 0)]
    dataset = build_pair_dataset(cycles, pair='P2', region='eye')
    return dataset.save(tmp_path_factory.mktemp('data') / 'tiny.npz')


# --- dataset -----------------------------------------------------------------------------

def test_cached_face_crop_has_corners_where_alignment_puts_them(tmp_path: Path) -> None:
    cycle = blob_cycle()
    dataset = build_pair_dataset([cycle], pair='P2', region='face', corner_source='ground_truth')
    loaded = load_pair_dataset(dataset.save(tmp_path / 'face.npz'))
    crop = loaded.crops[0]
    assert crop.shape == (FACE_REGION.height, FACE_REGION.width, 2) and crop.dtype == np.uint8
    for target in (FACE_REGION.target_a, FACE_REGION.target_b):
        for channel in (0, 1):
            found = peak(crop[..., channel].astype(float), *target)
            assert np.hypot(found[0] - target[0], found[1] - target[1]) <= 1.0
    # Channel 0 is the pair's first frame (front flash), channel 1 the second (right flash).
    x, y = (round(v) for v in FACE_REGION.target_a)
    assert crop[y, x, 0] > crop[y, x, 1] > 0
    expected = align_pair(cycle.frames[Phase.FRONT], cycle.frames[Phase.RIGHT],
                          TILTED_CORNERS, FACE_REGION)
    np.testing.assert_allclose(crop, expected, atol=0.5)


def test_left_eye_crop_is_mirrored_onto_the_same_targets() -> None:
    cycle = blob_cycle()
    dataset = build_pair_dataset([cycle], pair='P3', region='eye', eye='left')
    crop = dataset.crops[0].astype(float)
    # Outer corner left (target_a), inner corner right (target_b), as for the right eye.
    for target in (EYE_REGION.target_a, EYE_REGION.target_b):
        found = peak(crop[..., 0], *target, radius=4)
        assert np.hypot(found[0] - target[0], found[1] - target[1]) <= 1.0
    expected = align_pair(cycle.frames[Phase.RIGHT], cycle.frames[Phase.LEFT], TILTED_CORNERS,
                          EYE_REGION, 'left')
    np.testing.assert_allclose(crop, expected, atol=0.5)


def test_cache_keeps_labels_metadata_and_corner_source(tmp_path: Path) -> None:
    cycles = [blob_cycle(1, 'anna', mask_id='', lighting='sun', pose='left', source_id='bag1'),
              blob_cycle(0, 'ben', mask_id='m2', lighting='dark', pose='up', source_id='bag2')]
    dataset = build_pair_dataset(cycles, pair='P1', region='eye',
                                 corner_source='landmark_detector', crop_dtype='float16')
    loaded = load_pair_dataset(dataset.save(tmp_path / 'c.npz'))
    assert loaded.crops.dtype == np.float16 and loaded.labels.tolist() == [1, 0]
    assert loaded.info['subject_id'].tolist() == ['anna', 'ben']
    assert loaded.info['mask_id'].tolist() == ['', 'm2']
    assert loaded.info['lighting'].tolist() == ['sun', 'dark']
    assert loaded.info['source_id'].tolist() == ['bag1', 'bag2']
    assert (loaded.pair, loaded.region, loaded.corner_source) == ('P1', 'eye',
                                                                  'landmark_detector')
    assert loaded.data_id == dataset.data_id
    np.testing.assert_array_equal(loaded.corners[0], TILTED_CORNERS.as_array())
    relabelled = build_pair_dataset(cycles[::-1], pair='P1', region='eye',
                                    corner_source='landmark_detector', crop_dtype='float16')
    assert relabelled.data_id != dataset.data_id


def test_cycles_without_corners_are_skipped_and_counted() -> None:
    nan = (float('nan'), float('nan'))
    lost = FrameCycle(blob_cycle().frames, EyeCornerPoints(nan, nan, nan, nan), 1, 'live', 's')
    dataset = build_pair_dataset([blob_cycle(), lost], region='eye')
    assert len(dataset) == 1 and dataset.skipped_cycles == 1


def test_bad_cycles_are_rejected_with_a_reason(tmp_path: Path) -> None:
    frames = blob_cycle().frames
    no_right = FrameCycle({Phase.FRONT: frames[Phase.FRONT]}, TILTED_CORNERS, 1, 'live', 's')
    with pytest.raises(ValueError, match='no right frame'):
        build_pair_dataset([no_right], pair='P2', region='eye')
    deep = FrameCycle({p: f.astype(np.uint16) * 16 for p, f in frames.items()},
                      TILTED_CORNERS, 1, 'live', 's')
    with pytest.raises(ValueError, match='need crop_dtype float16'):
        build_pair_dataset([deep], region='eye', crop_dtype='uint8')
    with pytest.raises(ValueError, match='label must be'):
        build_pair_dataset([FrameCycle(frames, TILTED_CORNERS, 2, 'live', 's')], region='eye')
    with pytest.raises(ValueError, match="species must be 'live' exactly for label 1"):
        build_pair_dataset([FrameCycle(frames, TILTED_CORNERS, 0, 'live', 's')], region='eye')
    with pytest.raises(ValueError, match="unknown pair configuration 'P9'"):
        build_pair_dataset([blob_cycle()], pair='P9')
    with pytest.raises(FileNotFoundError, match='not found'):
        load_pair_dataset(tmp_path / 'missing.npz')
    (tmp_path / 'other.npz').write_bytes(b'not a zip')
    with pytest.raises(ValueError, match='is not a dataset cache'):
        load_pair_dataset(tmp_path / 'other.npz')


def test_saving_into_a_missing_directory_leaves_nothing(tmp_path: Path) -> None:
    dataset = build_pair_dataset([blob_cycle()], region='eye')
    with pytest.raises(FileNotFoundError):
        dataset.save(tmp_path / 'nope' / 'c.npz')
    assert list(tmp_path.iterdir()) == []


# --- splits ------------------------------------------------------------------------------

def test_splits_share_no_subject_and_no_mask() -> None:
    subjects = np.repeat([f's{i}' for i in range(10)], 6)
    masks = np.tile(['', '', 'mA', 'mB', 'mC', 'mD'], 10)
    plan = split_by_subject_and_mask(subjects, masks, 0.2, 0.2, 1, 1, seed=3)
    members = {name: set(subjects[idx]) for name, idx in plan.indices.items()}
    worn = {name: set(masks[idx]) - {''} for name, idx in plan.indices.items()}
    for first, second in (('train', 'validation'), ('train', 'test'), ('validation', 'test')):
        assert not members[first] & members[second]
        assert not worn[first] & worn[second]
    assert len(plan.masks['validation']) == 1 and len(plan.masks['test']) == 1
    assert worn['validation'] == set(plan.masks['validation'])
    assert len(plan.subjects['validation']) == 2 and len(plan.subjects['train']) == 6
    used = np.concatenate(list(plan.indices.values()))
    assert len(used) == len(set(used.tolist())) == len(subjects) - plan.dropped
    # Exactly the mask samples whose mask sits in another split than their wearer are dropped.
    subject_split = {s: n for n, ids in plan.subjects.items() for s in ids}
    mask_split = {m: n for n, ids in plan.masks.items() for m in ids}
    expected_drops = sum(1 for s, m in zip(subjects, masks, strict=True)
                         if m and mask_split[m] != subject_split[s])
    assert plan.dropped == expected_drops > 0
    again = split_by_subject_and_mask(subjects, masks, 0.2, 0.2, 1, 1, seed=3)
    assert again.subjects == plan.subjects and again.masks == plan.masks


def test_split_refuses_what_it_cannot_fill() -> None:
    with pytest.raises(ValueError, match='2 subjects cannot fill'):
        split_by_subject_and_mask(['a', 'b'], ['', ''], 0.3, 0.3, 0, 0)
    with pytest.raises(ValueError, match='2 masks cannot fill'):
        split_by_subject_and_mask(list('abcde'), ['m1', 'm2', '', '', ''], 0.2, 0.2, 1, 1)
    with pytest.raises(ValueError, match='test masks need a test split'):
        split_by_subject_and_mask(list('abc'), [''] * 3, 0.3, 0.0, 0, 1)


# --- augmentation ------------------------------------------------------------------------

def test_augmentation_moves_content_but_keeps_the_pair_registered() -> None:
    crops = np.zeros((4, 48, 48, 2), np.uint8)
    crops[:, 20:28, 10:18, :] = 200
    rng = np.random.default_rng(0)
    augmented = augment_batch(crops, AugmentationSettings(), rng)
    assert augmented.shape == crops.shape and augmented.dtype == np.float32
    np.testing.assert_array_equal(augmented[..., 0], augmented[..., 1])
    assert not np.allclose(augmented, crops)
    assert len({augmented[i].tobytes() for i in range(4)}) == 4  # a transform per sample
    still = augment_batch(crops, AugmentationSettings(0.0, 0.0, 0.0), rng)
    np.testing.assert_array_equal(still, crops.astype(np.float32))


# --- training command --------------------------------------------------------------------

def tiny_args(cache: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    return ['--data', str(cache), '--out', str(out), '--epochs', str(epochs), '--seed', '5',
            '--batch-size', '4', '--max-steps', '2', '--validation-fraction', '0.34',
            '--test-fraction', '0.17', *extra]


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_run(tiny_cache: Path, tmp_path: Path) -> None:
    assert train_cli.main(tiny_args(tiny_cache, tmp_path / 'straight', 2)) == 0
    assert train_cli.main(tiny_args(tiny_cache, tmp_path / 'resumed', 1)) == 0
    after_first = load_checkpoint(tmp_path / 'resumed' / 'checkpoint.pt')
    assert after_first['epoch'] == 1
    assert train_cli.main(tiny_args(tiny_cache, tmp_path / 'resumed', 2, '--resume')) == 0
    straight = load_checkpoint(tmp_path / 'straight' / 'checkpoint.pt')
    resumed = load_checkpoint(tmp_path / 'resumed' / 'checkpoint.pt')
    assert straight['epoch'] == resumed['epoch'] == 2
    for name, tensor in straight['model'].items():
        assert torch.equal(tensor, resumed['model'][name]), name
    assert not torch.equal(straight['model']['logits.weight'],
                           after_first['model']['logits.weight'])  # epoch 2 did train
    assert straight['history'] == resumed['history']
    assert straight['rng']['numpy'] == resumed['rng']['numpy']

    run = tmp_path / 'resumed'
    rows = json.loads((run / 'history.json').read_text())
    assert [r['epoch'] for r in rows] == [1, 2]
    assert set(rows[0]) == set(train_cli.HISTORY_FIELDS)
    card = json.loads((run / 'model_card.json').read_text())
    dataset = load_pair_dataset(tiny_cache)
    metadata = read_onnx_metadata(run / 'model.onnx')
    assert metadata.training_data_id == card['data']['data_id'] == dataset.data_id
    assert (metadata.region, metadata.pair, metadata.input_width) == ('eye', 'P2', 48)
    assert metadata.threshold == card['threshold']['value']
    assert card['threshold']['target'] == 'bpcer100'
    assert card['metrics']['validation']['threshold'] == metadata.threshold
    assert card['training']['seed'] == 5 and card['training']['epochs_run'] == 2
    assert set(card['metrics']) == {'validation', 'test'}
    assert sum(card['splits']['samples'].values()) == len(dataset)
    assert sorted(p.name for p in run.iterdir()) == [
        'checkpoint.pt', 'history.json', 'model.onnx', 'model_card.json'
    ]


def test_missing_data_file_is_one_line_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, '-m', 'antispoof_ros.offline.training.train', '--data',
         str(tmp_path / 'missing.npz'), '--out', str(tmp_path / 'run'), '--epochs', '1'],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count('\n') == 1 and 'missing.npz not found' in result.stderr
    assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize(('flag', 'value', 'message'), [
    ('--epochs', '-3', 'must be a positive integer'),
    ('--batch-size', '0', 'must be a positive integer'),
    ('--threshold-target', 'best', 'neither one of'),
    ('--min-lr', '-1', 'must be within [0, 1]'),
])
def test_bad_arguments_are_one_line_exit_2(
    tiny_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    flag: str, value: str, message: str,
) -> None:
    argv = tiny_args(tiny_cache, tmp_path / 'run', 1) + [flag, value]
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and message in err
    assert not (tmp_path / 'run').exists()


def test_resume_without_checkpoint_and_unsplittable_data_are_refused(
    tiny_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train_cli.main(tiny_args(tiny_cache, tmp_path / 'run', 1, '--resume')) == 2
    assert 'no checkpoint' in capsys.readouterr().err
    one_subject = build_pair_dataset([blob_cycle(1), blob_cycle(0)], region='eye')
    cache = one_subject.save(tmp_path / 'one.npz')
    assert train_cli.main(tiny_args(cache, tmp_path / 'run', 1)) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'subjects cannot fill' in err
    assert not (tmp_path / 'run').exists()


def test_splits_given_by_the_data_are_used_and_checked() -> None:
    from antispoof_ros.offline.training.splits import splits_from_labels

    plan = splits_from_labels(['train', 'train', 'validation', 'test'],
                              ['s1', 's1', 's2', 's3'], ['', 'm1', 'm2', ''])
    assert {k: v.tolist() for k, v in plan.indices.items()} == {
        'train': [0, 1], 'validation': [2], 'test': [3]}
    assert plan.masks['validation'] == ('m2',)
    with pytest.raises(ValueError, match='subject s1 is in both train and test'):
        splits_from_labels(['train', 'test'], ['s1', 's1'], ['', ''])
    with pytest.raises(ValueError, match='mask m1 is in both'):
        splits_from_labels(['train', 'validation'], ['s1', 's2'], ['m1', 'm1'])


def test_batch_norm_recalibration_gives_the_statistics_of_the_current_weights() -> None:
    from types import SimpleNamespace

    from antispoof_ros.offline.model.mobilenetv2 import MobileNetV2Classifier, keras_named_layers
    from antispoof_ros.offline.training.train import _to_tensor, recalibrate_batch_norm

    torch.manual_seed(0)
    model = MobileNetV2Classifier()
    crops = np.random.default_rng(0).integers(0, 255, (48, 48, 48, 2)).astype(np.uint8)
    norm = keras_named_layers(model)['bn_Conv1']
    seen: list[torch.Tensor] = []
    hook = norm.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    model.eval()
    with torch.no_grad():
        model(_to_tensor(crops.astype(np.float32), torch.device('cpu')))
    hook.remove()
    expected_mean = seen[0].mean(dim=(0, 2, 3))

    recalibrate_batch_norm(model, SimpleNamespace(crops=crops), np.arange(48),
                           torch.device('cpu'), batch_size=16)
    torch.testing.assert_close(norm.running_mean, expected_mean, atol=1e-5, rtol=1e-4)
    assert norm.momentum == pytest.approx(0.001)  # Keras momentum back for training
