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
from sensor_msgs.msg import Image

from antispoof_ros.flash import Phase
from antispoof_ros.msg import FlashFrame, LivenessResult
from antispoof_ros.nodes.overlay_publisher import OVERLAY_QOS
from antispoof_ros.nodes.topics import LIVENESS_OVERLAY, LIVENESS_RESULT, flash_frame_topic


class ResultListener:
    """A ROS participant in this process that collects LivenessResults with arrival times.

    ``drain_phases``: flash phases subscribed to (and dropped) only so that a bag replay,
    which waits for a reader on every camera topic, does not wait for ever. ``overlays``:
    also watch ``liveness/overlay`` (the node draws it only while someone does).
    """

    def __init__(self, drain_phases: Sequence[Phase] = (), overlays: bool = False) -> None:
        self.drain_phases = drain_phases
        self.overlays = overlays
        self.context = Context()
        self._received: list[tuple[LivenessResult, int]] = []
        self._overlays: list[Image] = []

    def __enter__(self) -> Self:
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node('antispoof_demo', context=self.context,
                         start_parameter_services=False)
        self.node.create_subscription(
            LivenessResult, LIVENESS_RESULT,
            lambda result: self._received.append((result, time.time_ns())),
            QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
        if self.overlays:
            self.node.create_subscription(Image, LIVENESS_OVERLAY,
                                          lambda image: self._overlays.append(image),
                                          OVERLAY_QOS)
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

    def take_overlays(self) -> list[Image]:
        """The overlays received since the last call (no spinning of its own)."""
        received, self._overlays = self._overlays, []
        return received

    def subscribers(self, topic: str) -> int:
        """Readers of ``topic`` in the ROS graph (other processes included)."""
        return self.node.count_subscribers(topic)
