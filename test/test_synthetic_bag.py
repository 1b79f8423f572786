"""Generated scenarios -> MCAP bag -> replay -> a subscriber gets every frame with its phase."""

from __future__ import annotations

from pathlib import Path

from bag_checks import check_rosbag2_metadata, decode_independently, offered_qos
from node_process import spin_until, start_module
import numpy as np
import pytest
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import Reader

from antispoof_ros.flash import DEFAULT_PATTERN
from antispoof_ros.msg import EyeCorners, FlashFrame
from antispoof_ros.nodes.image_conversion import image_to_array
from antispoof_ros.nodes.topics import flash_frame_topic
from antispoof_ros.offline.bagtools.labels import read_label_segments
from antispoof_ros.offline.bagtools.synthetic_bag import main as synthetic_bag_main
from antispoof_ros.offline.bagtools.synthetic_bag import write_synthetic_bag
from antispoof_ros.offline.synthetic.protocol import (
    ProtocolConfig,
    build_protocol,
    pick_pylon_scenarios,
)
from antispoof_ros.offline.synthetic.scene import Split

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def generated_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    protocol = build_protocol(ProtocolConfig(subjects=8, masks=3))
    picked = pick_pylon_scenarios(
        [s for s in protocol.scenarios if s.split == Split.TEST], 2)
    bag = tmp_path_factory.mktemp('bags') / 'synthetic'
    assert write_synthetic_bag(bag, picked, cycles=1, progress=False) == 8
    return bag


def test_bag_holds_frames_truth_and_one_label_segment_per_scenario(generated_bag: Path) -> None:
    with Reader(generated_bag) as reader:
        topics = {c.topic: c.msgcount for c in reader.connections}
    assert all(topics[f'/{flash_frame_topic(p)}'] == 2 for p in DEFAULT_PATTERN)
    assert topics['/ground_truth/eye_corners'] == 2
    segments = read_label_segments(generated_bag)
    assert len(segments) == 2 and {s.labels['split'] for s in segments} == {'test'}


def test_generated_bag_decodes_without_this_package(generated_bag: Path) -> None:
    counts, decoded = decode_independently(generated_bag)
    print('independently decoded:', dict(counts))
    frames = [m for p in DEFAULT_PATTERN for m in decoded[f'/{flash_frame_topic(p)}']]
    assert sorted(m.position_in_cycle for m in frames) == sorted(
        int(p) for p in DEFAULT_PATTERN for _ in range(2))
    assert all(len(m.image.data) == m.image.step * m.image.height > 0 for m in frames)
    assert all(m.phase == m.position_in_cycle for m in frames)
    truth = decoded['/ground_truth/eye_corners']
    assert {m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in truth} <= {
        m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in frames}
    front = f'/{flash_frame_topic(DEFAULT_PATTERN[1])}'
    stored = offered_qos(check_rosbag2_metadata(generated_bag), front)
    assert [(q['reliability'], q['durability']) for q in stored] == [('reliable', 'volatile')]


@pytest.mark.ros
def test_replayed_bag_delivers_every_frame_with_its_phase(
    generated_bag: Path, ros_context: Context
) -> None:
    node = Node('synthetic_listener', context=ros_context)
    frames: list[FlashFrame] = []
    truth: list[EyeCorners] = []
    deep = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE)
    for phase in DEFAULT_PATTERN:
        node.create_subscription(FlashFrame, flash_frame_topic(phase), frames.append, deep)
    node.create_subscription(EyeCorners, '/ground_truth/eye_corners', truth.append, deep)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    replay = start_module('antispoof_ros.offline.bagtools.replay',
                          str(generated_bag), '--as-fast-as-possible',
                          '--wait-for-subscribers', '1')
    try:
        assert spin_until(executor, lambda: len(frames) >= 8 and len(truth) >= 2,
                          timeout=30), replay.output
        assert replay.wait(timeout=15) == 0, replay.output
    finally:
        replay.stop()
        executor.shutdown()
        node.destroy_node()
    assert sorted(f.frame_counter for f in frames) == list(range(8))
    for frame in frames:
        assert frame.phase == DEFAULT_PATTERN[frame.frame_counter % 4]
        assert (frame.image.width, frame.image.height) == (1920, 1200)
    dark = [image_to_array(f.image).mean() for f in frames if f.phase == 0]
    flashed = [image_to_array(f.image).mean() for f in frames if f.phase == 1]
    assert max(dark) < min(flashed)  # the pixels are the phases' own
    assert {t.frame_counter for t in truth} == {1, 5}
    assert all(np.isfinite(t.right_eye_outer.x) for t in truth)


def test_bad_arguments_give_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert synthetic_bag_main(['--out', str(tmp_path / 'b'), '--scenarios', '0']) == 2
    assert 'must be at least 1' in capsys.readouterr().err
    (tmp_path / 'exists').mkdir()
    assert synthetic_bag_main(['--out', str(tmp_path / 'exists'), '--scenarios', '1',
                               '--cycles', '1', '--no-progress']) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and 'error' in error
    assert not (tmp_path / 'exists.partial').exists()
