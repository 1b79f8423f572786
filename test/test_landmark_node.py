"""landmark_node on real face photos in 1920x1200 frames: answers, bad input, end to end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from face_frames import DRIVER_SCALE, write_face_cycle
from node_process import spin_until, start_node
import numpy as np
import pytest
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.landmarks.backend import FaceBox
from antispoof_ros.msg import EyeCorners, FlashFrame
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.landmark_node import LandmarkNode, region_of_interest
from antispoof_ros.nodes.parameters import ConfigError
from antispoof_ros.nodes.topics import EYE_CORNERS, flash_frame_topic
from antispoof_ros.offline.landmark_training.samples import (
    FRAME_SHAPE,
    SampleFace,
    load_sample_faces,
    place_in_frame,
)

pytestmark = pytest.mark.ros

# Hand annotations are good to about +-1.5 px; the tracker's own tests allow 3 photo px, and
# 5 px for Grace Hopper's right outer corner, a known miss of the fit (docs/landmarks.md).
TOLERANCE_PX = 3.0
KNOWN_MISS_PX = 5.0
# Faces of the native-size photos are ~90-190 px wide: detect them at full resolution.
SMALL_FACE_PARAMETERS = {'min_face_px': 80}
FRAME_ID = 'nir_camera_optical_frame'


@pytest.fixture(scope='module')
def faces() -> dict[str, SampleFace]:
    return {face.name: face for face in load_sample_faces()}


def flash_frame(counter: int, image: Image) -> FlashFrame:
    """A front FlashFrame whose header (and its image's) is unique to ``counter``."""
    header = Header(stamp=Time(sec=1_700_000_000 + counter, nanosec=8_333_333 * (counter % 100)),
                    frame_id=FRAME_ID)
    image.header = header
    return FlashFrame(header=header, phase=FlashFrame.PHASE_FRONT, frame_counter=counter,
                      cycle_index=counter // 4, position_in_cycle=1, image=image)


def noise_frame(seed: int = 0) -> np.ndarray:
    """A dim, noisy 1920x1200 frame with nobody in it."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(20, 3, FRAME_SHAPE), 0, 255).astype(np.uint8)


def corners_of(message: EyeCorners) -> EyeCornerPoints:
    points = (message.right_eye_outer, message.right_eye_inner, message.left_eye_outer,
              message.left_eye_inner)
    return EyeCornerPoints.from_array([(p.x, p.y) for p in points])


def corner_errors(message: EyeCorners, truth: EyeCornerPoints) -> np.ndarray:
    assert message.status == EyeCorners.STATUS_OK, message.status_reason
    return np.hypot(*(corners_of(message).as_array() - truth.as_array()).T)


def tolerance(name: str) -> np.ndarray:
    """Allowed error per corner (right_outer, right_inner, left_outer, left_inner), photo px."""
    allowed = np.full(4, TOLERANCE_PX)
    if name == 'grace_hopper':
        allowed[0] = KNOWN_MISS_PX
    return allowed



class LandmarkHarness:
    """An in-process LandmarkNode and a peer that feeds it front frames and keeps its output."""

    def __init__(self, context: Context, **parameters: object) -> None:
        overrides = [Parameter(name, value=value) for name, value in parameters.items()]
        self.node = LandmarkNode(context=context, parameter_overrides=overrides)
        # named as the camera: the node refuses frames of any other publisher
        self.peer = Node('camera_node', context=context)
        self.frames = self.peer.create_publisher(FlashFrame, flash_frame_topic(Phase.FRONT), 10)
        self.answers: list[EyeCorners] = []
        self.diagnostics: list[DiagnosticStatus] = []
        self.peer.create_subscription(EyeCorners, EYE_CORNERS, self.answers.append, 50)
        self.peer.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.peer)

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        self.diagnostics += [s for s in message.status if s.name == 'landmark_node: landmarks']

    def ask(self, frame: FlashFrame) -> EyeCorners:
        """Publish ``frame`` and return the node's answer."""
        assert spin_until(self.executor, lambda: self.frames.get_subscription_count() > 0
                          and self.node.corners_publisher.get_subscription_count() > 0, 10)
        received = len(self.answers)
        self.frames.publish(frame)
        assert spin_until(self.executor, lambda: len(self.answers) > received, 10)
        assert len(self.answers) == received + 1
        return self.answers[-1]

    def close(self) -> None:
        self.executor.shutdown()
        self.peer.destroy_node()
        self.node.destroy_node()


@pytest.fixture
def harness_factory(ros_context: Context) -> Iterator[Callable[..., LandmarkHarness]]:
    made: list[LandmarkHarness] = []

    def make(**parameters: object) -> LandmarkHarness:
        made.append(LandmarkHarness(ros_context, **parameters))
        return made[-1]

    yield make
    for harness in made:
        harness.close()


@pytest.mark.parametrize('name', ['astronaut', 'grace_hopper'])
def test_faces_get_annotated_corners_and_an_empty_frame_gets_no_face(
    harness_factory: Callable[..., LandmarkHarness], faces: dict[str, SampleFace], name: str
) -> None:
    harness = harness_factory(**SMALL_FACE_PARAMETERS)
    pixels, truth = place_in_frame(faces[name], np.random.default_rng(0), centre=(700.0, 500.0))

    frame = flash_frame(41, array_to_image(pixels, 'mono8'))
    detected = harness.ask(frame)
    assert detected.header == frame.header and detected.frame_counter == 41
    assert detected.method == EyeCorners.METHOD_DETECTED
    assert np.all(corner_errors(detected, truth) <= tolerance(name))
    xs = corners_of(detected).as_array()[:, 0]
    assert xs[0] < xs[1] < xs[3] < xs[2]  # subject's right eye on the image's left
    box = detected.face_box
    assert box.x_offset <= xs.min() and xs.max() <= box.x_offset + box.width
    assert 0.6 <= detected.confidence <= 1.0 and detected.face_count == 1
    assert all(p.z == 0.0 for p in (detected.right_eye_outer, detected.left_eye_inner))

    tracked = harness.ask(flash_frame(45, array_to_image(pixels, 'mono8')))
    assert tracked.method == EyeCorners.METHOD_TRACKED and tracked.frame_counter == 45
    assert np.all(corner_errors(tracked, truth) <= tolerance(name))

    empty = flash_frame(49, array_to_image(noise_frame(), 'mono8'))
    nobody = harness.ask(empty)
    assert nobody.header == empty.header and nobody.frame_counter == 49
    assert (nobody.status, nobody.method) == (EyeCorners.STATUS_NO_FACE, EyeCorners.METHOD_NONE)
    assert nobody.status_reason == 'no face detected'
    assert nobody.face_box.width == 0 and nobody.confidence == 0.0

    # Mono12 in 16 bit, as camera_node publishes it: scaled back by the default 12 bits, the
    # frame equals the mono8 one, and after the lost face it is detected afresh.
    mono12 = flash_frame(53, array_to_image(pixels.astype(np.uint16) << 4, 'mono16'))
    again = harness.ask(mono12)
    assert again.method == EyeCorners.METHOD_DETECTED
    assert corners_of(again) == corners_of(detected)


def test_face_box_is_clipped_to_whole_pixels_inside_the_image() -> None:
    box = region_of_interest(FaceBox(-10.4, 5.5, 100.2, 1300.0), width=1920, height=1200)
    assert (box.x_offset, box.y_offset, box.width, box.height) == (0, 5, 101, 1195)


def _bad_images() -> dict[str, Image]:
    yuv = array_to_image(np.zeros((4, 8), np.uint8), 'mono8')
    yuv.encoding = 'yuv422'
    empty = Image(height=0, width=0, encoding='mono8', step=0)
    truncated = array_to_image(noise_frame(), 'mono8')
    truncated.data = truncated.data[: len(truncated.data) // 2]
    absurd = Image(height=100_000, width=100_000, encoding='mono8', step=100_000)
    colour = array_to_image(np.zeros((120, 160, 3), np.uint8), 'bgr8')
    return {
        "unsupported encoding 'yuv422'": yuv,
        'empty image 0x0': empty,
        'truncated image: 1152000 bytes, expected 2304000': truncated,
        'absurd image size 100000x100000': absurd,
        'expected a 2-D grey image, got shape (120, 160, 3)': colour,
    }


def test_bad_frames_are_answered_with_the_reason_and_the_node_keeps_going(
    harness_factory: Callable[..., LandmarkHarness], faces: dict[str, SampleFace],
    capfd: pytest.CaptureFixture[str],
) -> None:
    harness = harness_factory(diagnostics_period_s=0.2)
    for counter, (reason, image) in enumerate(_bad_images().items()):
        frame = flash_frame(counter, image)
        answer = harness.ask(frame)
        assert answer.header == frame.header and answer.frame_counter == counter
        assert answer.status == EyeCorners.STATUS_BAD_INPUT
        assert reason in answer.status_reason
        assert answer.method == EyeCorners.METHOD_NONE

    driver = faces['astronaut'].cropped()
    pixels, truth = place_in_frame(driver, np.random.default_rng(0), scale=DRIVER_SCALE)
    good = harness.ask(flash_frame(100, array_to_image(pixels, 'mono8')))
    assert np.all(corner_errors(good, truth) <= TOLERANCE_PX * DRIVER_SCALE)

    def frames_reported() -> str:
        last = harness.diagnostics[-1] if harness.diagnostics else None
        return {kv.key: kv.value for kv in last.values}['frames_total'] if last else ''

    assert spin_until(harness.executor, lambda: frames_reported() == '6', timeout=5)
    reports = [{kv.key: kv.value for kv in status.values} for status in harness.diagnostics]
    assert reports[-1]['bad_input_total'] == '5' and reports[-1]['last_problem']
    assert sum(int(r['bad_input']) for r in reports) == 5
    assert sum(int(r['detected']) for r in reports) == 1
    assert any(status.level == DiagnosticStatus.WARN and status.message == 'bad input frames'
               for status in harness.diagnostics)
    busy = [r for r in reports if r['detected'] != '0' or r['bad_input'] != '0']
    assert busy and all(float(r['latency_p99_ms']) > 0 for r in busy)

    # the warning names the reason, and is throttled: one line for five bad frames in a burst
    warnings = [line for line in capfd.readouterr().err.splitlines() if 'bad frame' in line]
    assert len(warnings) == 1 and "unsupported encoding 'yuv422'" in warnings[0], warnings


def test_frames_of_a_publisher_that_is_not_the_camera_node_are_never_searched(
    harness_factory: Callable[..., LandmarkHarness], faces: dict[str, SampleFace]
) -> None:
    harness = harness_factory(camera_node_name='/rig/camera_node', diagnostics_period_s=0.2)
    pixels, _ = place_in_frame(faces['astronaut'].cropped(), np.random.default_rng(0),
                               scale=DRIVER_SCALE)
    answer = harness.ask(flash_frame(1, array_to_image(pixels, 'mono8')))
    assert answer.status == EyeCorners.STATUS_NO_FACE
    assert answer.status_reason == ('untrusted frame source: /camera_node publishes on '
                                    '/camera/front/flash_frame, which only /rig/camera_node may')
    assert spin_until(harness.executor, lambda: any(
        status.level == DiagnosticStatus.ERROR for status in harness.diagnostics), timeout=5)
    error = next(s for s in harness.diagnostics if s.level == DiagnosticStatus.ERROR)
    values = {kv.key: kv.value for kv in error.values}
    assert error.message == answer.status_reason and values['detected'] == '0'
    assert values['untrusted_total'] == '1' and values['source_untrusted_onsets'] == '1'


@pytest.mark.parametrize(
    ('name', 'value', 'expected'),
    [
        ('driver_choice', 'nearest', "'nearest' is not one of largest, central"),
        ('min_confidence', 1.5, "parameter 'min_confidence'"),
        ('min_face_px', 40, "parameter 'min_face_px'"),
        ('phase', 'blue', "'blue' is not one of dark, front, right, left"),
    ],
)
def test_bad_parameters_are_config_errors(
    ros_context: Context, name: str, value: object, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        LandmarkNode(context=ros_context, parameter_overrides=[Parameter(name, value=value)])


def test_bad_parameter_stops_the_executable_with_one_line() -> None:
    node = start_node('landmark_node', '--ros-args',
                      '-p', 'redetect_every:=0')
    code = node.wait(timeout=30)
    lines = [line for line in node.lines if line.strip()]
    assert code == 2 and len(lines) == 1, node.output
    assert lines[0].startswith("[ERROR] landmark_node: configuration error: parameter "
                               "'redetect_every'")



@pytest.mark.slow
def test_camera_and_landmark_executables_end_to_end(
    tmp_path: Path, ros_context: Context, faces: dict[str, SampleFace]
) -> None:
    truth = write_face_cycle(tmp_path / 'frames', faces['astronaut'].cropped())
    front_frames: dict[int, Header] = {}
    answers: list[EyeCorners] = []
    watcher = Node('landmark_e2e_watcher', context=ros_context)
    watcher.create_subscription(
        FlashFrame, flash_frame_topic(Phase.FRONT),
        lambda frame: front_frames.__setitem__(frame.frame_counter, frame.header), 10)
    watcher.create_subscription(EyeCorners, EYE_CORNERS, answers.append, 100)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(watcher)

    def seen() -> list[EyeCorners]:
        """Answers to the front frames the watcher saw too (both subscribed by then)."""
        return [answer for answer in answers if answer.frame_counter in front_frames]

    landmarks = start_node('landmark_node')
    camera = start_node('camera_node', '--ros-args',
                        '-p', 'emulated_cameras:=1',
                        '-p', f'emulator_image_dir:={tmp_path / "frames"}')
    try:
        assert landmarks.wait_for_line(r'\[landmark_node\]: parameters:'), landmarks.output
        assert spin_until(executor, lambda: len(seen()) >= 10, timeout=40), (
            camera.output + landmarks.output)
        assert camera.stop() == 0 and landmarks.stop() == 0
    finally:
        camera.stop()
        landmarks.stop()
        executor.shutdown()
        watcher.destroy_node()
    for answer in seen():
        assert answer.header == front_frames[answer.frame_counter]
        assert answer.frame_counter % len(DEFAULT_PATTERN) == DEFAULT_PATTERN.index(Phase.FRONT)
        assert np.all(corner_errors(answer, truth) <= TOLERANCE_PX * DRIVER_SCALE)
    assert EyeCorners.METHOD_TRACKED in {answer.method for answer in seen()}
    assert 'Traceback' not in landmarks.output + camera.output
