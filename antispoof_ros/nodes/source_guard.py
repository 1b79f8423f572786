"""Refuses frames that do not come from the camera node alone (injected frames).

Anyone on the DDS domain can publish on ``camera/<phase>/flash_frame``: a second publisher
feeding a recorded live face while a print is in front of the camera is the attack of
CVE-2021-34466 (Windows Hello). ``SourceGuard`` watches, for the camera topics a node
subscribes to:

- the ROS graph: each topic must have no publisher but the configured camera node (name
  and namespace; ``camera_node_name``), and at most one. A publisher whose node is not yet
  known to the graph counts as foreign until it is. The graph is polled twice a second and
  again whenever a frame arrives while the publisher count differs from the last poll;
- the frames: ``TickCheck`` (``antispoof_ros.liveness.frame_source_check``) on their
  counters and exposure stamps.

Either kind of problem makes the source untrusted until ``hold_s`` passes without one
(``SourceTrust``); time is the node's ROS clock, the clock its decisions are timed in. The
node then answers every frame or pair with a reason instead of a verdict, and /diagnostics
says ERROR. This is a check inside the consumers; the network-level defence is SROS2 with
permissions that let only the camera's enclave publish camera topics (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from rclpy.node import Node

from antispoof_ros.flash import DEFAULT_PATTERN
from antispoof_ros.liveness.frame_source_check import HOLD_S, SourceTrust, TickCheck
from antispoof_ros.nodes import diagnostics
from antispoof_ros.nodes.parameters import Param

POLL_PERIOD_S = 0.5
UNTRUSTED = 'untrusted frame source'
CAMERA_NODE_NAME = Param(
    'camera_node_name', 'camera_node',
    'The only node allowed to publish the camera topics: a name in this node\'s namespace or '
    'a fully qualified /namespace/name. Frames of any other publisher, of a second one, or '
    'whose counters and stamps break the camera\'s clock are refused (UNKNOWN, diagnostics '
    'ERROR).')


# rmw's node name of an endpoint whose participant discovery has not named yet
UNNAMED = '_NODE_NAME_UNKNOWN_'


def qualified_node_name(name: str, namespace: str) -> str:
    """``/namespace/name``; ``name`` may already be absolute."""
    if name.startswith('/'):
        return name
    return f'{namespace.rstrip("/")}/{name}'


class SourceGuard:
    """Whether the frames on ``topics`` come from the camera node alone (module docstring)."""

    def __init__(self, node: Node, topics: Sequence[str], camera_node_name: str,
                 hold_s: float = HOLD_S, pattern_length: int = len(DEFAULT_PATTERN)) -> None:
        self._node = node
        self.camera = qualified_node_name(camera_node_name, node.get_namespace())
        self.topics = {topic: node.resolve_topic_name(topic) for topic in topics}
        self.ticks = TickCheck(pattern_length)
        self.trust = SourceTrust(hold_s)
        self._publisher_counts = dict.fromkeys(self.topics.values(), 0)
        # a publisher the graph cannot name yet (discovery still under way): its frames are
        # refused, but naming it is no problem to hold against the source afterwards
        self._unnamed: dict[str, str] = {}
        node.create_timer(POLL_PERIOD_S, self.poll)

    def frame(self, topic: str, counter: int, stamp_ns: int) -> None:
        """Note one frame that arrived on ``topic`` (one of the guarded topics)."""
        resolved = self.topics[topic]
        if (self._node.count_publishers(resolved) != self._publisher_counts[resolved]
                or resolved in self._unnamed):
            self._check_publishers(resolved)
        if problem := self.ticks.add(topic, counter, stamp_ns):
            self._report(problem)

    def poll(self) -> None:
        """Check the publishers of every guarded topic."""
        for resolved in self.topics.values():
            self._check_publishers(resolved)

    def problem(self) -> str | None:
        """Why the source is untrusted now, or None when it is trusted."""
        return self.trust.problem(self._now_s()) or next(iter(self._unnamed.values()), None)

    def reason_text(self) -> str | None:
        """``problem`` as a result's reason text, or None when trusted."""
        problem = self.problem()
        return None if problem is None else f'{UNTRUSTED}: {problem}'

    def values(self) -> dict[str, str]:
        """Diagnostics values: the current problem and how often the source was untrusted."""
        return {
            'source_problem': self.problem() or '',
            'source_untrusted_onsets': str(self.trust.onsets),
            'source_tick_discontinuities': str(self.ticks.discontinuities),
        }

    def diagnostics_report(self) -> diagnostics.Report:
        """The 'source' task: ERROR with the problem while untrusted."""
        if problem := self.problem():
            return diagnostics.Report(diagnostics.ERROR, f'{UNTRUSTED}: {problem}', self.values())
        return diagnostics.Report(diagnostics.OK, f'only {self.camera} publishes',
                                  self.values())

    def _check_publishers(self, topic: str) -> None:
        publishers = self._node.get_publishers_info_by_topic(topic)
        self._publisher_counts[topic] = len(publishers)
        if any(p.node_name == UNNAMED for p in publishers):
            self._unnamed[topic] = f'a publisher of {topic} is not identified yet'
            return
        self._unnamed.pop(topic, None)
        names = [qualified_node_name(p.node_name, p.node_namespace) for p in publishers]
        foreign = sorted(name for name in names if name != self.camera)
        if foreign:
            self._report(f'{", ".join(foreign)} publish{"es" if len(foreign) == 1 else ""} on '
                         f'{topic}, which only {self.camera} may')
        elif len(names) > 1:
            self._report(f'{len(names)} publishers named {self.camera} on {topic}')

    def _report(self, problem: str) -> None:
        if self.trust.report(problem, self._now_s()):
            self._node.get_logger().error(f'{UNTRUSTED}: {problem}')

    def _now_s(self) -> float:
        return self._node.get_clock().now().nanoseconds / 1e9
