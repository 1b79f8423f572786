"""Launch the antispoof_ros pipeline on the vehicle rig (ROS 2 Kilted or Jazzy).

    ros2 launch antispoof_ros antispoof.launch.py [params_file:=...] [single_process:=true]

Starts camera_node, landmark_node and liveness_node as separate processes (default), or all
three in one process (``antispoof_pipeline``), with the same parameter file. DDS settings
come from the environment: see README, "DDS on the rig".
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'antispoof_ros'
NODES = ('camera_node', 'landmark_node', 'liveness_node')


def generate_launch_description() -> LaunchDescription:
    default_params = str(Path(get_package_share_directory(PACKAGE)) / 'config' / 'antispoof.yaml')
    params_file = LaunchConfiguration('params_file')
    single_process = LaunchConfiguration('single_process')
    separate = [
        Node(
            package=PACKAGE,
            executable=name,
            name=name,
            parameters=[params_file],
            output='screen',
            emulate_tty=True,
            condition=UnlessCondition(single_process),
        )
        for name in NODES
    ]
    together = Node(
        package=PACKAGE,
        executable='antispoof_pipeline',
        parameters=[params_file],
        output='screen',
        emulate_tty=True,
        condition=IfCondition(single_process),
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                'params_file', default_value=default_params,
                description='YAML with one section per node name',
            ),
            DeclareLaunchArgument(
                'single_process', default_value='false',
                description='Run the three nodes in one process (one executor)',
            ),
            *separate,
            together,
        ]
    )
