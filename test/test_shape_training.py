"""Training the four-corner shape model, and using it through the landmark backend."""

from pathlib import Path

import numpy as np
import pytest

from antispoof_ros.landmarks.dlib_backend import SYNTHETIC_CORNER_MODEL, DlibBackend, backend_for
from antispoof_ros.offline.landmark_training.shape_training import (
    REFINE_JITTER,
    corner_errors,
    main,
    pick_scenarios,
    refinement_samples,
    render_samples,
    train_predictor,
    training_options,
)
from antispoof_ros.offline.synthetic.scene import Pose, Split


def test_scenarios_come_from_one_split_only() -> None:
    training = pick_scenarios(Split.TRAIN, 50)
    validation = pick_scenarios(Split.VALIDATION, 50)
    assert len(training) == 50 and all(s.split is Split.TRAIN for s in training)
    assert {s.subject_id for s in training}.isdisjoint({s.subject_id for s in validation})
    assert pick_scenarios(Split.TRAIN, 50) == training  # seeded


def test_a_file_that_is_no_shape_model_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / 'junk.dat'
    junk.write_bytes(b'not a model')
    with pytest.raises(ValueError, match='not a dlib shape predictor'):
        DlibBackend(junk)
    with pytest.raises(FileNotFoundError):
        DlibBackend(tmp_path / 'missing.dat')


def test_bad_arguments_are_one_line_exit_2(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(['--out', str(tmp_path / 'no' / 'such' / 'folder.dat')])
    assert exit_info.value.code == 2
    assert 'no such folder' in capsys.readouterr().err


@pytest.mark.slow
def test_trained_corner_model_fits_its_faces_and_loads_as_a_backend(tmp_path: Path) -> None:
    frontal = [s for s in pick_scenarios(Split.TRAIN, 60)
               if s.pose in (Pose.CAMERA, None)][:8]
    samples, _ = render_samples(frontal, progress=False)
    assert len(samples) >= 4, 'the detector should find most frontal synthetic faces'
    path = tmp_path / 'corners.dat'
    train_predictor(samples, training_options(threads=2)).save(str(path))

    backend = DlibBackend(path)
    assert backend.corner_parts == (0, 1, 2, 3)
    errors = corner_errors(backend, samples)
    assert errors.shape == (4 * len(samples),)
    assert np.median(errors) < 2.0  # fitted to these very faces
    assert np.median(errors) < np.median(corner_errors(DlibBackend(), samples))

    # the second stage: trained on boxes placed by the true corners, fitted in the box the
    # first stage's corners place
    refine = tmp_path / 'refine.dat'
    train_predictor(refinement_samples(samples),
                    training_options(threads=2, jitter=REFINE_JITTER)).save(str(refine))
    refined = corner_errors(DlibBackend(path, refine_path=refine), samples)
    assert np.median(refined) < 2.0
    with pytest.raises(ValueError, match='two 4-part corner models'):
        DlibBackend(refine_path=refine)  # the 5-point model cannot be refined


def test_shipped_corner_model_is_a_four_part_model() -> None:
    backend = DlibBackend(SYNTHETIC_CORNER_MODEL)
    assert backend.corner_parts == (0, 1, 2, 3)
    assert 'eye_corners_synthetic' in backend.name
    assert backend_for('synthetic').name.endswith('eye_corners_synthetic+refine')
