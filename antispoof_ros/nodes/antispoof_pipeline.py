"""antispoof_pipeline: camera, landmark and liveness nodes in one process.

    antispoof_pipeline [--nodes camera,landmark,liveness] --ros-args --params-file FILE

One single-threaded executor serves all three nodes (measured to hold 120 Hz where a
multi-threaded one loses frames to the GIL); topics stay the same as with separate
processes, so tools and recordings cannot tell the difference. Parameters come from the
same YAML as the separate executables (one section per node name).

camera_node is a managed node: it configures and activates itself unless its ``autostart``
is false, and its lifecycle services are served by the same executor, so a lifecycle manager
can stop and restart the flashes while the other nodes keep running.

``--nodes`` (before ``--ros-args``) runs a subset, e.g. ``--nodes landmark,liveness`` when the
frames come from elsewhere (a replayed bag, the system benchmark); without it all three run.
"""

from __future__ import annotations

from collections.abc import Sequence
import sys

from antispoof_ros.nodes.camera_node import CameraNode
from antispoof_ros.nodes.entrypoint import NodeFactory, config_error, run_nodes
from antispoof_ros.nodes.landmark_node import LandmarkNode
from antispoof_ros.nodes.liveness_node import LivenessNode

PROGRAM = 'antispoof_pipeline'
# In pipeline order: the executor serves them in the order they were added.
NODES: dict[str, NodeFactory] = {
    'camera': CameraNode,
    'landmark': LandmarkNode,
    'liveness': LivenessNode,
}
USAGE = f"usage: {PROGRAM} [--nodes {','.join(NODES)}] --ros-args ..."


def select_nodes(args: Sequence[str]) -> list[NodeFactory]:
    """Factories named by ``--nodes a,b`` among the arguments before ``--ros-args``.

    ``args`` starts with the program name, as ``sys.argv`` does. Raises ValueError with a
    one-line reason for anything else found there.
    """
    end = list(args).index('--ros-args') if '--ros-args' in args else len(args)
    own = list(args[1:end])
    if not own:
        return list(NODES.values())
    if len(own) == 2 and own[0] == '--nodes':
        names = own[1]
    elif len(own) == 1 and own[0].startswith('--nodes='):
        names = own[0].removeprefix('--nodes=')
    else:
        raise ValueError(f"unexpected arguments '{' '.join(own)}' ({USAGE})")
    chosen = [name.strip() for name in names.split(',')]
    unknown = [name for name in chosen if name not in NODES]
    if unknown:
        raise ValueError(f"unknown node(s) {', '.join(repr(n) for n in unknown)} in --nodes "
                         f"(known: {', '.join(NODES)})")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"--nodes names a node twice: '{names}'")
    return [factory for name, factory in NODES.items() if name in chosen]


def main(args: list[str] | None = None) -> int:
    """Run the selected pipeline nodes (all three by default) in one process until SIGINT."""
    args = sys.argv if args is None else args
    try:
        factories = select_nodes(args)
    except ValueError as error:
        return config_error(PROGRAM, str(error))
    return run_nodes(PROGRAM, factories, args)


if __name__ == '__main__':
    sys.exit(main())
