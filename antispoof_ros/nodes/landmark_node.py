"""landmark_node: eye corners on the front-flash frame of every cycle."""

from __future__ import annotations

from rclpy.node import Node

from antispoof_ros.flash import Phase
from antispoof_ros.msg import EyeCorners
from antispoof_ros.nodes.entrypoint import run_nodes
from antispoof_ros.nodes.parameters import Param, declare_parameters, log_parameters
from antispoof_ros.nodes.topics import EYE_CORNERS

PARAMETERS = (
    Param('phase', 'front', 'Flash phase whose frames are searched (thesis 3.3.2: front).',
          choices=tuple(p.label for p in Phase)),
)


class LandmarkNode(Node):
    """Publishes EyeCorners found on the frames of one flash phase."""

    def __init__(self, **node_options: object) -> None:
        super().__init__('landmark_node', **node_options)
        self.config = declare_parameters(self, PARAMETERS)
        log_parameters(self, self.config)
        self.corners_publisher = self.create_publisher(EyeCorners, EYE_CORNERS, 10)


def main(args: list[str] | None = None) -> int:
    """Run landmark_node until SIGINT."""
    return run_nodes('landmark_node', [LandmarkNode], args)
