"""Publish a rosbag2 on its topics, for offline evaluation through the real nodes.

``--rate R`` keeps the recorded timing (R times faster); ``--as-fast-as-possible`` does not
wait. Either way a message is published only once every matched reliable subscriber has
acknowledged the previous one on its topic (``wait_for_all_acked``), so the transport never
drops a frame: a slow subscriber slows the replay down instead. Acknowledged means received,
not processed: a subscriber whose history is shallower than its processing backlog can still
drop frames, so subscribers that must see every frame use a deep (or KEEP_ALL) history.
Messages are published as the serialized bytes stored in the bag, unchanged.

``--clock`` also publishes ``/clock`` (rosgraph_msgs/Clock) with the recorded time of every
message just before the message itself, as ``ros2 bag play --clock-topics-all`` does. Nodes
started with ``use_sim_time:=true`` then measure ages and timeouts in recorded time, so
their verdicts do not depend on the replay speed.

    python -m antispoof_ros.offline.bagtools.replay BAG [--rate 1.0 | --as-fast-as-possible]
        [--clock] [--wait-for-subscribers N]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import signal
import sys
import time

import rclpy
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rosbags.rosbag2 import Reader
from rosbags.rosbag2.errors import ReaderError
from rosgraph_msgs.msg import Clock
from tqdm import tqdm

from antispoof_ros.nodes.messages import ros_time
from antispoof_ros.offline.bagtools import BagToolError, message_class
from antispoof_ros.offline.bagtools.labels import GROUND_TRUTH_NAMESPACE, unfinished_recording
from antispoof_ros.offline.cli import (
    EXIT_FAILED,
    EXIT_OK,
    OneLineArgumentParser,
    fail,
    positive_number,
)

PROGRAM = 'antispoof_ros.offline.bagtools.replay'
# Fast DDS piggybacks a heartbeat (which makes readers acknowledge) on a sample only when
# the writer's history is full or a send buffer's worth of data went out; otherwise
# acknowledgements wait for the periodic heartbeat. A history of one makes every sample ask
# at once (measured as fast as possible: ~100 full frames/s against under 5/s with depth
# 100, and the final wait for acknowledgements takes milliseconds instead of seconds).
HISTORY_DEPTH = 1
POLL_PERIOD_S = 0.05
CLOCK_TOPIC = '/clock'
# The nodes fed by a replay trust the camera topics' publisher by this name (camera_node_name).
NODE_NAME = 'bag_replay'
# Problems the storage plugins raise for damaged files, besides ReaderError.
CORRUPTION_ERRORS = (ReaderError, OSError, EOFError, ValueError, KeyError, IndexError)


class ReplayError(RuntimeError):
    """The replay could not go on (no subscriber came, a subscriber stopped acknowledging)."""


@dataclass(frozen=True)
class BagTopics:
    """What a bag holds, checked before any ROS participant starts."""

    path: Path
    message_classes: dict[str, type]
    message_count: int

    @property
    def awaited_topics(self) -> list[str]:
        """Topics that need subscribers before replaying; ground truth is optional."""
        return [topic for topic in self.message_classes
                if not topic.startswith(f'{GROUND_TRUTH_NAMESPACE}/')]


@dataclass
class ReplayStats:
    """Messages published per topic, and the wall time it took."""

    published: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def total(self) -> int:
        """Messages published on all topics."""
        return sum(self.published.values())


def inspect_bag(path: Path) -> BagTopics:
    """Open a bag and check that every topic's type is CDR of an installed message type."""
    if reason := unfinished_recording(path):
        raise BagToolError(reason)
    try:
        with Reader(path) as reader:
            classes = {}
            for connection in reader.connections:
                serialization = getattr(connection.ext, 'serialization_format', 'cdr')
                if serialization != 'cdr':
                    raise BagToolError(f'{path}: topic {connection.topic} is {serialization}, '
                                       'not CDR')
                try:
                    classes[connection.topic] = message_class(connection.msgtype)
                except BagToolError as error:
                    raise BagToolError(f'{path}: topic {connection.topic}: {error}') from None
            count = reader.message_count
    except CORRUPTION_ERRORS as error:
        raise BagToolError(f'{path}: not a readable rosbag2 ({error})') from None
    if not classes or count == 0:
        raise BagToolError(f'{path}: the bag holds no messages')
    return BagTopics(Path(path), classes, count)


