"""Process entry point shared by every node executable and the in-process pipeline.

Handles what each ``main`` would otherwise repeat: ``rclpy.init`` with ``--ros-args``,
a one-line error (no traceback) and exit code 2 for unusable configuration, a
single-threaded executor (measured to keep 120 Hz where a multi-threaded one does not),
and a clean exit 0 on SIGINT or SIGTERM with every node's resources released.

rclpy's own signal handler is not installed: it would shut the context down while node
threads (the camera's grab thread) still publish. Here a signal requests a stop, the spin loop
ends, the nodes are destroyed first and the context last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import signal
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
import yaml

from antispoof_ros.nodes.parameters import ConfigError

EXIT_OK = 0
EXIT_CONFIG_ERROR = 2
SIGNAL_POLL_PERIOD_S = 0.2

NodeFactory = Callable[[], Node]


def config_error(program: str, reason: str) -> int:
    """Print the one-line error of an unusable configuration; the exit status to return."""
    print(f'[ERROR] {program}: {reason}', file=sys.stderr, flush=True)
    return EXIT_CONFIG_ERROR


def _params_file_problem(args: list[str]) -> str | None:
    """Check every ``--params-file`` before rcl does, which would print several lines."""
    for flag, path in zip(args, args[1:], strict=False):
        if flag != '--params-file':
            continue
        try:
            with open(path, encoding='utf-8') as stream:
                content = yaml.safe_load(stream)
        except OSError as error:
            return f'cannot read params file {path}: {error.strerror}'
        except yaml.YAMLError as error:
            mark = getattr(error, 'problem_mark', None)
            where = f' (line {mark.line + 1})' if mark else ''
            return f'params file {path} is not valid YAML{where}'
        if not isinstance(content, dict):
            return f'params file {path} must map node names to ros__parameters'
    return None


class StopRequest:
    """Signal handler that only records the request; the spin loop acts on it.

    Raising KeyboardInterrupt from a handler can land inside rclpy's C++ code (converting a
    message) and surface there as an unrelated RuntimeError; a flag cannot.
    """

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: object) -> None:
        """The handler: note the request and return at once."""
        self.requested = True

    def install(self) -> StopRequest:
        """Route SIGINT and SIGTERM to this request (again after a library replaced them)."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self)
        return self


def run_nodes(
    program: str, factories: Sequence[NodeFactory], args: list[str] | None = None
) -> int:
    """Create the nodes made by ``factories`` and spin them in one executor until SIGINT."""
    args = sys.argv if args is None else args
    problem = _params_file_problem(args)
    if problem:
        return config_error(program, problem)
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except Exception as error:  # noqa: BLE001 - rcl reports bad --ros-args as RCLError
        return config_error(program, f'cannot start ROS: {str(error).strip().splitlines()[0]}')

    nodes: list[Node] = []
    executor = SingleThreadedExecutor()
    # Installed before the nodes are made, so a signal during start-up is not lost (a process
    # started in the background of a script inherits SIGINT as ignored), and again after,
    # because native libraries may replace the handlers while they initialise (pylon's
    # transport layers do, for SIGINT).
    stop = StopRequest().install()
    try:
        for factory in factories:
            if stop.requested:
                break
            nodes.append(factory())
            executor.add_node(nodes[-1])
        stop.install()
        # spin_once returns at least every poll period, so a stop request is seen even by
        # nodes without timers (Python runs signal handlers only between bytecodes).
        while not stop.requested:
            executor.spin_once(timeout_sec=SIGNAL_POLL_PERIOD_S)
    except ConfigError as error:
        return config_error(program, f'configuration error: {error}')
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # a signal while the nodes were being created
    finally:
        executor.shutdown()
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown()
    return EXIT_OK
