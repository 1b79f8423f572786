"""The node executables: start from a params file, report parameters, stay off the network,
exit 0 on SIGINT, and refuse bad parameter files with a one-line error."""

from __future__ import annotations

from pathlib import Path

from node_process import REPO, internet_sockets, start_node
from onnx_models import constant_face_model
import pytest
import yaml

pytestmark = pytest.mark.ros

PARAMS = REPO / 'config' / 'antispoof.yaml'
EXECUTABLES = {
    'camera_node': ['camera_node'],
    'landmark_node': ['landmark_node'],
    'liveness_node': ['liveness_node'],
    'antispoof_pipeline': ['camera_node', 'landmark_node', 'liveness_node'],
}


@pytest.fixture(scope='module')
def params_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """config/antispoof.yaml with a test model for the liveness node."""
    folder = tmp_path_factory.mktemp('params')
    params = yaml.safe_load(PARAMS.read_text())
    model = constant_face_model(folder / 'model.onnx', probability_logit=0.0)
    params['liveness_node']['ros__parameters']['model_path'] = str(model)
    params['liveness_node']['ros__parameters']['allow_unpinned_model'] = True  # a test model
    path = folder / 'antispoof.yaml'
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize('executable', sorted(EXECUTABLES))
def test_starts_reports_parameters_opens_no_socket_and_exits_on_sigint(
    executable: str, params_file: Path
) -> None:
    node = start_node(executable, '--ros-args', '--params-file', str(params_file))
    try:
        for node_name in EXECUTABLES[executable]:
            assert node.wait_for_line(rf'\[{node_name}\]: parameters:'), node.output
        assert internet_sockets(node.pid) == []
        assert node.stop() == 0, node.output
    finally:
        node.stop()
    assert 'Traceback' not in node.output


def _write_params(tmp_path: Path, body: str) -> Path:
    path = tmp_path / 'params.yaml'
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    ('body', 'expected'),
    [
        ('camera_node:\n  ros__parameters:\n    frame_idd: x\n', 'unknown parameter(s)'),
        ('camera_node:\n  ros__parameters:\n    frame_id: 5\n', "parameter 'frame_id'"),
        (
            'camera_node:\n  ros__parameters:\n    flash_pattern: [dark, blue]\n',
            "unknown flash phase 'blue'",
        ),
        ('camera_node:\n  ros__parameters:\n    frame_id: [\n', 'not valid YAML'),
    ],
    ids=['unknown-key', 'wrong-type', 'bad-value', 'broken-yaml'],
)
def test_bad_params_file_gives_one_line_error(tmp_path: Path, body: str, expected: str) -> None:
    params = _write_params(tmp_path, body)
    node = start_node('camera_node', '--ros-args', '--params-file', str(params))
    try:
        code = node.wait(timeout=30)
    finally:
        node.stop()
    lines = [line for line in node.lines if line.strip()]
    assert code == 2
    assert len(lines) == 1, node.output
    assert expected in lines[0]
    assert lines[0].startswith('[ERROR] camera_node: ')


def test_missing_params_file_gives_one_line_error(tmp_path: Path) -> None:
    node = start_node('liveness_node', '--ros-args', '--params-file',
                      str(tmp_path / 'no.yaml'))
    code = node.wait(timeout=30)
    assert code == 2
    missing = tmp_path / 'no.yaml'
    assert node.lines == [
        f'[ERROR] liveness_node: cannot read params file {missing}: No such file or directory'
    ]
