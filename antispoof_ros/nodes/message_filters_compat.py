"""Stand-in for ROS 2 ``message_filters`` (Python), which is not published on PyPI.

On the rig, ROS 2 provides ``message_filters``; in this venv (PyPI ROS wheels) it does not
exist. This module re-implements the part the liveness node uses with the same names,
constructor signatures and matching rules as ``message_filters/__init__.py`` of ROS 2:

- ``Subscriber(node, msg_type, topic, qos_profile=10, **kwargs)``: passes every message on.
- ``TimeSynchronizer(fs, queue_size)``: emits a set when every input holds a message with
  exactly the same ``header.stamp``; each input keeps its ``queue_size`` newest stamps.
- ``ApproximateTimeSynchronizer(fs, queue_size, slop, allow_headerless=False)``: on each
  arrival, the other inputs' messages within ``slop`` seconds of the new one are ordered by
  distance to it and the first combination (in that order) whose stamp spread is below
  ``slop`` is emitted and removed from the queues. The slop is kept as ROS 2 keeps it, an
  ``rclpy.duration.Duration`` in the attribute ``slop``: assigning another one there changes
  the matching from the next arrival on, with either implementation.

Callbacks run in the thread that delivered the message, under the synchronizer's lock.
Call :func:`load_message_filters` to get the real module where it is installed and this one
otherwise, so the node behaves the same in both places.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import reduce
import importlib
import itertools
import sys
import threading
from types import ModuleType
from typing import Any

import rclpy.clock
from rclpy.duration import Duration
import rclpy.logging

from antispoof_ros.nodes.messages import stamp_nanoseconds


def load_message_filters() -> ModuleType:
    """The ROS 2 ``message_filters`` module when importable, else this compatible module."""
    try:
        return importlib.import_module('message_filters')
    except ImportError:
        return sys.modules[__name__]


class SimpleFilter:
    """Source of messages that forwards each one to the registered callbacks."""

    def __init__(self) -> None:
        self.callbacks: dict[int, tuple[Callable[..., None], tuple[Any, ...]]] = {}

    def registerCallback(self, cb: Callable[..., None], *args: Any) -> int:  # noqa: N802
        """Call ``cb(*messages, *args)`` for every output; return the connection id."""
        connection = len(self.callbacks)
        self.callbacks[connection] = (cb, args)
        return connection

    def signalMessage(self, *msg: Any) -> None:  # noqa: N802
        """Hand ``msg`` to every registered callback, in registration order."""
        for callback, args in list(self.callbacks.values()):
            callback(*(msg + args))


class Subscriber(SimpleFilter):
    """ROS 2 subscription as a filter: every received message is signalled on."""

    def __init__(
        self, node: Any, msg_type: Any, topic: str, qos_profile: Any = 10, **kwargs: Any
    ) -> None:
        super().__init__()
        self.node = node
        self.topic = topic
        self.sub = node.create_subscription(msg_type, topic, self.callback, qos_profile, **kwargs)

    def callback(self, msg: Any) -> None:
        """Subscription callback: pass the message to the connected filters."""
        self.signalMessage(msg)

    def getTopic(self) -> str:  # noqa: N802
        """Topic name as given to the constructor."""
        return self.topic

    def __getattr__(self, key: str) -> Any:
        """Serve the wrapped subscription's attributes, as message_filters does."""
        if key == 'sub':  # not yet set: avoid recursing during construction
            raise AttributeError(key)
        return getattr(self.sub, key)


class TimeSynchronizer(SimpleFilter):
    """Emit one message per input when all inputs hold exactly the same header stamp."""

    def __init__(self, fs: Sequence[SimpleFilter], queue_size: int) -> None:
        super().__init__()
        self.queue_size = queue_size
        self.lock = threading.Lock()
        self.queues: list[dict[int, Any]] = [{} for _ in fs]
        self.input_connections = [
            source.registerCallback(self.add, queue, index)
            for index, (source, queue) in enumerate(zip(fs, self.queues, strict=True))
        ]

    def _store(self, queue: dict[int, Any], stamp_ns: int, msg: Any) -> None:
        """Keep ``msg`` under its stamp; forget the oldest stamps beyond ``queue_size``."""
        queue[stamp_ns] = msg
        while len(queue) > self.queue_size:
            del queue[min(queue)]

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int | None = None) -> None:
        """Queue ``msg`` and emit every stamp now present in all queues, oldest first."""
        with self.lock:
            self._store(my_queue, stamp_nanoseconds(msg.header.stamp), msg)
            common = reduce(set.intersection, [set(queue) for queue in self.queues])
            for stamp_ns in sorted(common):
                msgs = [queue.pop(stamp_ns) for queue in self.queues]
                self.signalMessage(*msgs)


class ApproximateTimeSynchronizer(TimeSynchronizer):
    """Emit one message per input when their stamps lie within ``slop`` seconds.

    Same search as ROS 2's Python implementation (see the module docstring); a spread of
    exactly ``slop`` does not match.
    """

    def __init__(
        self,
        fs: Sequence[SimpleFilter],
        queue_size: int,
        slop: float,
        allow_headerless: bool = False,
    ) -> None:
        super().__init__(fs, queue_size)
        self.slop = Duration(seconds=slop)
        self.allow_headerless = allow_headerless

    def _arrival_stamp(self, msg: Any) -> int | None:
        """Header stamp in ns; the ROS clock for headerless messages if allowed, else None."""
        header = getattr(msg, 'header', None)
        if header is not None and hasattr(header, 'stamp'):
            return stamp_nanoseconds(header.stamp)
        if self.allow_headerless:
            return rclpy.clock.ROSClock().now().nanoseconds
        rclpy.logging.get_logger('message_filters_approx').warning(
            'dropping a message without header.stamp (allow_headerless is False)'
        )
        return None

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int | None = None) -> None:
        """Queue ``msg`` and emit the closest complete set around it, if one exists."""
        stamp_ns = self._arrival_stamp(msg)
        if stamp_ns is None:
            return
        with self.lock:
            slop_ns = self.slop.nanoseconds
            self._store(my_queue, stamp_ns, msg)
            search_queues = [
                queue for index, queue in enumerate(self.queues) if index != my_queue_index
            ]
            candidates = []
            for queue in search_queues:
                near = [s for s in queue if abs(s - stamp_ns) <= slop_ns]
                if not near:
                    return
                candidates.append(sorted(near, key=lambda s: abs(s - stamp_ns)))
            for combination in itertools.product(*candidates):
                stamps = list(combination)
                if my_queue_index is not None:
                    stamps.insert(my_queue_index, stamp_ns)
                if max(stamps) - min(stamps) < slop_ns and all(
                    s in queue for queue, s in zip(self.queues, stamps, strict=True)
                ):
                    msgs = [queue.pop(s) for queue, s in zip(self.queues, stamps, strict=True)]
                    self.signalMessage(*msgs)
                    return
