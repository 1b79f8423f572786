"""The node processes the demo starts, and the listener that receives their verdicts.

Every process runs on shared-memory-only DDS with one random domain id (local_dds), writes
its output to a log file (shown in one error line when it dies), and is stopped by its PID
with SIGINT when the demo ends for any reason; the Fast DDS files created meanwhile are
removed afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
import signal
import subprocess
import sys
import time
from types import TracebackType
from typing import Self

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from antispoof_ros.flash import Phase
from antispoof_ros.msg import FlashFrame, LivenessResult
from antispoof_ros.nodes.topics import LIVENESS_RESULT, flash_frame_topic
from antispoof_ros.paths import SOURCE_TREE
from antispoof_ros.tools.harness.local_dds import (
    apply_local_dds_environment,
    fast_dds_files,
    remove_fast_dds_files,
)

CONFIG_FILE = SOURCE_TREE / 'config' / 'antispoof.yaml'
STOP_TIMEOUT_S = 15.0


class DemoError(RuntimeError):
    """Why the demo cannot go on, in one line."""


def node_command(node: str, params_file: Path, overrides: dict[str, object],
                 remaps: Sequence[str] = ()) -> list[str]:
    """Command line of a node executable: the params file, then ``-p`` overrides."""
    command = [sys.executable, '-m', f'antispoof_ros.nodes.{node}', '--ros-args',
               '--params-file', str(params_file)]
    for name, value in overrides.items():
        command += ['-p', f'{name}:={value}']
    for remap in remaps:
        command += ['-r', remap]
    return command


class NodeProcesses:
    """Started processes by name; a context manager that always stops them and cleans up."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}
        self._shared_memory_before: set[Path] = set()

    def __enter__(self) -> Self:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._shared_memory_before = fast_dds_files()
        apply_local_dds_environment()  # this process's listener and every child
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
        remove_fast_dds_files(self._shared_memory_before)

    def log_file(self, name: str) -> Path:
        """Where the output of process ``name`` goes."""
        return self.log_dir / f'{name}.log'

    def start(self, name: str, command: list[str]) -> None:
        """Start ``command`` in its own session (the terminal's Ctrl-C reaches only us)."""
        with open(self.log_file(name), 'w', encoding='utf-8') as log:
            self.processes[name] = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def exit_code(self, name: str) -> int | None:
        """Exit code of a process, None while it runs."""
        return self.processes[name].poll()

    def check_alive(self, names: Sequence[str] | None = None) -> None:
        """Raise DemoError naming the first process that has ended, with its last log line."""
        for name in names or list(self.processes):
            code = self.processes[name].poll()
            if code is not None:
                raise DemoError(f'{name} exited with code {code}: {self.last_log_line(name)} '
                                f'(log: {self.log_file(name)})')

    def last_log_line(self, name: str) -> str:
        """The last non-empty line a process wrote."""
        lines = self.log_file(name).read_text(encoding='utf-8', errors='replace').splitlines()
        return next((line.strip() for line in reversed(lines) if line.strip()), 'no output')

    def log_count(self, name: str, text: str) -> int:
        """How many lines of a process's log contain ``text``."""
        log = self.log_file(name).read_text(encoding='utf-8', errors='replace')
        return sum(text in line for line in log.splitlines())

    def stop(self) -> None:
        """SIGINT to every running process (newest first), then wait; kill what hangs."""
        running = [p for p in reversed(self.processes.values()) if p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in running:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class ResultListener:
    """A ROS participant in this process that collects LivenessResults with arrival times.

    ``drain_phases``: flash phases subscribed to (and dropped) only so that a bag replay,
    which waits for a reader on every camera topic, does not wait for ever.
    """

    def __init__(self, drain_phases: Sequence[Phase] = ()) -> None:
        self.drain_phases = drain_phases
        self.context = Context()
        self._received: list[tuple[LivenessResult, int]] = []

    def __enter__(self) -> Self:
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node('antispoof_demo', context=self.context,
                         start_parameter_services=False)
        self.node.create_subscription(
            LivenessResult, LIVENESS_RESULT,
            lambda result: self._received.append((result, time.time_ns())),
            QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
        for phase in self.drain_phases:
            self.node.create_subscription(FlashFrame, flash_frame_topic(phase),
                                          lambda _: None, 1)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()

    def take(self, timeout_s: float = 0.05) -> list[tuple[LivenessResult, int]]:
        """Spin once; the results received since the last call, with wall-clock arrival ns."""
        self.executor.spin_once(timeout_sec=timeout_s)
        received, self._received = self._received, []
        return received

    def subscribers(self, topic: str) -> int:
        """Readers of ``topic`` in the ROS graph (other processes included)."""
        return self.node.count_subscribers(topic)
