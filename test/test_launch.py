"""The rig launch file: its arguments, and a real launch on the emulated camera.

``launch`` and ``launch_ros`` are not on PyPI. Where they are not importable (CI), only the
text-level checks run. ``ANTISPOOF_LAUNCH_SOURCES`` (folders joined with ``os.pathsep``) adds
them for this test alone: e.g. source checkouts of ros2/launch and ros2/launch_ros, with
osrf_pycommon and composition_interfaces built for this Python (README, "Launch").
"""

from __future__ import annotations

import ast
from importlib.machinery import PathFinder
import os
from pathlib import Path
import sys

from face_frames import write_face_cycle
from node_process import REPO, spin_until
import pytest
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
import yaml

from antispoof_ros.msg import LivenessResult
from antispoof_ros.nodes.topics import LIVENESS_RESULT
from antispoof_ros.offline.landmark_training.samples import load_sample_faces
from antispoof_ros.tools.harness.processes import NodeProcess

LAUNCH_FILE = REPO / 'launch' / 'antispoof.launch.py'
EXECUTABLES = ('camera_node', 'landmark_node', 'liveness_node', 'antispoof_pipeline')
SOURCES_VARIABLE = 'ANTISPOOF_LAUNCH_SOURCES'
LAUNCH_SOURCES = [path for path in os.environ.get(SOURCES_VARIABLE, '').split(os.pathsep)
                  if path]
LAUNCH_IMPORTABLE = all(PathFinder.find_spec(name, [*LAUNCH_SOURCES, *sys.path]) is not None
                        for name in ('launch_ros', 'osrf_pycommon', 'composition_interfaces'))
needs_launch = pytest.mark.skipif(
    not LAUNCH_IMPORTABLE,
    reason=f'launch/launch_ros are not on PyPI: they run where ROS 2 is installed (the rig), '
           f'or with {SOURCES_VARIABLE} naming source checkouts')

# Runs the launch file as `ros2 launch` does (ros2cli is not on PyPI either).
LAUNCH_RUNNER = '''
import sys
from launch import LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
path, *pairs = sys.argv[1:]
service = LaunchService()
service.include_launch_description(IncludeLaunchDescription(
    PythonLaunchDescriptionSource(path),
    launch_arguments=[tuple(pair.split(':=', 1)) for pair in pairs]))
sys.exit(service.run())
'''


def _declared_arguments() -> dict[str, tuple]:
    """The ARGUMENTS table of the launch file, read without importing launch."""
    tree = ast.parse(LAUNCH_FILE.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'ARGUMENTS':
            return {entry.elts[0].value: entry for entry in node.value.elts}
    raise AssertionError('the launch file has no ARGUMENTS table')


def test_launch_file_names_every_node_executable() -> None:
    source = LAUNCH_FILE.read_text()
    for executable in EXECUTABLES:
        assert executable in source
    compile(source, str(LAUNCH_FILE), 'exec')


def test_launch_file_declares_the_rig_arguments() -> None:
    assert set(_declared_arguments()) == {
        'namespace', 'params_file', 'serial_number', 'single_process', 'respawn',
        'log_level', 'use_sim_time', 'autostart'}


def test_launch_file_finds_the_config_without_the_ament_index() -> None:
    source = LAUNCH_FILE.read_text()
    assert 'get_package_share_directory' not in source
    assert (LAUNCH_FILE.parent.parent / 'config' / 'antispoof.yaml').is_file()


def _launch_environment(tmp_path: Path) -> dict[str, str]:
    """PYTHONPATH with the launch sources; an ament prefix that has the node executables.

    launch_ros looks executables up in <prefix>/lib/antispoof_ros. A colcon install has them;
    the project venv has them in bin/, so a throw-away prefix links them there.
    """
    prefixes = [path for path in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)
                if path]
    installed = any((Path(prefix) / 'lib' / 'antispoof_ros' / 'camera_node').exists()
                    for prefix in prefixes)
    if not installed:
        prefix = tmp_path / 'prefix'
        (prefix / 'lib' / 'antispoof_ros').mkdir(parents=True)
        index = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages'
        index.mkdir(parents=True)
        (index / 'antispoof_ros').touch()
        for executable in EXECUTABLES:
            (prefix / 'lib' / 'antispoof_ros' / executable).symlink_to(
                Path(sys.executable).parent / executable)
        prefixes = [str(prefix), str(Path(sys.prefix)), *prefixes]
    python_path = [*LAUNCH_SOURCES, *filter(None, [os.environ.get('PYTHONPATH')])]
    return {'AMENT_PREFIX_PATH': os.pathsep.join(prefixes),
            'PYTHONPATH': os.pathsep.join(python_path),
            'ROS_LOG_DIR': str(tmp_path / 'log')}


