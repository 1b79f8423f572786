"""camera_node as a managed node on pylon's emulated camera: every transition, CameraInfo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from node_process import spin_until, start_node
import pytest
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from antispoof_ros.camera.wiring import parse_line_outputs
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.msg import FlashFrame
from antispoof_ros.nodes.camera_node import CameraNode
from antispoof_ros.nodes.topics import camera_info_topic, flash_frame_topic, image_topic

pytestmark = pytest.mark.ros

CALIBRATION = Path(__file__).resolve().parent / 'data' / 'camera_info_1920x1200.yaml'
FLASH_LINES = 'Line2:ExposureActive,Line3:ExposureActive'
QUIET_S = 1.5  # longer than a flash cycle many times over


class Manager:
    """A lifecycle manager's view: the node's services plus everything it publishes."""

    def __init__(self, context: Context, node_name: str = 'camera_node') -> None:
        self.node = Node('lifecycle_manager', context=context)
        self.frames: list[FlashFrame] = []
        self.images: list[Image] = []
        self.infos: list[CameraInfo] = []
        for phase in DEFAULT_PATTERN:
            self.node.create_subscription(FlashFrame, flash_frame_topic(phase),
                                          self.frames.append, 100)
        self.node.create_subscription(Image, image_topic(Phase.FRONT), self.images.append, 100)
        self.node.create_subscription(CameraInfo, camera_info_topic(Phase.FRONT),
                                      self.infos.append, 100)
        self.change = self.node.create_client(ChangeState, f'/{node_name}/change_state')
        self.get = self.node.create_client(GetState, f'/{node_name}/get_state')
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def call(self, client: object, request: object, attempts: int = 1) -> object:
        assert spin_until(self.executor, client.service_is_ready, timeout=20)
        for _ in range(attempts):
            future = client.call_async(request)
            if spin_until(self.executor, future.done, timeout=30 / attempts):
                return future.result()
            client.remove_pending_request(future)
        raise AssertionError(f'no answer from {client.srv_name}')

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return self.call(self.change, request).success

    def state(self) -> str:
        # Asked again if the answer is lost: a new server may not have matched our reply
        # reader yet when it first answers (only a state query is safe to repeat).
        return self.call(self.get, GetState.Request(), attempts=6).current_state.label

    def receives_frames(self, more: int = 8) -> bool:
        wanted = len(self.frames) + more
        return spin_until(self.executor, lambda: len(self.frames) >= wanted, timeout=30)

    def stays_quiet(self) -> bool:
        """Nothing new arrives once the messages already on their way are in."""
        spin_until(self.executor, lambda: False, timeout=0.5)
        before = len(self.frames), len(self.images), len(self.infos)
        spin_until(self.executor, lambda: False, timeout=QUIET_S)
        return (len(self.frames), len(self.images), len(self.infos)) == before

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture
def manager(ros_context: Context) -> Iterator[Manager]:
    manager = Manager(ros_context)
    yield manager
    manager.close()


def camera_parameters(folder: Path, **extra: object) -> list[Parameter]:
    values = {'emulated_cameras': 1, 'emulator_image_dir': str(folder), 'retry_delay_s': 0.1,
              'line_outputs': FLASH_LINES, **extra}
    return [Parameter(name, value=value) for name, value in values.items()]


def line_sources(camera: CameraNode) -> dict[str, str]:
    """LineSource of every flash line, read back from the (emulated) camera."""
    pylon_camera = camera.stream.camera.camera
    sources = {}
    for line, _ in parse_line_outputs(FLASH_LINES.split(',')):
        pylon_camera.LineSelector.Value = line
        sources[line] = pylon_camera.LineSource.Value
    return sources


def test_every_transition_on_the_emulated_camera(
    coded_folder: Path, ros_context: Context, manager: Manager
) -> None:
    camera = CameraNode(context=ros_context,
                        parameter_overrides=camera_parameters(coded_folder, autostart=False))
    manager.executor.add_node(camera)
    try:
        assert manager.state() == 'unconfigured' and camera.stream is None
        assert manager.stays_quiet() and manager.frames == []

        assert manager.transition(Transition.TRANSITION_CONFIGURE)
        assert manager.state() == 'inactive'
        pylon_camera = camera.stream.camera.camera
        assert pylon_camera.IsOpen() and not pylon_camera.IsGrabbing()
        assert line_sources(camera) == {'Line2': 'Off', 'Line3': 'Off'}
        assert manager.stays_quiet() and manager.frames == []

        assert manager.transition(Transition.TRANSITION_ACTIVATE)
        assert manager.state() == 'active'
        assert manager.receives_frames()
        assert camera.stream.camera.camera.IsGrabbing()
        assert line_sources(camera) == {'Line2': 'ExposureActive', 'Line3': 'ExposureActive'}

        assert manager.transition(Transition.TRANSITION_DEACTIVATE)
        assert manager.state() == 'inactive'
        assert not camera.stream.camera.camera.IsGrabbing()
        assert line_sources(camera) == {'Line2': 'Off', 'Line3': 'Off'}
        assert manager.stays_quiet()

        assert manager.transition(Transition.TRANSITION_ACTIVATE)
        assert manager.receives_frames()
        # the stream still reconnects while active: the emulated device is unplugged
        camera.stream.camera.camera.FirePnPCallback.Execute()
        assert spin_until(manager.executor, lambda: camera.stream.statistics.reconnects == 1,
                          timeout=20)
        assert manager.receives_frames()

        assert manager.transition(Transition.TRANSITION_DEACTIVATE)
        assert manager.transition(Transition.TRANSITION_CLEANUP)
        assert manager.state() == 'unconfigured' and camera.stream is None
        assert manager.stays_quiet()

        assert manager.transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
        assert manager.state() == 'finalized'
    finally:
        manager.executor.remove_node(camera)
        camera.destroy_node()
    counters = [frame.frame_counter for frame in manager.frames]
    assert len(set(counters)) == len(counters)


def test_a_failed_configure_leaves_the_node_unconfigured_and_can_be_retried(
    coded_folder: Path, ros_context: Context, tmp_path: Path
) -> None:
    url = tmp_path / 'calibration.yaml'
    camera = CameraNode(context=ros_context, parameter_overrides=camera_parameters(
        coded_folder, autostart=False, camera_info_url=f'file://{url}'))
    try:
        assert camera.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert camera.stream is None
        assert 'calibration.yaml: No such file or directory' in camera.transition_error
        url.write_text(CALIBRATION.read_text())  # the file is put in place: configure again
        assert camera.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert camera.stream.camera.camera.IsOpen()
        assert camera.calibration.camera_name == 'nir_camera'
    finally:
        camera.destroy_node()


def test_shutdown_while_active_stops_grabbing_and_releases_the_camera(
    coded_folder: Path, ros_context: Context, manager: Manager
) -> None:
    camera = CameraNode(context=ros_context, parameter_overrides=camera_parameters(coded_folder))
    manager.executor.add_node(camera)
    try:
        assert manager.state() == 'active'  # autostart
        assert manager.receives_frames()
        pylon_camera = camera.stream.camera.camera
        assert camera.trigger_shutdown() == TransitionCallbackReturn.SUCCESS
        assert camera.stream is None and not pylon_camera.IsGrabbing()
        assert manager.stays_quiet()
    finally:
        manager.executor.remove_node(camera)
        camera.destroy_node()


def test_camera_info_goes_out_with_each_image_under_its_header(
    coded_folder: Path, ros_context: Context, manager: Manager
) -> None:
    camera = CameraNode(context=ros_context, parameter_overrides=camera_parameters(
        coded_folder, camera_info_url=f'file://{CALIBRATION}'))
    manager.executor.add_node(camera)
    try:
        assert spin_until(manager.executor,
                          lambda: len(manager.images) >= 5 and len(manager.infos) >= 5,
                          timeout=30)
    finally:
        manager.executor.remove_node(camera)
        camera.destroy_node()
    infos = {(i.header.stamp.sec, i.header.stamp.nanosec): i for i in manager.infos}
    paired = [(image, infos.get((image.header.stamp.sec, image.header.stamp.nanosec)))
              for image in manager.images]
    matched = [(image, info) for image, info in paired if info is not None]
    assert len(matched) >= 3
    for image, info in matched:
        assert info.header == image.header
        assert (info.width, info.height) == (image.width, image.height) == (1920, 1200)
        assert info.k[0] == 2450.5 and info.distortion_model == 'plumb_bob'


def test_without_a_calibration_one_warning_and_uncalibrated_camera_info(
    coded_folder: Path, manager: Manager
) -> None:
    camera = start_node('camera_node', '--ros-args', '-p', 'emulated_cameras:=1',
                        '-p', f'emulator_image_dir:={coded_folder}')
    try:
        assert spin_until(manager.executor, lambda: len(manager.infos) >= 2, timeout=30), (
            camera.output)
        assert camera.stop() == 0
    finally:
        camera.stop()
    warnings = [line for line in camera.lines if 'no camera_info_url' in line]
    assert len(warnings) == 1 and 'WARN' in warnings[0], camera.output
    assert not any(manager.infos[0].k) and manager.infos[0].width == 1920


def test_unmanaged_start_can_be_left_to_a_lifecycle_manager_in_the_pipeline(
    coded_folder: Path, manager: Manager
) -> None:
    pipeline = start_node('antispoof_pipeline', '--nodes', 'camera', '--ros-args',
                          '-p', 'emulated_cameras:=1', '-p', f'emulator_image_dir:={coded_folder}',
                          '-p', 'autostart:=false')
    try:
        assert manager.state() == 'unconfigured', pipeline.output
        assert manager.stays_quiet()
        assert manager.transition(Transition.TRANSITION_CONFIGURE), pipeline.output
        assert manager.transition(Transition.TRANSITION_ACTIVATE), pipeline.output
        assert manager.receives_frames(), pipeline.output
        assert manager.transition(Transition.TRANSITION_DEACTIVATE)
        assert manager.stays_quiet()
        assert pipeline.stop() == 0
    finally:
        pipeline.stop()
    assert 'Traceback' not in pipeline.output


def bad_calibration(folder: Path) -> Path:
    path = folder / 'malformed.yaml'
    path.write_text(CALIBRATION.read_text().replace('rows: 3\n  cols: 4', 'rows: 3\n  cols: 3'))
    return path


@pytest.mark.parametrize(
    ('url', 'expected'),
    [
        (lambda folder: f'file://{bad_calibration(folder)}',
         "'projection_matrix' must be 3x4, not 3x3"),
        (lambda folder: f'file://{folder}/missing.yaml',
         'missing.yaml: No such file or directory'),
        (lambda folder: f'file://{CALIBRATION}', 'calibration is for 1920x1200 images but the '
                                                 'camera delivers 960x600'),
        (lambda folder: 'http://rig/calibration.yaml', 'use file:///path/to/file.yaml'),
    ],
)
def test_unusable_calibrations_end_the_node_with_one_line(
    tmp_path: Path, url, expected: str
) -> None:
    camera = start_node('camera_node', '--ros-args', '-p', f'camera_info_url:={url(tmp_path)}',
                        '-p', 'width:=960', '-p', 'height:=600', '-p', 'emulated_cameras:=1')
    code = camera.wait(timeout=30)
    lines = [line for line in camera.lines if line.strip()]
    assert code == 2, camera.output
    errors = [line for line in lines if 'ERROR' in line]
    assert len(errors) == 1 and "parameter 'camera_info_url'" in errors[0], camera.output
    assert expected in errors[0] and 'Traceback' not in camera.output
