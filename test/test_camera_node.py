"""camera_node on pylon's emulated Basler camera: phase labels, faults, diagnostics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from node_process import spin_until, start_node
import numpy as np
import pytest
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from antispoof_ros.flash import DEFAULT_PATTERN
from antispoof_ros.msg import FlashFrame
from antispoof_ros.nodes.camera_node import CameraNode
from antispoof_ros.nodes.image_conversion import image_to_array
from antispoof_ros.nodes.topics import flash_frame_topic, image_topic
from antispoof_ros.offline.synthetic.phase_coded_images import (
    decode_phase,
)

pytestmark = pytest.mark.ros


class FrameCollector:
    """Subscribes to every phase topic and /diagnostics and keeps what arrives."""

    def __init__(self, context: Context) -> None:
        self.node = Node('frame_collector', context=context)
        self.frames: list[FlashFrame] = []
        self.images: list[Image] = []
        self.diagnostics: list[dict[str, str]] = []
        for phase in DEFAULT_PATTERN:
            self.node.create_subscription(
                FlashFrame, flash_frame_topic(phase), self.frames.append, 100
            )
            self.node.create_subscription(Image, image_topic(phase), self.images.append, 100)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == 'camera_node: camera':
                self.diagnostics.append({kv.key: kv.value for kv in status.values})

    def mislabelled(self) -> list[tuple[int, int, int]]:
        """(counter, labelled phase, phase in the pixels) of every wrongly labelled frame."""
        wrong = []
        for frame in self.frames:
            shown = decode_phase(image_to_array(frame.image))
            if shown != frame.phase:
                wrong.append((frame.frame_counter, frame.phase, int(shown)))
        return wrong



@pytest.fixture
def collector(ros_context: Context) -> Iterator[tuple[FrameCollector, SingleThreadedExecutor]]:
    collector = FrameCollector(ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(collector.node)
    yield collector, executor
    executor.shutdown()
    collector.node.destroy_node()


def emulator_arguments(folder: Path, **extra: object) -> list[str]:
    overrides = {'emulated_cameras': 1, 'emulator_image_dir': str(folder),
                 'retry_delay_s': 0.1, 'diagnostics_period_s': 0.5, **extra}
    args = ['--ros-args']
    for name, value in overrides.items():
        args += ['-p', f'{name}:={value}']
    return args


def test_frames_arrive_on_every_phase_topic_with_the_phase_in_their_pixels(
    coded_folder: Path, collector: tuple[FrameCollector, SingleThreadedExecutor]
) -> None:
    frames, executor = collector
    camera = start_node('camera_node', *emulator_arguments(coded_folder))
    try:
        assert spin_until(executor, lambda: len(frames.frames) >= 80, timeout=30), camera.output
        assert camera.stop() == 0
    finally:
        camera.stop()
    assert {frame.phase for frame in frames.frames} == {int(p) for p in DEFAULT_PATTERN}
    assert frames.mislabelled() == []
    first = frames.frames[0]
    assert (first.image.width, first.image.height, first.image.encoding) == (1920, 1200, 'mono8')
    assert first.header == first.image.header
    assert first.header.frame_id == 'nir_camera_optical_frame'
    counters = [frame.frame_counter for frame in frames.frames]
    assert len(set(counters)) == len(counters)
    for frame in frames.frames:
        assert frame.position_in_cycle == frame.frame_counter % 4
        assert frame.cycle_index == frame.frame_counter // 4
    assert len(frames.images) > 0 and frames.images[0].encoding == 'mono8'


def test_failed_buffers_and_a_device_removal_never_mislabel_and_are_counted(
    coded_folder: Path, ros_context: Context,
    collector: tuple[FrameCollector, SingleThreadedExecutor],
) -> None:
    frames, executor = collector
    parameters = [Parameter('emulated_cameras', value=1),
                  Parameter('emulator_image_dir', value=str(coded_folder)),
                  Parameter('retry_delay_s', value=0.1),
                  Parameter('diagnostics_period_s', value=0.3)]
    camera = CameraNode(context=ros_context, parameter_overrides=parameters)
    executor.add_node(camera)
    try:
        assert spin_until(executor, lambda: len(frames.frames) >= 20, timeout=20)
        pylon_camera = camera.stream.camera.camera
        pylon_camera.ForceFailedBufferCount.Value = 6  # the emulator's own fault injection
        pylon_camera.ForceFailedBuffer.Execute()
        assert spin_until(executor, lambda: camera.stream.statistics.failed >= 6, timeout=10)
        pylon_camera.FirePnPCallback.Execute()  # the emulated device is unplugged
        assert spin_until(executor, lambda: camera.stream.statistics.reconnects == 1, timeout=10)
        received = len(frames.frames)
        assert spin_until(executor, lambda: len(frames.frames) >= received + 20, timeout=20)
        assert spin_until(
            executor, lambda: frames.diagnostics and frames.diagnostics[-1]['reconnects'] == '1',
            timeout=5,
        )
    finally:
        executor.remove_node(camera)
        camera.destroy_node()
    assert frames.mislabelled() == []
    counters = [frame.frame_counter for frame in frames.frames]
    assert len(set(counters)) == len(counters)
    for phase in DEFAULT_PATTERN:  # one topic per phase: ordered within a topic
        on_topic = [f.frame_counter for f in frames.frames if f.phase == phase]
        assert on_topic == sorted(on_topic)
    last = frames.diagnostics[-1]
    assert int(last['failed_grabs']) >= 6
    assert last['reconnects'] == '1'
    assert last['skipped_frames'] == '0'  # failed buffers are failures, not counter gaps


def test_image_check_corrects_a_wrong_phase_offset_within_a_cycle(
    coded_folder: Path, collector: tuple[FrameCollector, SingleThreadedExecutor]
) -> None:
    frames, executor = collector
    camera = start_node('camera_node', *emulator_arguments(
        coded_folder, phase_source='image_check', phase_offset=2))
    try:
        assert spin_until(executor, lambda: len(frames.frames) >= 40, timeout=30), camera.output
        assert spin_until(executor, lambda: bool(frames.diagnostics), timeout=5)
        assert camera.stop() == 0
    finally:
        camera.stop()
    assert 'image check: phase offset 2 contradicts the images, corrected to 0' in camera.output
    # The first complete cycle is counters 0-3; from then on every label must be right.
    late = [frame for frame in frames.frames if frame.frame_counter >= 4]
    assert late and all(frame.phase_verified for frame in late)
    wrong = [w for w in frames.mislabelled() if w[0] >= 4]
    assert wrong == []
    assert frames.diagnostics[-1]['phase_errors'] == '1'
    assert frames.diagnostics[-1]['image_check_corrections'] == '1'
    assert frames.diagnostics[-1]['sequencer_mismatches'] == '0'


@pytest.mark.parametrize(
    ('override', 'expected'),
    [
        ('pixel_format:=RGB8', "'RGB8' is not one of Mono8, Mono10, Mono12"),
        ('exposure_us:=-5.0', "parameter 'exposure_us'"),
        ('width:=40000', "parameter 'width'"),
        ('flash_wiring:=sequencer', "'image_check' contradicts flash_wiring 'sequencer'"),
        ('phase_source:=sequencer', "'sequencer' contradicts flash_wiring 'none'"),
    ],
)
def test_bad_camera_parameters_fail_with_one_line(override: str, expected: str) -> None:
    camera = start_node('camera_node', '--ros-args', '-p', override)
    code = camera.wait(timeout=30)
    lines = [line for line in camera.lines if line.strip()]
    assert code == 2 and len(lines) == 1 and expected in lines[0], camera.output


def test_missing_camera_is_retried_with_a_clear_message() -> None:
    camera = start_node('camera_node', '--ros-args',
                        '-p', "serial_number:='12345678'", '-p', 'emulated_cameras:=1',
                        '-p', 'retry_delay_s:=0.1')
    try:
        assert camera.wait_for_line('retrying in', timeout=20), camera.output
        assert 'no camera matching serial 12345678 (found: Emulation serial 0815-0000)' in (
            camera.output
        )
        assert camera.stop() == 0
    finally:
        camera.stop()
    assert 'Traceback' not in camera.output


def test_mono12_is_published_as_mono16(
    coded_folder: Path, collector: tuple[FrameCollector, SingleThreadedExecutor]
) -> None:
    frames, executor = collector
    camera = start_node('camera_node',
                        *emulator_arguments(coded_folder, pixel_format='Mono12'))
    try:
        assert spin_until(executor, lambda: len(frames.frames) >= 4, timeout=30), camera.output
        assert camera.stop() == 0
    finally:
        camera.stop()
    image = frames.frames[0].image
    assert image.encoding == 'mono16'
    pixels = image_to_array(image)
    assert pixels.dtype == np.uint16 and pixels.shape == (1200, 1920)