def _start_launch(tmp_path: Path, *arguments: str) -> NodeProcess:
    return NodeProcess('launch', [sys.executable, '-c', LAUNCH_RUNNER, str(LAUNCH_FILE),
                                  *arguments], env=_launch_environment(tmp_path), cwd=tmp_path)


def _emulator_params(tmp_path: Path) -> Path:
    """The shipped parameter file, the camera set to the pylon emulator replaying faces."""
    astronaut = next(face for face in load_sample_faces() if face.name == 'astronaut')
    write_face_cycle(tmp_path / 'frames', astronaut.cropped())
    params = yaml.safe_load((REPO / 'config' / 'antispoof.yaml').read_text())
    params['camera_node']['ros__parameters'].update(
        emulated_cameras=1, emulator_image_dir=str(tmp_path / 'frames'))
    # the shipped model; a pair every 0.5 s or slower on a loaded machine must not empty the
    # fusion window
    params['liveness_node']['ros__parameters'].update(timeout_s=10.0)
    path = tmp_path / 'emulator.yaml'
    path.write_text(yaml.safe_dump(params))
    return path


@needs_launch
@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.parametrize(('single_process', 'namespace', 'more'), [
    # the emulator's serial number: the camera opens only if the argument reaches it
    ('false', 'cabin', ('serial_number:=0815-0000', 'use_sim_time:=false')),
    ('true', '', ('respawn:=true', 'autostart:=true')),
])
def test_launch_runs_the_pipeline_on_the_emulated_camera(
    tmp_path: Path, ros_context: Context, single_process: str, namespace: str,
    more: tuple[str, ...]
) -> None:
    params = _emulator_params(tmp_path)
    results: list[LivenessResult] = []
    watcher = Node('launch_watcher', namespace=namespace or None, context=ros_context)
    watcher.create_subscription(LivenessResult, LIVENESS_RESULT, results.append, 100)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(watcher)
    launch = _start_launch(tmp_path, f'params_file:={params}', f'namespace:={namespace}',
                           f'single_process:={single_process}', 'log_level:=info', *more)
    try:
        assert spin_until(executor, lambda: len(results) >= 5, timeout=90), launch.output
        assert launch.stop(timeout=30) == 0, launch.output
    finally:
        launch.stop()
        executor.shutdown()
        watcher.destroy_node()
    started = {'false': ('[camera_node', '[landmark_node', '[liveness_node'),
               'true': ('[antispoof_pipeline',)}[single_process]
    for process in started:
        assert process in launch.output, launch.output
    assert 'Traceback' not in launch.output, launch.output


def _launch_error(tmp_path: Path, *arguments: str) -> list[str]:
    """The error lines of a launch that must refuse to start."""
    launch = _start_launch(tmp_path, *arguments)
    try:
        assert launch.wait(timeout=60) != 0, launch.output
    finally:
        launch.stop()
    return [line for line in launch.lines if 'ERROR' in line]


@needs_launch
@pytest.mark.parametrize(('argument', 'value'), [('single_process', 'maybe'),
                                                 ('log_level', 'loud')])
def test_an_unknown_argument_value_is_one_clear_error_line(
    tmp_path: Path, argument: str, value: str
) -> None:
    (line,) = _launch_error(tmp_path, f'{argument}:={value}')
    assert f"launch argument {argument}:='{value}' is not one of" in line, line


@needs_launch
def test_a_malformed_params_file_is_one_clear_error_line(tmp_path: Path) -> None:
    params = tmp_path / 'broken.yaml'
    params.write_text('camera_node:\n  ros__parameters: [unclosed\n')
    (line,) = _launch_error(tmp_path, f'params_file:={params}')
    assert f'params file {params} is not valid YAML' in line, line
