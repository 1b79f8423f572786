"""Recorder: label segments (file, typed), refused labels, zstd bags, crash safety, replay rate."""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import pty
import sys
import time

from bag_checks import check_rosbag2_metadata, decode_independently, offered_qos
from node_process import RELIABLE_DEEP, REPO, replayed_frames, spin_until, start_module
import numpy as np
import pytest
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader
from std_msgs.msg import String

from antispoof_ros.camera.phase_labels import counter_label
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.msg import FlashFrame
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.messages import flash_frame_message, frame_header
from antispoof_ros.nodes.topics import flash_frame_topic
from antispoof_ros.offline.bagtools import BagToolError
from antispoof_ros.offline.bagtools.labels import (
    LABELS_TOPIC,
    LabelSegment,
    load_label_file,
    parse_label_line,
    read_label_segments,
)
from antispoof_ros.offline.bagtools.writer import FlashBagWriter, partial_path
from antispoof_ros.tools.harness.processes import NodeProcess

RECORD = 'antispoof_ros.offline.bagtools.record'
LIVE = {'subject': 's001', 'species': 'live', 'lighting': 'office', 'pose': 'ahead'}
PRINT = {'subject': 's001', 'species': 'print', 'lighting': 'office', 'print_kind': 'nir'}
# 640x480 mono8: above the writer's direct-write size, so each frame reaches the file at once
FRAME_SHAPE = (480, 640)
FRAME_BYTES = FRAME_SHAPE[0] * FRAME_SHAPE[1]
FLASH_TOPICS = [f'/{flash_frame_topic(phase)}' for phase in DEFAULT_PATTERN]


def camera_frame(counter: int, shape: tuple[int, int] = FRAME_SHAPE) -> FlashFrame:
    """A frame as camera_node publishes it, stamped now."""
    header = frame_header(time.time_ns())
    pixels = np.full(shape, counter % 251, np.uint8)
    return flash_frame_message(counter_label(counter), header,
                               array_to_image(pixels, 'mono8', header))


class CameraStandIn:
    """Publishes flash frames at a fixed rate, like camera_node, to the recorder."""

    def __init__(self, context: Context) -> None:
        self.node = Node('camera_stand_in', context=context)
        self.publishers = {phase: self.node.create_publisher(
            FlashFrame, flash_frame_topic(phase), RELIABLE_DEEP) for phase in DEFAULT_PATTERN}
        self.sent = 0

    def wait_for_recorder(self, recorder: NodeProcess) -> None:
        assert recorder.wait_for_line('recording', timeout=60), recorder.output
        deadline = time.monotonic() + 60
        while any(p.get_subscription_count() == 0 for p in self.publishers.values()):
            assert recorder.running and time.monotonic() < deadline, recorder.output
            time.sleep(0.05)

    def publish(self, rate_hz: float, until: float,
                shape: tuple[int, int] = FRAME_SHAPE) -> None:
        """Frames ``rate_hz`` apart until ``until`` (time.time()); all acknowledged."""
        next_at = time.monotonic()
        while time.time() < until:
            frame = camera_frame(self.sent, shape)
            self.publishers[Phase(frame.phase)].publish(frame)
            self.sent += 1
            next_at += 1 / rate_hz
            time.sleep(max(next_at - time.monotonic(), 0))
        assert all(p.wait_for_all_acked() for p in self.publishers.values())

    def close(self) -> None:
        self.node.destroy_node()


@pytest.fixture
def camera(ros_context: Context) -> Iterator[CameraStandIn]:
    stand_in = CameraStandIn(ros_context)
    yield stand_in
    stand_in.close()


def two_segment_file(folder: Path, second_at: float) -> Path:
    """Labels: live from the start, a NIR print from ``second_at`` (absolute, seconds)."""
    path = folder / 'labels.csv'
    path.write_text('at,subject,species,lighting,pose,print_kind\n'
                    '0,s001,live,office,ahead,\n'
                    f'{second_at:.3f},s001,print,office,,nir\n')
    return path


def recorded_frames(bag: Path) -> list[tuple[int, FlashFrame]]:
    with Reader(bag) as reader:
        return [(stamp, deserialize_message(raw, FlashFrame))
                for c, stamp, raw in reader.messages() if c.topic in FLASH_TOPICS]


def mcap_size(partial: Path) -> int:
    return sum(f.stat().st_size for f in partial.rglob('*.mcap'))


def run_record(*args: str, timeout: float = 60) -> NodeProcess:
    process = start_module(RECORD, *args)
    process.wait(timeout=timeout)
    return process


# -- label files and typed labels ---------------------------------------------------------

