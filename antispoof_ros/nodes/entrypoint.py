"""Process entry point shared by every node executable and the in-process pipeline.

Handles what each ``main`` would otherwise repeat: ``rclpy.init`` with ``--ros-args``,
a one-line error (no traceback) and exit code 2 for unusable configuration, a
single-threaded executor (measured to keep 120 Hz where a multi-threaded one does not),
and a clean exit 0 on SIGINT or SIGTERM with every node's resources released.

rclpy's own signal handler is not installed: it would shut the context down while node
threads (the camera's grab thread) still publish. Here a signal interrupts the executor,
the nodes are destroyed first and the context last.
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


def _fail(program: str, reason: str) -> int:
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


def _interrupt_on_signals() -> None:
    """Make SIGINT and SIGTERM raise KeyboardInterrupt in the main thread.

    Called after the nodes exist because native libraries may replace the handlers while
    they initialise (pylon's transport layers do, for SIGINT).
    """
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)


def run_nodes(
    program: str, factories: Sequence[NodeFactory], args: list[str] | None = None
) -> int:
    """Create the nodes made by ``factories`` and spin them in one executor until SIGINT."""
    args = sys.argv if args is None else args
    problem = _params_file_problem(args)
    if problem:
        return _fail(program, problem)
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except Exception as error:  # noqa: BLE001 - rcl reports bad --ros-args as RCLError
        return _fail(program, f'cannot start ROS: {str(error).strip().splitlines()[0]}')

    nodes: list[Node] = []
    executor = SingleThreadedExecutor()
    try:
        for factory in factories:
            nodes.append(factory())
            executor.add_node(nodes[-1])
        _interrupt_on_signals()
        # Python runs signal handlers only between bytecodes; a node without timers would
        # keep the executor blocked in rcl_wait forever. Wake it a few times a second.
        nodes[0].create_timer(SIGNAL_POLL_PERIOD_S, lambda: None)
        executor.spin()
    except ConfigError as error:
        return _fail(program, f'configuration error: {error}')
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown()
    return EXIT_OK
