"""Launch the antispoof_ros pipeline on the vehicle rig (ROS 2 Kilted or Jazzy).

    ros2 launch antispoof_ros antispoof.launch.py [namespace:=cabin] [params_file:=...]
        [serial_number:=21234567] [single_process:=true] [respawn:=true] [log_level:=debug]
        [use_sim_time:=true] [autostart:=false]

Starts camera_node, landmark_node and liveness_node as separate processes (default), or all
three in one process (``antispoof_pipeline``). Every node reads its section of the same
parameter file; the file is found next to this launch file, so it works from the source tree
and from an install without the ament index. DDS settings come from the environment: see
README, "DDS on the rig".
"""

import os
from pathlib import Path
import tempfile

from launch import Action, LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnShutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
import yaml

PACKAGE = 'antispoof_ros'
NODES = ('camera_node', 'landmark_node', 'liveness_node')
# source tree: launch/ beside config/; install: share/antispoof_ros/{launch,config}
DEFAULT_PARAMS = Path(__file__).resolve().parent.parent / 'config' / 'antispoof.yaml'
BOOLEAN = ['true', 'false']
LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal']
RESPAWN_DELAY_S = 2.0

ARGUMENTS = (
    ('namespace', '', None, 'ROS namespace of the three nodes and their topics'),
    ('params_file', str(DEFAULT_PARAMS), None, 'YAML with one section per node name'),
    ('serial_number', '', None, "Camera serial number; empty: the params file's value"),
    ('single_process', 'false', BOOLEAN, 'Run the three nodes in one process (one executor)'),
    ('respawn', 'false', BOOLEAN, f'Restart a node process {RESPAWN_DELAY_S:g} s after it ends'),
    ('log_level', 'info', LOG_LEVELS, 'Lowest severity the nodes log'),
    ('use_sim_time', 'false', BOOLEAN, 'Take time from /clock (replayed bags)'),
    ('autostart', 'true', BOOLEAN, 'camera_node configures and activates itself at start'),
)


def _node_parameters(path: str) -> dict:
    """The ros__parameters of each node in ``path``; one-line errors for a malformed file."""
    try:
        content = yaml.safe_load(Path(path).read_text(encoding='utf-8'))
    except OSError as error:
        raise RuntimeError(f'cannot read params file {path}: {error.strerror}') from None
    except yaml.YAMLError as error:
        mark = getattr(error, 'problem_mark', None)
        where = f' (line {mark.line + 1})' if mark else ''
        raise RuntimeError(f'params file {path} is not valid YAML{where}') from None
    if not isinstance(content, dict) or not all(
            isinstance(section, dict) and isinstance(section.get('ros__parameters', {}), dict)
            for section in content.values()):
        raise RuntimeError(f'params file {path} must map node names to ros__parameters')
    return {name: dict(content.get(name, {}).get('ros__parameters', {})) for name in NODES}


def _launch_nodes(context: LaunchContext) -> list[Action]:
    """The node processes for the chosen layout, with the launch arguments applied."""
    value = {name: LaunchConfiguration(name).perform(context) for name, *_ in ARGUMENTS}
    # checked here, not by DeclareLaunchArgument(choices=...), which logs each error twice
    for name, _, choices, _ in ARGUMENTS:
        if choices and value[name] not in choices:
            raise RuntimeError(f"launch argument {name}:='{value[name]}' is not one of "
                               f"{', '.join(choices)}")
    params = _node_parameters(value['params_file'])
    if value['serial_number']:
        params['camera_node']['serial_number'] = value['serial_number']
    params['camera_node']['autostart'] = value['autostart'] == 'true'
    for section in params.values():
        section['use_sim_time'] = value['use_sim_time'] == 'true'
    # '/**/<node>' keys: the sections apply whatever the namespace (a plain 'camera_node' key
    # matches only /camera_node)
    with tempfile.NamedTemporaryFile('w', prefix='antispoof_params_', suffix='.yaml',
                                     delete=False) as stream:
        yaml.safe_dump({f'/**/{name}': {'ros__parameters': section}
                        for name, section in params.items()}, stream)
    common = dict(
        package=PACKAGE,
        namespace=value['namespace'],
        parameters=[stream.name],
        ros_arguments=['--log-level', value['log_level']],
        respawn=value['respawn'] == 'true',
        respawn_delay=RESPAWN_DELAY_S,
        output='screen',
        emulate_tty=True,
    )
    if value['single_process'] == 'true':
        nodes = [Node(executable='antispoof_pipeline', **common)]
    else:
        nodes = [Node(executable=name, name=name, **common) for name in NODES]
    # kept while the nodes may (re)start, removed when the launch ends
    remove = OnShutdown(on_shutdown=lambda *_: os.unlink(stream.name))
    return [RegisterEventHandler(remove), *nodes]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *(DeclareLaunchArgument(name, default_value=default, description=(
                f"{description} ({' | '.join(choices)})" if choices else description))
              for name, default, choices, description in ARGUMENTS),
            OpaqueFunction(function=_launch_nodes),
        ]
    )