def test_label_file_yaml_and_csv_give_the_same_segments(tmp_path: Path) -> None:
    yaml_file = tmp_path / 'labels.yaml'
    yaml_file.write_text('- {at: 12.5, subject: s001, species: print, lighting: office, '
                         'print_kind: nir}\n'
                         '- {at: 0, subject: s001, species: live, lighting: office, '
                         'pose: ahead}\n')
    csv_file = tmp_path / 'labels.csv'
    csv_file.write_text('at,subject,species,lighting,pose,print_kind\n'
                        '0,s001,live,office,ahead,\n12.5,s001,print,office,,nir\n')
    for path in (yaml_file, csv_file):
        rows = load_label_file(path)
        assert [(row.at, row.labels) for row in rows] == [(0.0, LIVE), (12.5, PRINT)]
        assert [row.start_ns(5_000_000_000) for row in rows] == [5_000_000_000,
                                                                  17_500_000_000]


def test_label_file_absolute_times_stay_absolute(tmp_path: Path) -> None:
    path = tmp_path / 'labels.csv'
    path.write_text('at,subject,species,lighting,mask_id\n1800000000.25,s2,mask,dark,3\n')
    (row,) = load_label_file(path)
    assert row.start_ns(1) == 1_800_000_000_250_000_000
    assert row.labels == {'subject': 's2', 'species': 'mask', 'lighting': 'dark', 'mask_id': 3}


@pytest.mark.parametrize('content, reason', [
    ('at,subject,species,lighting\n0,s1,live,office\n5,s1,dog,office\n',
     "row 2: unknown species 'dog'"),
    ('at,subject,species,lighting\nsoon,s1,live,office\n', "'at' must be a time"),
    ('at,subject,species,lighting\n', 'non-empty list'),
])
def test_record_refuses_a_bad_label_file_before_recording(tmp_path: Path, content: str,
                                                          reason: str) -> None:
    labels = tmp_path / 'labels.csv'
    labels.write_text(content)
    record = run_record('--out', str(tmp_path / 'bag'), '--labels', str(labels))
    assert record.exit_code == 2, record.output
    assert len(record.lines) == 1 and reason in record.output
    assert 'recording' not in record.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ['labels.csv']


def test_record_refuses_label_options_next_to_a_label_file(tmp_path: Path) -> None:
    labels = tmp_path / 'labels.csv'
    labels.write_text('at,subject,species,lighting\n0,s1,live,office\n')
    record = run_record('--out', str(tmp_path / 'bag'), '--labels', str(labels),
                        '--species', 'print')
    assert record.exit_code == 2 and len(record.lines) == 1
    assert '--labels replaces the label options (got --species)' in record.output


def test_typed_line_changes_the_labels() -> None:
    printed = parse_label_line('species=print print_kind=nir', LIVE)
    assert printed == {**PRINT, 'pose': 'ahead'}
    masked = parse_label_line('species=mask mask_id=4 pose=', printed)
    assert masked == {'subject': 's001', 'species': 'mask', 'lighting': 'office',
                      'mask_id': 4}
    for line, reason in [('species=dog', "unknown species 'dog'"),
                         ('print', "'print' is not key=value"),
                         ('print_kind=nir', "print kind given for species 'live'")]:
        with pytest.raises(BagToolError, match=reason):
            parse_label_line(line, LIVE)


def test_tools_refuse_a_bag_without_label_segments(tmp_path: Path) -> None:
    with FlashBagWriter(tmp_path / 'empty', LIVE):
        pass  # no message, so no segment
    with pytest.raises(BagToolError, match='has no label segment'):
        read_label_segments(tmp_path / 'empty')


def start_with_terminal_input(*args: str) -> tuple[NodeProcess, int]:
    """The recorder with a pseudo-terminal as standard input; returns it and the terminal."""
    terminal, typed_into = pty.openpty()
    saved_stdin = os.dup(0)
    os.dup2(typed_into, 0)  # the child inherits this process's standard input
    try:
        return start_module(RECORD, *args), terminal
    finally:
        os.dup2(saved_stdin, 0)
        os.close(saved_stdin)
        os.close(typed_into)


