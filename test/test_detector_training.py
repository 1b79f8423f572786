"""Training the HOG face detector on synthetic frames, and using it through the backend."""

from pathlib import Path

import numpy as np
import pytest

from antispoof_ros.landmarks.dlib_backend import (
    SYNTHETIC_FACE_DETECTOR,
    DlibBackend,
    backend_for,
)
from antispoof_ros.offline.landmark_training.detector_training import (
    TURNED_POSES,
    face_box_around,
    main,
    render_detection_inputs,
    score_detector,
    train_detector,
    training_options,
)
from antispoof_ros.offline.landmark_training.shape_training import pick_scenarios
from antispoof_ros.offline.synthetic.scene import Pose, Split


def test_training_box_is_a_square_hung_from_the_eye_line() -> None:
    # outer corners 100 px apart on a level eye line at y = 300, centred on x = 500
    # (EyeCornerPoints order: right outer, right inner, left outer, left inner)
    corners = np.array([[450.0, 300], [470, 300], [550, 300], [530, 300]])
    box = face_box_around(corners)
    assert box.width == pytest.approx(220.0) and box.height == pytest.approx(220.0)
    assert box.centre[0] == pytest.approx(500.0)
    assert box.top == pytest.approx(300 - 0.42 * 220)


def test_a_file_that_is_no_detector_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / 'junk.svm'
    junk.write_bytes(b'not a detector')
    with pytest.raises(ValueError, match='not a dlib HOG detector'):
        DlibBackend(detector_path=junk)
    with pytest.raises(FileNotFoundError, match='HOG detector not found'):
        DlibBackend(detector_path=tmp_path / 'missing.svm')


def test_bad_arguments_are_one_line_exit_2(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(['--out', str(tmp_path / 'detector.svm'), '--c', '0'])
    assert exit_info.value.code == 2
    assert '--c must be positive' in capsys.readouterr().err


def test_synthetic_backend_uses_the_shipped_detector() -> None:
    backend = backend_for('synthetic')
    assert 'face_detector_synthetic' in backend.name
    assert (backend.detector.detection_window_width,
            backend.detector.detection_window_height) == (80, 80)
    assert 'face_detector' not in backend_for('five-point').name


@pytest.mark.slow
def test_trained_detector_finds_its_faces_and_rejects_a_wrong_window(tmp_path: Path) -> None:
    scenarios = [s for s in pick_scenarios(Split.TRAIN, 60) if s.pose is Pose.AHEAD][:6]
    samples = render_detection_inputs(scenarios, cycles=1, workers=1, progress=False)
    path = tmp_path / 'detector.svm'
    train_detector(samples, training_options(threads=2, c=5.0)).save(str(path))
    score = score_detector(DlibBackend(detector_path=path), samples)
    assert score.found >= 5 and score.false_detections <= 1

    options = training_options(threads=2, c=5.0)
    options.detection_window_size = 60 * 60
    small = tmp_path / 'small-window.svm'
    train_detector(samples, options).save(str(small))
    with pytest.raises(ValueError, match='detection window'):
        DlibBackend(detector_path=small)


@pytest.mark.slow
def test_shipped_detector_finds_ahead_faces_and_leaves_turned_ones_of_unseen_subjects() -> None:
    ahead = [s for s in pick_scenarios(Split.VALIDATION, 100) if s.pose is Pose.AHEAD][:6]
    turned = pick_scenarios(Split.VALIDATION, 4, poses=TURNED_POSES)
    samples = render_detection_inputs(ahead + turned, cycles=1, workers=1, progress=False)
    trained = score_detector(DlibBackend(detector_path=SYNTHETIC_FACE_DETECTOR), samples)
    assert (trained.frames, trained.turned) == (6, 4)
    assert trained.found >= 5 and trained.false_detections == 0
    assert trained.turned_detected == 0
    assert trained.found > score_detector(DlibBackend(), samples).found
