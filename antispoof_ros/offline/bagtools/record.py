"""Record the camera topics of a live system into an MCAP rosbag2 with session labels.

For the rig: subscriptions take the serialized bytes (``raw=True``) and a writer thread
stores them unchanged, so no message is deserialized on the way to disk. Each message is
stamped with its receive time, as ``ros2 bag record`` does. Ctrl-C (or ``--duration``)
ends the recording cleanly; the bag only gets its final name once it is complete.

Labels: ``--subject/--species/--lighting/...`` label the whole recording; when standard
input is a terminal, a typed line such as ``species=print print_kind=nir`` starts a new
segment at that moment. ``--labels FILE`` (YAML or CSV, see ``labels.load_label_file``)
plans the segments instead; frames before its first segment are not recorded. A killed
recorder or a full disk leaves ``<bag>.partial``: ``--recover`` makes a bag of it.

    python -m antispoof_ros.offline.bagtools.record --out BAG (--subject S --species live
        --lighting office [--pose ahead] | --labels FILE) [--compression zstd] [--results]
        [--topics T ...] [--duration S]
    python -m antispoof_ros.offline.bagtools.record --recover BAG.partial
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
import queue
import signal
import struct
import sys
import threading
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rosbags.rosbag2.errors import WriterError

from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.nodes.topics import EYE_CORNERS, LIVENESS_RESULT, flash_frame_topic
from antispoof_ros.offline.bagtools import BagToolError, message_class
from antispoof_ros.offline.bagtools.labels import (
    LIGHTINGS,
    POSES,
    PRINT_KINDS,
    SPECIES,
    LabelSegment,
    load_label_file,
    parse_label_line,
    validate_labels,
)
from antispoof_ros.offline.bagtools.qos import bag_qos
from antispoof_ros.offline.bagtools.recovery import recover
from antispoof_ros.offline.bagtools.typestore import project_typestore
from antispoof_ros.offline.bagtools.writer import (
    COMPRESSIONS,
    EYE_CORNERS_MSGTYPE,
    FLASH_FRAME_MSGTYPE,
    LabelledBagWriter,
    absolute_topic,
    partial_path,
)
from antispoof_ros.offline.cli import (
    EXIT_FAILED,
    EXIT_OK,
    OneLineArgumentParser,
    fail,
    positive_number,
)

PROGRAM = 'antispoof_ros.offline.bagtools.record'
DEFAULT_TOPICS = tuple(flash_frame_topic(phase) for phase in DEFAULT_PATTERN)
RESULT_TOPICS = (EYE_CORNERS, LIVENESS_RESULT)
KNOWN_TYPES = {
    **{absolute_topic(flash_frame_topic(phase)): FLASH_FRAME_MSGTYPE for phase in Phase},
    absolute_topic(EYE_CORNERS): EYE_CORNERS_MSGTYPE,
    absolute_topic(LIVENESS_RESULT): 'antispoof_ros/msg/LivenessResult',
}
# Reliable history per topic: 0.8 s of 120 Hz frames while the executor is busy.
HISTORY_DEPTH = 100
# Messages waiting for the disk: ~2 s of 1920x1200 frames on four topics at 120 Hz.
QUEUE_LENGTH = 256
CDR_HEADER = 4
SPIN_PERIOD_S = 0.1
PROGRESS_PERIOD_S = 1.0
LOG_PERIOD_S = 10.0  # progress lines when stdout is not a terminal


def flash_frame_counter(data: bytes) -> int:
    """The frame_counter of a CDR-serialized FlashFrame, read without touching the pixels.

    Deserializing a whole 1920x1200 frame costs ~3 ms, a third of a 120 Hz frame period.
    Layout after the 4-byte encapsulation header: int32 sec, uint32 nanosec, frame_id
    (uint32 length, then that many bytes including the NUL), uint8 phase, and the uint64
    counter aligned to 8 bytes from the end of the encapsulation header.
    """
    order = '<' if data[1] & 1 else '>'  # CDR_LE / CDR_BE representation identifier
    (frame_id_length,) = struct.unpack_from(f'{order}I', data, CDR_HEADER + 8)
    counter_offset = (12 + frame_id_length + 1 + 7) // 8 * 8
    return struct.unpack_from(f'{order}Q', data, CDR_HEADER + counter_offset)[0]


class Recorder:
    """Subscriptions whose raw messages a writer thread appends to a bag.

    Topics of unknown type are subscribed as soon as a publisher shows their type.
    ``planned`` label segments (sorted by start) begin with the first message at or after
    their start; messages before the first of them are dropped. Segments of typed labels
    go through the same queue as the messages, so they land between the right frames.
    """

    def __init__(self, node: Node, bag: LabelledBagWriter, topics: list[str],
                 planned: list[LabelSegment] | None = None) -> None:
        self.node = node
        self.bag = bag
        self.pending = [absolute_topic(t) for t in topics]
        self.planned = list(planned or [])
        self.failure: Exception | None = None
        self.counter_range: tuple[int, int] | None = None
        self.flash_frames = 0
        self.unlabelled = 0
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_LENGTH)
        self._thread = threading.Thread(target=self._write_loop, name='bag_writer', daemon=True)
        self._thread.start()
        self.subscribe_pending()

    def subscribe_pending(self) -> None:
        """Subscribe every pending topic whose type is known or now visible in the graph."""
        graph = dict(self.node.get_topic_names_and_types())
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=HISTORY_DEPTH,
                         reliability=ReliabilityPolicy.RELIABLE)
        for topic in list(self.pending):
            msgtype = KNOWN_TYPES.get(topic) or next(iter(graph.get(topic, [])), None)
            if msgtype is None:
                continue
            if msgtype not in project_typestore().fielddefs:
                raise BagToolError(f'topic {topic}: type {msgtype} is unknown to the bag writer')
            self.node.create_subscription(message_class(msgtype), topic,
                                          self._receiver(topic, msgtype), qos, raw=True)
            self.pending.remove(topic)

    def _receiver(self, topic: str, msgtype: str) -> Callable[[bytes], None]:
        clock = self.node.get_clock()
        first = True

        def receive(data: bytes) -> None:
            nonlocal first
            if first:  # the publishers are known now; rosbag2 stores what they offer
                first = False
                self.bag.declare_offered_qos(topic, [
                    bag_qos(info.qos_profile)
                    for info in self.node.get_publishers_info_by_topic(topic)])
            self._queue.put((topic, msgtype, clock.now().nanoseconds, data))

        return receive

    def start_segment(self, labels: dict[str, object]) -> None:
        """Typed labels: a new segment from now on."""
        self._queue.put(LabelSegment(self.node.get_clock().now().nanoseconds, labels))

    def _write_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.failure is not None:
                continue
            try:
                typed = isinstance(item, LabelSegment)
                stamp_ns = item.start_ns if typed else item[2]
                while self.planned and self.planned[0].start_ns <= stamp_ns:
                    segment = self.planned.pop(0)
                    self.bag.start_segment(segment.labels, segment.start_ns)
                if typed:
                    self.bag.start_segment(item.labels, item.start_ns)
                    continue
                topic, msgtype, stamp_ns, data = item
                if not self.bag.segments:
                    self.unlabelled += 1
                    continue
                self.bag.write_serialized(topic, msgtype, stamp_ns, data)
                if msgtype == FLASH_FRAME_MSGTYPE:
                    self._count_frame(data)
            except (OSError, WriterError, BagToolError) as error:
                self.failure = error

    def _count_frame(self, data: bytes) -> None:
        counter = flash_frame_counter(data)
        low, high = self.counter_range or (counter, counter)
        self.counter_range = (min(low, counter), max(high, counter))
        self.flash_frames += 1

    @property
    def lost_frames(self) -> int:
        """Frame counters missing between the first and the last recorded FlashFrame."""
        if self.counter_range is None:
            return 0
        low, high = self.counter_range
        return high - low + 1 - self.flash_frames

    def finish(self) -> None:
        """Write what is still queued and stop the writer thread."""
        self._queue.put(None)
        self._thread.join()

    def progress(self) -> str:
        """Messages written per topic so far."""
        counts = dict(self.bag.counts)  # one atomic copy: the writer thread adds topics
        counts = ', '.join(f'{topic} {count}' for topic, count in sorted(counts.items()))
        waiting = f"; waiting for {', '.join(self.pending)}" if self.pending else ''
        return f'{counts or "no messages yet"}{waiting}'


def _parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog=PROGRAM, description=__doc__.split('\n\n')[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument('--out', type=Path, help='new bag folder (must not exist)')
    target.add_argument('--recover', type=Path, metavar='PARTIAL',
                        help='make a bag of what a killed recorder left in BAG.partial')
    parser.add_argument('--labels', type=Path, metavar='FILE',
                        help='label segments with start times (YAML or CSV) instead of the '
                             'label options')
    parser.add_argument('--subject', help='subject id, e.g. s007')
    parser.add_argument('--species', help=', '.join(SPECIES))
    parser.add_argument('--lighting', help=', '.join(LIGHTINGS))
    parser.add_argument('--pose', help=', '.join(POSES))
    parser.add_argument('--print-kind', help=f"print attacks: {', '.join(PRINT_KINDS)}")
    parser.add_argument('--mask-id', type=int, help='mask attacks: mask number')
    parser.add_argument('--note', help='free text kept with the labels')
    parser.add_argument('--compression', choices=COMPRESSIONS, default='none',
                        help='zstd: compress the MCAP chunks (default none)')
    parser.add_argument('--topics', nargs='+', default=list(DEFAULT_TOPICS),
                        help='topics to record (default: the four FlashFrame topics)')
    parser.add_argument('--results', action='store_true',
                        help=f'also record {EYE_CORNERS} and {LIVENESS_RESULT}')
    parser.add_argument('--duration', type=positive_number, metavar='S',
                        help='stop after S seconds (default: at Ctrl-C)')
    return parser


LABEL_OPTIONS = ('subject', 'species', 'lighting', 'pose', 'print_kind', 'mask_id', 'note')


def _planned_segments(args: argparse.Namespace, start_ns: int) -> list[LabelSegment]:
    """The label segments given before recording, checked; BagToolError names the problem."""
    options = {key: getattr(args, key) for key in LABEL_OPTIONS}
    if args.labels is None:
        return [LabelSegment(start_ns, validate_labels(options))]
    given = [key for key, value in options.items() if value is not None]
    if given:
        option = given[0].replace('_', '-')
        raise BagToolError(f'--labels replaces the label options (got --{option})')
    return [LabelSegment(row.start_ns(start_ns), row.labels)
            for row in load_label_file(args.labels)]


def main(argv: list[str] | None = None) -> int:
    """Record until Ctrl-C or --duration; exit 2 on bad input, 1 when nothing was written."""
    args = _parser().parse_args(argv)
    if args.recover is not None:
        return _recover(args.recover)
    topics = list(dict.fromkeys(args.topics + (list(RESULT_TOPICS) if args.results else [])))
    start_ns = time.time_ns()
    try:
        planned = _planned_segments(args, start_ns)
        bag = LabelledBagWriter(args.out, planned[0].labels, compression=args.compression,
                                keep_partial=True)
    except BagToolError as error:
        return fail(PROGRAM, error)

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    node = Node('bag_recorder', start_parameter_services=False)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        with bag:
            recorder = Recorder(node, bag, topics, planned)
            if args.labels is None and sys.stdin.isatty():
                _read_typed_labels(recorder, planned[0].labels)
            try:
                _spin(executor, recorder, stop, args.duration)
            finally:
                executor.remove_node(node)
                node.destroy_node()
                recorder.finish()
            if recorder.failure is not None:
                raise BagToolError(f'writing {args.out} failed: {recorder.failure}; what was '
                                   f'written is in {partial_path(args.out)} (--recover it)')
            if not any(topic in bag.counts for topic in map(absolute_topic, topics)):
                bag.keep_partial = False
                raise BagToolError(f'nothing received on {", ".join(topics)}; no bag written')
    except BagToolError as error:
        return fail(PROGRAM, error, EXIT_FAILED)
    finally:
        executor.shutdown()
        rclpy.try_shutdown()
    if recorder.unlabelled:
        print(f'{PROGRAM}: {recorder.unlabelled} messages before the first label segment '
              'were not recorded', flush=True)
    if recorder.planned:
        print(f'{PROGRAM}: {len(recorder.planned)} label segments start after the end of '
              'the recording; not written', flush=True)
    print(f'{PROGRAM}: wrote {args.out}: {recorder.progress()}; '
          f'frame counter gaps: {recorder.lost_frames}', flush=True)
    return EXIT_OK


def _recover(partial: Path) -> int:
    try:
        bag, counts = recover(partial)
    except (BagToolError, OSError) as error:
        return fail(PROGRAM, error)
    written = ', '.join(f'{topic} {count}' for topic, count in sorted(counts.items()))
    print(f'{PROGRAM}: recovered {bag}: {written}', flush=True)
    return EXIT_OK


def _read_typed_labels(recorder: Recorder, labels: dict[str, object]) -> None:
    """Start a thread that turns each typed line into a new label segment."""

    def read() -> None:
        current = labels
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                current = parse_label_line(line, current)
            except BagToolError as error:
                print(f'{PROGRAM}: error: {error}; labels unchanged', file=sys.stderr,
                      flush=True)
                continue
            recorder.start_segment(current)
            print(f'{PROGRAM}: new label segment: {current}', flush=True)

    threading.Thread(target=read, name='typed_labels', daemon=True).start()


def _spin(executor: SingleThreadedExecutor, recorder: Recorder, stop: threading.Event,
          duration_s: float | None) -> None:
    """Serve the subscriptions until ``stop`` or the duration, reporting progress."""
    interactive = sys.stdout.isatty()
    started = last_tick = last_report = time.monotonic()
    print(f'{PROGRAM}: recording {recorder.bag.path} (Ctrl-C to stop)', flush=True)
    while not stop.is_set() and recorder.failure is None:
        now = time.monotonic()
        if duration_s is not None and now - started >= duration_s:
            break
        executor.spin_once(timeout_sec=SPIN_PERIOD_S)
        if now - last_tick < PROGRESS_PERIOD_S:
            continue
        last_tick = now
        recorder.subscribe_pending()
        if interactive or now - last_report >= LOG_PERIOD_S:
            last_report = now
            end = '\r' if interactive else '\n'
            print(f'{now - started:7.1f} s  {recorder.progress()}', end=end, flush=True)
    if interactive:
        print(flush=True)


if __name__ == '__main__':
    sys.exit(main())