@pytest.mark.ros
def test_lines_typed_during_recording_start_segments(camera: CameraStandIn,
                                                     tmp_path: Path) -> None:
    bag = tmp_path / 'bag'
    recorder, terminal = start_with_terminal_input(
        '--out', str(bag), *(f'--{key}={value}' for key, value in LIVE.items()))
    try:
        camera.wait_for_recorder(recorder)
        camera.publish(60, until=time.time() + 0.5)
        os.write(terminal, b'species=dog\n')
        assert recorder.wait_for_line('labels unchanged'), recorder.output
        os.write(terminal, b'species=print print_kind=nir\n')
        assert recorder.wait_for_line('new label segment'), recorder.output
        first_of_print = camera.sent
        camera.publish(60, until=time.time() + 0.5)
        time.sleep(0.5)  # the recorder takes what its reader acknowledged
        assert recorder.stop() == 0, recorder.output
    finally:
        recorder.stop()
        os.close(terminal)
    segments = read_label_segments(bag)
    assert [s.labels for s in segments] == [LIVE, {**PRINT, 'pose': 'ahead'}]
    counts, decoded = decode_independently(bag)
    assert sum(counts[t] for t in FLASH_TOPICS) == camera.sent
    assert [m.data for m in decoded[LABELS_TOPIC]] == [s.to_json() for s in segments]
    info = check_rosbag2_metadata(bag)
    # What the graph tells of CameraStandIn's publishers, as rosbag2 stores it: reliability,
    # durability and liveliness travel in discovery, history and depth do not ('unknown', 0).
    (profile,) = offered_qos(info, FLASH_TOPICS[0])
    assert (profile['reliability'], profile['durability'], profile['liveliness'],
            profile['history']) == ('reliable', 'volatile', 'automatic', 'unknown')
    frames = recorded_frames(bag)
    assert sorted(f.frame_counter for _, f in frames) == list(range(camera.sent))
    assert all((stamp >= segments[1].start_ns) == (frame.frame_counter >= first_of_print)
               for stamp, frame in frames)


# -- compression -------------------------------------------------------------------------

@pytest.mark.ros
def test_zstd_bag_is_readable_and_replays(ros_context: Context, tmp_path: Path) -> None:
    from mcap.reader import make_reader

    bag = tmp_path / 'zstd'
    with FlashBagWriter(bag, LIVE, compression='zstd') as writer:
        for counter in range(8):
            pixels = np.tile(np.arange(640, dtype=np.uint8), (480, 1)) + counter
            writer.write_frame(DEFAULT_PATTERN[counter % 4], pixels, counter,
                               1_000_000 + counter * 8_333_333)
    with Reader(bag) as reader:
        counters = [deserialize_message(raw, FlashFrame).frame_counter
                    for c, _, raw in reader.messages() if c.topic in FLASH_TOPICS]
    assert counters == list(range(8))
    mcap_file = next(bag.glob('*.mcap'))
    with mcap_file.open('rb') as stream:
        summary = make_reader(stream).get_summary()
    assert {chunk.compression for chunk in summary.chunk_indexes} == {'zstd'}
    counts, decoded = decode_independently(bag)
    assert sorted(m.frame_counter for t in FLASH_TOPICS for m in decoded[t]) == list(range(8))
    assert mcap_file.stat().st_size < 8 * FRAME_BYTES / 4

    frames, _ = replayed_frames(ros_context, bag, '--as-fast-as-possible', wanted=8)
    assert sorted(f.frame_counter for f in frames) == list(range(8))


# -- crash safety ------------------------------------------------------------------------

@pytest.mark.ros
@pytest.mark.slow
def test_sigkill_leaves_a_partial_bag_that_recovers(camera: CameraStandIn,
                                                    tmp_path: Path) -> None:
    bag = tmp_path / 'bag'
    second_at = time.time() + 6
    labels = two_segment_file(tmp_path, second_at)
    recorder = start_module(RECORD, '--out', str(bag), '--labels', str(labels))
    try:
        camera.wait_for_recorder(recorder)
        camera.publish(60, until=second_at + 0.5)
        deadline = time.monotonic() + 60
        while mcap_size(partial_path(bag)) < camera.sent * FRAME_BYTES:
            assert time.monotonic() < deadline, recorder.output
            time.sleep(0.1)
        recorder.kill()
    finally:
        recorder.stop()
    partial = partial_path(bag)
    assert not bag.exists() and not list(partial.rglob('metadata.yaml'))
    with pytest.raises(BagToolError, match='unfinished recording'):
        read_label_segments(partial)
    replay = start_module('antispoof_ros.offline.bagtools.replay', str(partial))
    assert replay.wait(timeout=30) == 2
    assert len(replay.lines) == 1 and f'--recover {partial}' in replay.output

    recovered = run_record('--recover', str(partial))
    assert recovered.exit_code == 0, recovered.output
    assert not partial.exists() and bag.is_dir()
    counts, _ = decode_independently(bag)
    assert sum(counts[t] for t in FLASH_TOPICS) == camera.sent
    (profile,) = offered_qos(check_rosbag2_metadata(bag), FLASH_TOPICS[0])
    assert profile['reliability'] == 'reliable' and profile['history'] == 'unknown'
    frames = recorded_frames(bag)
    assert sorted(f.frame_counter for _, f in frames) == list(range(camera.sent))
    segments = read_label_segments(bag)
    assert [s.labels for s in segments] == [LIVE, PRINT]
    assert segments[1].start_ns == round(float(f'{second_at:.3f}') * 1e6) * 1000
    assert any(stamp >= segments[1].start_ns for stamp, _ in frames)