def replay(bag: BagTopics, context: Context | None = None, *, rate: float | None = 1.0,
           wait_for_subscribers: int = 0, wait_timeout_s: float = 30.0,
           ack_timeout_s: float = 10.0, progress: bool = False,
           clock: bool = False) -> ReplayStats:
    """Publish every message of ``bag``; ``rate`` None: as fast as acknowledged.

    ``clock``: publish ``/clock`` with each message's recorded time before the message.

    Needs an initialised rclpy ``context`` (None: the default one). KeyboardInterrupt ends
    the replay early and is reported in the statistics, not raised.
    """
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=HISTORY_DEPTH,
                     reliability=ReliabilityPolicy.RELIABLE)
    node = Node(NODE_NAME, context=context, start_parameter_services=False)
    stats = ReplayStats(published={topic: 0 for topic in bag.message_classes})
    ack_timeout = Duration(seconds=ack_timeout_s)
    try:
        publishers = {topic: node.create_publisher(cls, topic, qos)
                      for topic, cls in bag.message_classes.items()}
        clock_publisher = node.create_publisher(Clock, CLOCK_TOPIC, qos) if clock else None
        _wait_for_subscribers([publishers[t] for t in bag.awaited_topics],
                              wait_for_subscribers, wait_timeout_s)
        started = time.monotonic()
        first_stamp = None
        with Reader(bag.path) as reader, tqdm(total=bag.message_count, unit='msg',
                                              disable=not progress) as bar:
            try:
                for connection, stamp_ns, data in reader.messages():
                    if rate is not None:
                        first_stamp = stamp_ns if first_stamp is None else first_stamp
                        delay = started + (stamp_ns - first_stamp) / 1e9 / rate \
                            - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                    publisher = publishers[connection.topic]
                    # The history holds one message: it must be acknowledged before the
                    # next one on its topic replaces it. Topics still overlap.
                    if not publisher.wait_for_all_acked(ack_timeout):
                        raise ReplayError(f'subscribers of {connection.topic} stopped '
                                          f'acknowledging for {ack_timeout_s:g} s')
                    if clock_publisher is not None:
                        clock_publisher.publish(Clock(clock=ros_time(stamp_ns)))
                    publisher.publish(data if isinstance(data, bytes) else bytes(data))
                    stats.published[connection.topic] += 1
                    bar.update()
            except KeyboardInterrupt:
                stats.interrupted = True
            except CORRUPTION_ERRORS as error:
                raise BagToolError(f'{bag.path}: corrupt after {stats.total} messages '
                                   f'({error})') from None
        for topic, publisher in publishers.items():  # let the tail reach the subscribers
            if not stats.interrupted and not publisher.wait_for_all_acked(ack_timeout):
                raise ReplayError(f'subscribers of {topic} did not acknowledge the last '
                                  'messages')
        stats.seconds = time.monotonic() - started
    finally:
        node.destroy_node()
    return stats


def _wait_for_subscribers(publishers: list[Publisher], count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while count > 0 and any(p.get_subscription_count() < count for p in publishers):
        if time.monotonic() > deadline:
            missing = [p.topic_name for p in publishers if p.get_subscription_count() < count]
            raise ReplayError(f'fewer than {count} subscriber(s) after {timeout_s:g} s on '
                              f"{', '.join(missing)}")
        time.sleep(POLL_PERIOD_S)


def _parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog=PROGRAM, description=__doc__.split('\n\n')[0])
    parser.add_argument('bag', type=Path, help='rosbag2 folder (or .mcap file)')
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument('--rate', type=positive_number, default=1.0,
                       help='playback speed relative to the recording (default 1.0)')
    speed.add_argument('--as-fast-as-possible', action='store_true',
                       help='publish each message once the previous one is acknowledged')
    parser.add_argument('--clock', action='store_true',
                        help='publish /clock with the recorded time of every message '
                             '(for nodes started with use_sim_time:=true)')
    parser.add_argument('--wait-for-subscribers', type=int, default=0, metavar='N',
                        help='wait until N subscribers listen on every non-ground-truth topic')
    parser.add_argument('--wait-timeout', type=positive_number, default=30.0, metavar='S',
                        help='how long to wait for subscribers (default 30 s)')
    parser.add_argument('--ack-timeout', type=positive_number, default=10.0, metavar='S',
                        help='longest wait for a subscriber to acknowledge (default 10 s)')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Replay a bag; exit 2 on an unusable bag, 1 when subscribers fail, else 0."""
    args = _parser().parse_args(argv)
    if args.wait_for_subscribers < 0:
        return fail(PROGRAM, '--wait-for-subscribers must be 0 or more')
    try:
        bag = inspect_bag(args.bag)
    except BagToolError as error:
        return fail(PROGRAM, error)

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    try:
        stats = replay(bag, rate=None if args.as_fast_as_possible else args.rate,
                       wait_for_subscribers=args.wait_for_subscribers,
                       wait_timeout_s=args.wait_timeout, ack_timeout_s=args.ack_timeout,
                       progress=sys.stdout.isatty(), clock=args.clock)
    except BagToolError as error:
        return fail(PROGRAM, error)
    except ReplayError as error:
        return fail(PROGRAM, error, EXIT_FAILED)
    except KeyboardInterrupt:
        print(f'{PROGRAM}: interrupted before replaying', flush=True)
        return EXIT_OK
    finally:
        rclpy.try_shutdown()
    rate = stats.total / stats.seconds if stats.seconds > 0 else 0.0
    print(f"{PROGRAM}: {'interrupted after' if stats.interrupted else 'replayed'} "
          f'{stats.total} of {bag.message_count} messages on {len(stats.published)} topics '
          f'in {stats.seconds:.2f} s ({rate:.1f} msg/s)', flush=True)
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
