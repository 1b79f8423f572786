"""liveness_node: MobileNetV2 liveness decision on synchronized flash-frame pairs."""

from __future__ import annotations

from rclpy.node import Node

from antispoof_ros.flash import PAIR_CONFIGS
from antispoof_ros.msg import LivenessResult
from antispoof_ros.nodes.entrypoint import run_nodes
from antispoof_ros.nodes.parameters import Param, declare_parameters, log_parameters
from antispoof_ros.nodes.topics import LIVENESS_RESULT

PARAMETERS = (
    Param('pair', 'P2', 'Frame pair fed to the model (thesis table 3.1).',
          choices=tuple(PAIR_CONFIGS)),
    Param('region', 'face', 'Input region: full face (200x250) or eye (48x48).',
          choices=('face', 'eye')),
    Param('model_path', '', 'ONNX model file; empty: the model shipped with the package.'),
)


class LivenessNode(Node):
    """Publishes a LivenessResult for every synchronized pair of flash frames."""

    def __init__(self, **node_options: object) -> None:
        super().__init__('liveness_node', **node_options)
        self.config = declare_parameters(self, PARAMETERS)
        log_parameters(self, self.config)
        self.result_publisher = self.create_publisher(LivenessResult, LIVENESS_RESULT, 10)


def main(args: list[str] | None = None) -> int:
    """Run liveness_node until SIGINT."""
    return run_nodes('liveness_node', [LivenessNode], args)
