"""The demo's ROS participant: receives the verdicts of the node processes it started."""

from __future__ import annotations

from collections.abc import Sequence
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
