"""Bag tools: writer, replay to a subscriber in this process, record round trip, bad input."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
import time

from node_process import RELIABLE_DEEP, REPO, replayed_frames, start_module
import numpy as np
import pytest
from rclpy.context import Context
from rclpy.node import Node
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from std_msgs.msg import Header, String

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.msg import EyeCorners, FlashFrame
from antispoof_ros.nodes.image_conversion import image_to_array
from antispoof_ros.nodes.topics import flash_frame_topic
from antispoof_ros.offline.bagtools import BagToolError
from antispoof_ros.offline.bagtools.labels import LABELS_TOPIC, read_label_segments
from antispoof_ros.offline.bagtools.record import flash_frame_counter
from antispoof_ros.offline.bagtools.writer import GROUND_TRUTH_EYE_CORNERS, FlashBagWriter

LABELS = {'subject': 's001', 'species': 'print', 'lighting': 'office', 'print_kind': 'nir'}
START_NS = 1_700_000_000_000_000_000
PERIOD_NS = 8_333_333
CORNERS = EyeCornerPoints((100.0, 80.0), (130.0, 81.0), (190.0, 80.5), (160.0, 81.5))


def frame_pixels(counter: int, shape: tuple[int, int]) -> np.ndarray:
    """Pixels that differ from frame to frame and from row to row."""
    rows = np.arange(shape[0], dtype=np.uint32)[:, None] * 7 + counter * 13
    return ((rows + np.arange(shape[1], dtype=np.uint32)) % 251).astype(np.uint8)


def frame_shape(counter: int) -> tuple[int, int]:
    """Three cycles at 320x200, then one at full resolution."""
    return (200, 320) if counter < 12 else (1200, 1920)


def write_test_bag(path: Path, frames: int = 16) -> None:
    with FlashBagWriter(path, LABELS) as writer:
        for counter in range(frames):
            stamp = START_NS + counter * PERIOD_NS
            phase = DEFAULT_PATTERN[counter % len(DEFAULT_PATTERN)]
            writer.write_frame(phase, frame_pixels(counter, frame_shape(counter)), counter, stamp)
            if phase == Phase.FRONT:
                writer.write_eye_corners(counter, stamp, CORNERS, (80, 40, 150, 190))


@pytest.fixture(scope='module')
def test_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('bags') / 'generated'
    write_test_bag(path)
    return path


def assert_frame(frame: FlashFrame, counter: int) -> None:
    phase = DEFAULT_PATTERN[counter % len(DEFAULT_PATTERN)]
    assert (frame.phase, frame.frame_counter) == (phase, counter)
    assert (frame.cycle_index, frame.position_in_cycle) == (counter // 4, counter % 4)
    assert frame.header.stamp.sec * 10**9 + frame.header.stamp.nanosec == \
        START_NS + counter * PERIOD_NS
    assert frame.image.header == frame.header
    np.testing.assert_array_equal(image_to_array(frame.image),
                                  frame_pixels(counter, frame_shape(counter)))


def test_writer_stores_frames_truth_and_labels(test_bag: Path) -> None:
    assert sorted(p.name for p in test_bag.parent.iterdir()) == ['generated']
    with Reader(test_bag) as reader:
        records = [(c.topic, t, raw) for c, t, raw in reader.messages()]
    frames = [deserialize_message(raw, FlashFrame) for topic, _, raw in records
              if topic.endswith('/flash_frame')]
    assert {topic for topic, _, _ in records} == {
        LABELS_TOPIC, GROUND_TRUTH_EYE_CORNERS,
        *(f'/{flash_frame_topic(phase)}' for phase in DEFAULT_PATTERN)}
    for counter, frame in enumerate(sorted(frames, key=lambda f: f.frame_counter)):
        assert_frame(frame, counter)
    assert len(frames) == 16

    truths = [deserialize_message(raw, EyeCorners) for topic, _, raw in records
              if topic == GROUND_TRUTH_EYE_CORNERS]
    assert [t.frame_counter for t in truths] == [1, 5, 9, 13]
    assert (truths[0].left_eye_outer.x, truths[0].face_box.height) == (190.0, 190)

    label_records = [(t, raw) for topic, t, raw in records if topic == LABELS_TOPIC]
    assert len(label_records) == 1 and label_records[0][0] == START_NS
    text = deserialize_message(label_records[0][1], String).data
    assert json.loads(text) == {'start_ns': START_NS, 'labels': LABELS}
    segments = read_label_segments(test_bag)
    assert [(s.start_ns, s.labels) for s in segments] == [(START_NS, LABELS)]


def test_writer_keeps_label_segments(tmp_path: Path) -> None:
    mask = {'subject': 's002', 'species': 'mask', 'lighting': 'dark', 'mask_id': 3}
    with FlashBagWriter(tmp_path / 'bag', LABELS) as writer:
        writer.write_frame(Phase.DARK, frame_pixels(0, (20, 30)), 0, 100)
        writer.start_segment(mask, 200)
        writer.write_frame(Phase.FRONT, frame_pixels(1, (20, 30)), 1, 200)
    assert [(s.start_ns, s.labels) for s in read_label_segments(tmp_path / 'bag')] == [
        (100, LABELS), (200, mask)]


@pytest.mark.parametrize('mistake', ['wrong phase', 'exception'])
def test_writer_leaves_nothing_when_writing_fails(tmp_path: Path, mistake: str) -> None:
    error = ValueError if mistake == 'wrong phase' else RuntimeError
    with pytest.raises(error), FlashBagWriter(tmp_path / 'bag', LABELS) as writer:
        writer.write_frame(Phase.DARK, frame_pixels(0, (20, 30)), 0, 100)
        if mistake == 'wrong phase':
            writer.write_frame(Phase.LEFT, frame_pixels(1, (20, 30)), 1, 200)
        raise RuntimeError('generator crashed')
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('labels, reason', [
    ({'subject': 's', 'species': 'alien', 'lighting': 'office'}, "unknown species 'alien'"),
    ({'subject': 's', 'species': 'live', 'lighting': 'office', 'mask_id': 2}, 'mask id'),
    ({'species': 'live', 'lighting': 'office'}, 'labels lack subject'),
])
def test_writer_rejects_bad_labels(tmp_path: Path, labels: dict, reason: str) -> None:
    with pytest.raises(BagToolError, match=reason):
        FlashBagWriter(tmp_path / 'bag', labels)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('frame_id', ['', 'a', 'abcd', 'nir_camera_optical_frame'])
@pytest.mark.parametrize('counter', [0, 7, 2**40 + 3])
def test_frame_counter_is_read_without_deserializing(frame_id: str, counter: int) -> None:
    frame = FlashFrame(header=Header(frame_id=frame_id), phase=3, frame_counter=counter)
    assert flash_frame_counter(serialize_message(frame)) == counter


def run_tool(module: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', f'antispoof_ros.offline.bagtools.{module}', *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.mark.ros
@pytest.mark.parametrize('speed', [['--as-fast-as-possible'], ['--rate', '4']])
def test_replay_delivers_every_frame(ros_context: Context, test_bag: Path,
                                     speed: list[str]) -> None:
    frames, replay = replayed_frames(ros_context, test_bag, *speed, wanted=16)
    assert 'replayed 21 of 21 messages' in replay.output
    for counter, frame in enumerate(sorted(frames, key=lambda f: f.frame_counter)):
        assert_frame(frame, counter)
    assert len(frames) == 16


@pytest.mark.ros
def test_record_round_trip(ros_context: Context, tmp_path: Path) -> None:
    bag = tmp_path / 'recorded'
    recorder = start_module('antispoof_ros.offline.bagtools.record',
                            '--out', str(bag), '--subject', 's003', '--species', 'live',
                            '--lighting', 'halogen', '--pose', 'left45')
    node = Node('camera_stand_in', context=ros_context)
    publishers = {phase: node.create_publisher(FlashFrame, flash_frame_topic(phase),
                                               RELIABLE_DEEP) for phase in DEFAULT_PATTERN}
    try:
        assert recorder.wait_for_line('recording'), recorder.output
        deadline = time.monotonic() + 20
        while any(p.get_subscription_count() == 0 for p in publishers.values()):
            assert time.monotonic() < deadline, 'recorder never subscribed'
            time.sleep(0.05)
        with Reader(_bag_for_messages(tmp_path)) as reader:
            sent = [deserialize_message(raw, FlashFrame) for c, _, raw in reader.messages()
                    if c.msgtype == 'antispoof_ros/msg/FlashFrame']
        for frame in sent:
            publishers[Phase(frame.phase)].publish(frame)
        assert all(p.wait_for_all_acked() for p in publishers.values())
        time.sleep(0.5)  # the recorder takes and queues what its reader acknowledged
        assert recorder.stop() == 0, recorder.output
    finally:
        recorder.stop()
        node.destroy_node()
    assert 'frame counter gaps: 0' in recorder.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ['recorded', 'source']
    with Reader(bag) as reader:
        received = [deserialize_message(raw, FlashFrame) for c, _, raw in reader.messages()
                    if c.msgtype == 'antispoof_ros/msg/FlashFrame']
    assert sorted(received, key=lambda f: f.frame_counter) == sent
    labels = read_label_segments(bag)[0].labels
    assert labels == {'subject': 's003', 'species': 'live', 'lighting': 'halogen',
                      'pose': 'left45'}


def _bag_for_messages(folder: Path) -> Path:
    """Eight small frames to publish, written by the writer under test."""
    path = folder / 'source'
    write_test_bag(path, frames=8)
    return path


def foreign_type_bag(path: Path) -> None:
    """A valid rosbag2 whose only topic has a type no installed package defines."""
    typestore = get_typestore(Stores.ROS2_KILTED)
    typestore.register(get_types_from_msg('int32 value', 'other_pkg/msg/Reading'))
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection('/reading', 'other_pkg/msg/Reading',
                                           typestore=typestore)
        writer.write(connection, 1, typestore.serialize_cdr(
            typestore.types['other_pkg/msg/Reading'](value=1), 'other_pkg/msg/Reading'))


def truncated_bag(test_bag: Path, path: Path) -> None:
    path.mkdir()
    (path / 'metadata.yaml').write_bytes((test_bag / 'metadata.yaml').read_bytes())
    mcap = next(test_bag.glob('*.mcap'))
    (path / mcap.name).write_bytes(mcap.read_bytes()[:4000])


@pytest.mark.parametrize('case, reason', [
    ('truncated', 'not a readable rosbag2'),
    ('foreign file', 'not a readable rosbag2'),
    ('foreign type', "'other_pkg/msg/Reading' is not installed"),
    ('missing', 'not a readable rosbag2'),
])
def test_replay_rejects_unusable_bags(tmp_path: Path, test_bag: Path, case: str,
                                      reason: str) -> None:
    path = tmp_path / 'input'
    if case == 'truncated':
        truncated_bag(test_bag, path)
    elif case == 'foreign file':
        path = tmp_path / 'notes.txt'
        path.write_text('not a bag\n')
    elif case == 'foreign type':
        foreign_type_bag(path)
    result = run_tool('replay', str(path), '--wait-for-subscribers', '1', '--wait-timeout', '1')
    assert result.returncode == 2, result.stderr
    assert result.stdout == '' and len(result.stderr.splitlines()) == 1
    assert reason in result.stderr


@pytest.mark.parametrize('case, reason', [
    ('unknown species', "unknown species 'dog'"),
    ('unwritable', 'is not an existing folder'),
    ('existing', 'exists already'),
])
def test_record_rejects_bad_input(tmp_path: Path, case: str, reason: str) -> None:
    out, species = tmp_path / 'bag', 'live'
    if case == 'unknown species':
        species = 'dog'
    elif case == 'unwritable':
        (tmp_path / 'file').write_text('')
        out = tmp_path / 'file' / 'bag'
    else:
        out.mkdir()
    before = sorted(tmp_path.iterdir())
    result = run_tool('record', '--out', str(out), '--subject', 's', '--species', species,
                      '--lighting', 'dark', '--duration', '1')
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1 and reason in result.stderr
    assert sorted(tmp_path.iterdir()) == before


@pytest.mark.ros
def test_record_without_publishers_leaves_no_bag(tmp_path: Path) -> None:
    result = run_tool('record', '--out', str(tmp_path / 'bag'), '--subject', 's',
                      '--species', 'live', '--lighting', 'dark', '--duration', '1')
    assert result.returncode == 1
    assert 'nothing received' in result.stderr and len(result.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
