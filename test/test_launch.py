"""The rig launch file describes the three nodes with the shared parameter file."""

from __future__ import annotations

import importlib.util

from node_process import REPO
import pytest

LAUNCH_FILE = REPO / 'launch' / 'antispoof.launch.py'


def test_launch_file_names_every_node_executable() -> None:
    source = LAUNCH_FILE.read_text()
    for executable in ('camera_node', 'landmark_node', 'liveness_node', 'antispoof_pipeline'):
        assert executable in source
    compile(source, str(LAUNCH_FILE), 'exec')


@pytest.mark.skipif(
    importlib.util.find_spec('launch_ros') is None,
    reason='launch_ros is not on PyPI; this runs where ROS 2 is installed (the rig)',
)
def test_launch_description_builds() -> None:
    spec = importlib.util.spec_from_file_location('antispoof_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert len(description.entities) == 2 + 4
