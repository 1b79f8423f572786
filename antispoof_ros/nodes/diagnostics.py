"""One ``diagnostic_msgs/DiagnosticStatus`` per node on ``/diagnostics``, every period.

Each node says what to report (level, message, key/values, hardware id); this module builds
and stamps the message the same way for all, named ``'<node name>: <category>'``, the name
tools and tests split on ``':'`` to tell the nodes apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from std_msgs.msg import Header

from antispoof_ros.nodes.messages import ros_time

TOPIC = '/diagnostics'
OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR


@dataclass(frozen=True)
class Report:
    """One period's status of a node; values are published as ``str(value)``."""

    level: bytes
    message: str
    values: Mapping[str, object] = field(default_factory=dict)
    hardware_id: str = ''


class Publisher:
    """Publishes ``report()`` of a node on /diagnostics every ``period_s`` (and on demand)."""

    def __init__(self, node: Node, category: str, period_s: float,
                 report: Callable[[], Report]) -> None:
        self._node = node
        self._report = report
        self.name = f'{node.get_name()}: {category}'
        self._publisher = node.create_publisher(DiagnosticArray, TOPIC, 10)
        node.create_timer(period_s, self.publish)

    def publish(self) -> None:
        """Publish the node's report now."""
        report = self._report()
        status = DiagnosticStatus(
            level=report.level, name=self.name, message=report.message,
            hardware_id=report.hardware_id,
            values=[KeyValue(key=key, value=str(value)) for key, value in report.values.items()],
        )
        stamp = ros_time(self._node.get_clock().now().nanoseconds)
        self._publisher.publish(DiagnosticArray(header=Header(stamp=stamp), status=[status]))
