"""camera_calibration YAML files -> Calibration -> sensor_msgs/CameraInfo."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from antispoof_ros.camera.calibration import (
    Calibration,
    CalibrationError,
    calibration_path,
    load_calibration,
)
from antispoof_ros.nodes.messages import camera_info_message, frame_header
from antispoof_ros.paths import SOURCE_TREE

GOOD = Path(__file__).resolve().parent / 'data' / 'camera_info_1920x1200.yaml'


def write(folder: Path, content: object) -> str:
    path = folder / 'calibration.yaml'
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return f'file://{path}'


def good_content() -> dict:
    return yaml.safe_load(GOOD.read_text())


def test_a_camera_calibration_file_is_read_field_for_field() -> None:
    calibration = load_calibration(f'file://{GOOD}')
    assert (calibration.width, calibration.height) == (1920, 1200)
    assert calibration.camera_name == 'nir_camera'
    assert calibration.k == (2450.5, 0.0, 962.25, 0.0, 2451.75, 598.5, 0.0, 0.0, 1.0)
    assert calibration.distortion_model == 'plumb_bob'
    assert calibration.d == (-0.105, 0.221, 0.0004, -0.0002, 0.0)
    assert calibration.r == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert len(calibration.p) == 12 and calibration.p[0] == 2430.0
    assert calibration.calibrated


def test_package_urls_resolve_in_the_package_share_folder() -> None:
    url = 'package://antispoof_ros/test/data/camera_info_1920x1200.yaml'
    assert calibration_path(url) == SOURCE_TREE / 'test' / 'data' / GOOD.name
    assert load_calibration(url).camera_name == 'nir_camera'
    assert calibration_path(url, Path('/share')) == Path('/share/test/data') / GOOD.name


@pytest.mark.parametrize('url', ['http://rig/calibration.yaml', '/plain/path.yaml',
                                 'package://other_package/calibration.yaml'])
def test_other_urls_are_refused_with_the_accepted_forms(url: str) -> None:
    with pytest.raises(CalibrationError, match='use file:///path/to/file.yaml or package://'):
        load_calibration(url)


def test_a_missing_file_names_the_path() -> None:
    with pytest.raises(CalibrationError,
                       match='cannot read calibration file /no/such.yaml: No such file'):
        load_calibration('file:///no/such.yaml')


@pytest.mark.parametrize(
    ('change', 'reason'),
    [
        (lambda c: 'camera_matrix: [1, 2', 'is not valid YAML (line 1)'),
        (lambda c: '- a list', 'expected a mapping'),
        (lambda c: {**c, 'image_width': 'wide'}, "'image_width' must be a positive integer"),
        (lambda c: {k: v for k, v in c.items() if k != 'image_height'},
         "'image_height' must be a positive integer, not None"),
        (lambda c: {k: v for k, v in c.items() if k != 'projection_matrix'},
         "'projection_matrix' must have rows, cols and a data list"),
        (lambda c: {**c, 'camera_matrix': {'rows': 3, 'cols': 3, 'data': [1.0] * 8}},
         "'camera_matrix' has 8 values for 3x3"),
        (lambda c: {**c, 'rectification_matrix': {'rows': 2, 'cols': 3, 'data': [0] * 6}},
         "'rectification_matrix' must be 3x3, not 2x3"),
        (lambda c: {**c, 'distortion_coefficients': {'rows': 1, 'cols': 2, 'data': [0, 'x']}},
         "'distortion_coefficients' must hold numbers only"),
    ],
)
def test_malformed_files_are_refused_in_one_line(tmp_path: Path, change, reason: str) -> None:
    url = write(tmp_path, change(good_content()))
    with pytest.raises(CalibrationError) as caught:
        load_calibration(url)
    message = str(caught.value)
    assert reason in message and str(tmp_path) in message and '\n' not in message


def test_a_calibration_of_another_size_is_refused() -> None:
    with pytest.raises(CalibrationError,
                       match='calibration is for 1920x1200 images but the camera delivers '
                             '960x600'):
        load_calibration(f'file://{GOOD}').check_size(960, 600)
    load_calibration(f'file://{GOOD}').check_size(1920, 1200)


def test_without_a_file_the_intrinsics_are_zero_as_camera_info_manager_reports() -> None:
    calibration = Calibration(width=640, height=480)
    assert not calibration.calibrated
    message = camera_info_message(calibration, frame_header(7))
    assert (message.width, message.height) == (640, 480)
    assert not any(message.k) and not any(message.p) and list(message.d) == []


def test_camera_info_carries_the_image_header_and_the_calibration() -> None:
    calibration = load_calibration(f'file://{GOOD}')
    header = frame_header(1_500_000_123, frame_id='nir')
    message = camera_info_message(calibration, header)
    assert message.header == header
    assert (message.width, message.height) == (1920, 1200)
    assert tuple(message.k) == calibration.k and tuple(message.d) == calibration.d
    assert tuple(message.r) == calibration.r and tuple(message.p) == calibration.p
    assert message.distortion_model == 'plumb_bob'
