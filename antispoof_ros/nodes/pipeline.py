"""antispoof_pipeline: camera, landmark and liveness nodes in one process.

One single-threaded executor serves all three nodes (measured to hold 120 Hz where a
multi-threaded one loses frames to the GIL); topics stay the same as with separate
processes, so tools and recordings cannot tell the difference. Parameters come from the
same YAML as the separate executables (one section per node name).
"""

from __future__ import annotations

from antispoof_ros.nodes.camera_node import CameraNode
from antispoof_ros.nodes.entrypoint import run_nodes
from antispoof_ros.nodes.landmark_node import LandmarkNode
from antispoof_ros.nodes.liveness_node import LivenessNode


def main(args: list[str] | None = None) -> int:
    """Run the three pipeline nodes in one process until SIGINT."""
    return run_nodes('antispoof_pipeline', [CameraNode, LandmarkNode, LivenessNode], args)


if __name__ == '__main__':
    import sys

    sys.exit(main())