@pytest.mark.ros
def test_full_disk_ends_with_one_error_line_and_a_recoverable_partial(
        camera: CameraStandIn, tmp_path: Path) -> None:
    bag = tmp_path / 'bag'
    # RLIMIT_FSIZE: writes past it fail as on a full disk. Fast DDS' 64 MB shared-memory
    # segment must still fit, so the frames are full size and the limit is above that.
    limit = 96 << 20
    full_size = (1200, 1920)
    recorder = NodeProcess('record', [
        'prlimit', f'--fsize={limit}', sys.executable, '-m', RECORD, '--out', str(bag),
        *(f'--{key}={value}' for key, value in LIVE.items())], cwd=REPO)
    try:
        camera.wait_for_recorder(recorder)
        camera.publish(60, until=time.time() + 1.5, shape=full_size)
        assert recorder.wait(timeout=60) == 1, recorder.output
    finally:
        recorder.stop()
    errors = [line for line in recorder.lines if ': error: ' in line]
    assert len(errors) == 1 and 'File too large' in errors[0], recorder.output
    assert f'{partial_path(bag)} (--recover it)' in errors[0]
    assert not bag.exists()

    recovered = run_record('--recover', str(partial_path(bag)))
    assert recovered.exit_code == 0, recovered.output
    counters = sorted(f.frame_counter for _, f in recorded_frames(bag))
    assert 0 < len(counters) <= limit // (1200 * 1920)
    assert counters == list(range(len(counters)))
    assert [s.labels for s in read_label_segments(bag)] == [LIVE]


# -- replay of a recording ---------------------------------------------------------------

@pytest.mark.ros
@pytest.mark.slow
def test_recorded_60hz_bag_replays_at_its_rate_with_labels(
        camera: CameraStandIn, ros_context: Context, tmp_path: Path) -> None:
    bag = tmp_path / 'bag'
    second_at = time.time() + 5
    recorder = start_module(RECORD, '--out', str(bag), '--labels',
                            str(two_segment_file(tmp_path, second_at)))
    try:
        camera.wait_for_recorder(recorder)
        camera.publish(60, until=second_at + 1.5)
        time.sleep(0.5)  # the recorder takes what its reader acknowledged
        assert recorder.stop() == 0, recorder.output
    finally:
        recorder.stop()
    assert 'frame counter gaps: 0' in recorder.output
    recorded = recorded_frames(bag)
    span_s = (recorded[-1][0] - recorded[0][0]) / 1e9
    assert len(recorded) == camera.sent and len(read_label_segments(bag)) == 2

    listener = Node('replay_listener', context=ros_context)
    arrivals: list[tuple[float, str, int]] = []
    labels: list[LabelSegment] = []
    for topic in FLASH_TOPICS:
        listener.create_subscription(
            FlashFrame, topic,
            lambda f, t=topic: arrivals.append((time.monotonic(), t, f.frame_counter)),
            RELIABLE_DEEP)
    listener.create_subscription(String, LABELS_TOPIC,
                                 lambda m: labels.append(LabelSegment.from_json(m.data)),
                                 RELIABLE_DEEP)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(listener)
    launched = time.monotonic()
    replay = start_module('antispoof_ros.offline.bagtools.replay', str(bag), '--rate', '1.0',
                          '--wait-for-subscribers', '1')
    try:
        assert spin_until(executor, lambda: len(arrivals) >= camera.sent and len(labels) >= 2,
                          timeout=60 + span_s), replay.output
        assert replay.wait(timeout=30) == 0, replay.output
    finally:
        replay.stop()
        listener.destroy_node()
    assert sorted(counter for _, _, counter in arrivals) == list(range(camera.sent))
    for topic in FLASH_TOPICS:
        per_topic = [counter for _, t, counter in arrivals if t == topic]
        assert per_topic == sorted(per_topic)
    assert labels == read_label_segments(bag)
    # never faster than recorded: the last frame waits for its recorded offset
    assert arrivals[-1][0] - launched >= span_s
    assert arrivals[-1][0] - arrivals[0][0] <= span_s + 10
