"""camera_node: Basler NIR frames published with their flash phase."""

from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import qos_profile_system_default
from sensor_msgs.msg import Image

from antispoof_ros.flash import DEFAULT_PATTERN, parse_pattern
from antispoof_ros.msg import FlashFrame
from antispoof_ros.nodes.entrypoint import run_nodes
from antispoof_ros.nodes.parameters import ConfigError, Param, declare_parameters, log_parameters
from antispoof_ros.nodes.topics import flash_frame_topic, image_topic

PARAMETERS = (
    Param('flash_pattern', [p.label for p in DEFAULT_PATTERN],
          'Flash phases of one cycle, in firing order (thesis figure 3.1).'),
    Param('frame_id', 'nir_camera_optical_frame', 'header.frame_id of every published frame.'),
)


class CameraNode(Node):
    """Publishes one FlashFrame and one Image stream per flash phase."""

    def __init__(self) -> None:
        super().__init__('camera_node')
        self.config = declare_parameters(self, PARAMETERS)
        try:
            self.pattern = parse_pattern(self.config['flash_pattern'])
        except ValueError as error:
            raise ConfigError(f"parameter 'flash_pattern': {error}") from None
        log_parameters(self, self.config)
        qos = qos_profile_system_default  # REP-2003: drivers publish with system default QoS
        self.frame_publishers = {
            phase: self.create_publisher(FlashFrame, flash_frame_topic(phase), qos)
            for phase in self.pattern
        }
        self.image_publishers = {
            phase: self.create_publisher(Image, image_topic(phase), qos)
            for phase in self.pattern
        }
        self.get_logger().info(
            f'publishing {len(self.pattern)} phases: {", ".join(p.label for p in self.pattern)}'
        )


def main(args: list[str] | None = None) -> int:
    """Run camera_node until SIGINT."""
    return run_nodes('camera_node', [CameraNode], args)
