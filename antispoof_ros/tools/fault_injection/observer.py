"""This process's ROS node, and everything it sees on the topics, with arrival times."""

from __future__ import annotations

from functools import partial
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from antispoof_ros.msg import EyeCorners, LivenessResult
from antispoof_ros.nodes import diagnostics
from antispoof_ros.nodes.topics import EYE_CORNERS, LIVENESS_RESULT
from antispoof_ros.tools.fault_injection.counters import PROGRESS_COUNTERS, CumulativeCounters
from antispoof_ros.tools.fault_injection.scenarios import SIDE_CORNERS_TOPIC


class Observer:
    """LivenessResults, landmark answers and diagnostics counters, spun in a thread.

    Arrival times are ``time.monotonic()`` when the spin thread took the message. The node
    also carries the frame source's publishers and, in the camera scenario, camera_node.
    """

    def __init__(self, context: Context) -> None:
        self.node = Node('fault_injection', context=context)
        self.results: list[tuple[float, LivenessResult]] = []
        self.node.create_subscription(LivenessResult, LIVENESS_RESULT,
                                      partial(self._arrived, self.results), 100)
        self.answers: dict[str, list[tuple[float, EyeCorners]]] = {
            EYE_CORNERS: [], SIDE_CORNERS_TOPIC: []}
        for topic, answers in self.answers.items():
            self.node.create_subscription(EyeCorners, topic, partial(self._arrived, answers),
                                          100)
        self.counters = CumulativeCounters()
        self.node.create_subscription(DiagnosticArray, diagnostics.TOPIC, self._on_diagnostics,
                                      50)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._spinner = threading.Thread(target=self._spin, name='observer_spin', daemon=True)
        self._spinner.start()

    @staticmethod
    def _arrived(messages: list[tuple[float, object]], message: object) -> None:
        messages.append((time.monotonic(), message))

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        for status in message.status:
            node = status.name.split(':')[0]
            if node in PROGRESS_COUNTERS:
                self.counters.update(node, {kv.key: kv.value for kv in status.values})

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        """Stop spinning and destroy the node."""
        self._stop.set()
        self._spinner.join(timeout=5.0)
        self.executor.shutdown()
        self.node.destroy_node()
