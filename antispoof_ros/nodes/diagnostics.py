"""/diagnostics by diagnostic_updater's conventions, for every node of the package.

``diagnostic_updater`` is not on PyPI, so this module keeps its conventions in a small
``Updater``: a node sets its hardware id and adds tasks; every period each task gives one
``DiagnosticStatus`` named ``'<node name>: <task name>'`` and all of them go out together in
one ``DiagnosticArray``, the layout ``diagnostic_aggregator`` and rqt's Robot Monitor group by.
Tools and tests split the name on ``':'`` to tell the nodes apart and compare the whole name
to pick one task.

``RateCheck``, ``StaleCheck``, ``ShareCheck`` and ``Increase`` compute a task's level from
counts (like diagnostic_updater's ``FrequencyStatus`` and ``TimeStampStatus``), so every node
turns drop rates, stale inputs and errors into WARN/ERROR the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from std_msgs.msg import Header

from antispoof_ros.nodes.messages import ros_time

TOPIC = '/diagnostics'
OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR
# a camera input is late after this many seconds without a message, stale after these
LATE_S = 0.5
STALE_S = 2.0


@dataclass(frozen=True)
class Report:
    """One period's status of a task; values are published as ``str(value)``."""

    level: bytes
    message: str
    values: Mapping[str, object] = field(default_factory=dict)


def worst(*reports: Report) -> Report:
    """One report from several checks: the highest level, its messages, all values."""
    level = max((report.level for report in reports), key=ord)
    messages = [report.message for report in reports
                if report.level == level and report.message]
    values = {key: value for report in reports for key, value in report.values.items()}
    return Report(level, '; '.join(messages), values)


def status_name(node_name: str, task: str) -> str:
    """The status name of ``task`` of node ``node_name``: ``'<node name>: <task>'``."""
    return f'{node_name}: {task}'


class Updater:
    """Publishes every task's status of a node on /diagnostics each period, together.

    ``hardware_id`` names what Robot Monitor lists the statuses under; nodes set what
    identifies their hardware (the camera's serial, the host that runs the node).
    """

    def __init__(self, node: Node, period_s: float, hardware_id: str = 'none') -> None:
        self._node = node
        self.hardware_id = hardware_id
        self.tasks: dict[str, Callable[[], Report]] = {}
        self._publisher = node.create_publisher(DiagnosticArray, TOPIC, 10)
        node.create_timer(period_s, self.force_update)

    def set_hardware_id(self, hardware_id: str) -> None:
        """Name the hardware of the following statuses (diagnostic_updater's setHardwareID)."""
        self.hardware_id = hardware_id

    def add(self, task: str, check: Callable[[], Report]) -> str:
        """Report ``check()`` each period as status ``'<node name>: <task>'``; returns the name."""
        name = status_name(self._node.get_name(), task)
        self.tasks[name] = check
        return name

    def force_update(self) -> None:
        """Run every task now and publish their statuses in one message."""
        statuses = []
        for name, check in self.tasks.items():
            report = check()
            statuses.append(DiagnosticStatus(
                level=report.level, name=name, message=report.message,
                hardware_id=self.hardware_id,
                values=[KeyValue(key=key, value=str(value))
                        for key, value in report.values.items()]))
        stamp = ros_time(self._node.get_clock().now().nanoseconds)
        self._publisher.publish(DiagnosticArray(header=Header(stamp=stamp), status=statuses))


class Increase:
    """How much a cumulative counter grew since the last look."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self, total: int) -> int:
        """The growth of ``total`` since the previous call."""
        grown, self._last = total - self._last, total
        return grown


class RateCheck:
    """Events per second since the last check against an expected rate (``FrequencyStatus``).

    Fed the cumulative count of events, so a grab thread needs no lock. None in a period is
    ERROR, fewer than ``warn_share`` of the expected rate WARN.
    """

    def __init__(self, what: str, expected_hz: float, warn_share: float = 0.9,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.expected_hz = expected_hz
        self.warn_share = warn_share
        self._clock = clock
        self._since = clock()
        self._events = Increase()

    def check(self, total: int) -> Report:
        """Level and rate of the period that ends now, from the events' running ``total``."""
        now = self._clock()
        count = self._events(total)
        rate = count / max(now - self._since, 1e-9)
        self._since = now
        values = {f'{self.what}_per_s': f'{rate:.2f}',
                  f'{self.what}_expected_per_s': f'{self.expected_hz:.2f}'}
        if not count:
            return Report(ERROR, f'no {self.what}', values)
        if rate < self.warn_share * self.expected_hz:
            return Report(WARN, f'{self.what}: frequency too low', values)
        return Report(OK, f'{self.what}: desired frequency met', values)


class StaleCheck:
    """Time since the last event (``TimeStampStatus``): WARN, then ERROR as it grows."""

    def __init__(self, what: str, warn_after_s: float = LATE_S, error_after_s: float = STALE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.warn_after_s = warn_after_s
        self.error_after_s = error_after_s
        self._clock = clock
        self._last: float | None = None

    def tick(self) -> None:
        """Note an event now."""
        self._last = self._clock()

    def check(self) -> Report:
        """ERROR before the first event or after ``error_after_s``, WARN after ``warn_after_s``."""
        if self._last is None:
            return Report(ERROR, f'no {self.what} yet', {f'{self.what}_age_s': 'inf'})
        age = self._clock() - self._last
        values = {f'{self.what}_age_s': f'{age:.2f}'}
        if age > self.error_after_s:
            return Report(ERROR, f'{self.what} stale', values)
        if age > self.warn_after_s:
            return Report(WARN, f'{self.what} late', values)
        return Report(OK, f'{self.what} fresh', values)


class ShareCheck:
    """Share of bad items among all items since the last check; WARN above ``warn_above``."""

    def __init__(self, what: str, warn_above: float) -> None:
        self.what = what
        self.warn_above = warn_above
        self._bad, self._all = Increase(), Increase()

    def check(self, bad_total: int, all_total: int) -> Report:
        """Level from the growth of the cumulative counts ``bad_total`` of ``all_total``."""
        bad, every = self._bad(bad_total), self._all(all_total)
        share = bad / every if every else 0.0
        values = {f'{self.what}_share': f'{share:.3f}'}
        if share > self.warn_above:
            return Report(WARN, f'{self.what}: {share:.0%} of {every}', values)
        return Report(OK, f'{self.what}: {share:.0%}', values)
