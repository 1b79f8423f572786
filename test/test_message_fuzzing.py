"""Property-based fuzzing of every message type the nodes subscribe to.

landmark_node subscribes FlashFrame; liveness_node FlashFrame (A and B) and EyeCorners. The
node objects run in a real rclpy context and their callbacks get hypothesis-generated
messages: arbitrary and plainly malformed images, unknown phases, absurd counters, NaN/inf
corners. No exception may escape, every message must still be answered and counted, a bad
set must never be scored, and valid input afterwards must be served as before. One burst of
malformed messages then goes over DDS to the real executables.
"""

from __future__ import annotations

from collections.abc import Iterator
import copy
import itertools
import math
import time

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from hypothesis import event, given, settings
from hypothesis import strategies as st
from node_process import spin_until, start_node
import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from antispoof_ros.flash import Phase
from antispoof_ros.msg import EyeCorners, FlashFrame, LivenessResult
from antispoof_ros.nodes.image_conversion import MAX_PIXELS
from antispoof_ros.nodes.landmark_node import LandmarkNode
from antispoof_ros.nodes.liveness_node import LivenessNode
from antispoof_ros.nodes.topics import EYE_CORNERS, LIVENESS_RESULT, flash_frame_topic
from antispoof_ros.tools.fault_injection.runner import deleted_shared_memory
from antispoof_ros.tools.fault_injection.scene import (
    CORNER_DEFECTS,
    FRAME_DEFECTS,
    Scene,
    make_scene,
    malformed,
    slot_header,
)

pytestmark = pytest.mark.ros

FIELDS = ('right_eye_outer', 'right_eye_inner', 'left_eye_outer', 'left_eye_inner')
UINT8 = st.integers(0, 255)
UINT32 = st.integers(0, 2**32 - 1)
UINT64 = st.integers(0, 2**64 - 1)
# Fuzzed counters stay below PROBE_START or jump far above it, so a probe set is always new.
PROBE_START = 2**40
COUNTERS = st.one_of(st.integers(0, 2**20), st.integers(2**63, 2**64 - 1))
FLOAT32 = st.floats(width=32)
TEXT = st.text(st.characters(blacklist_characters='\x00'), max_size=8)  # C strings on the wire
BYTES_PER_PIXEL = {'mono8': 1, 'mono16': 2, 'bgr8': 3, 'rgb8': 3}
# the nodes' main /diagnostics statuses, which carry the counters
MAIN_STATUSES = ('landmark_node: landmarks', 'liveness_node: liveness')
LANDMARK_PARAMETERS = {'min_face_px': 160}  # the scene's 640x400 frames hold a ~280 px face


# -- strategies -----------------------------------------------------------------------------------
@st.composite
def consistent_images(draw: st.DrawFn) -> Image:
    """Images whose header matches their data: odd sizes, colour, big-endian mono16."""
    encoding = draw(st.sampled_from(sorted(BYTES_PER_PIXEL)))
    height, width = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    step = width * BYTES_PER_PIXEL[encoding] + draw(st.integers(0, 3))
    data = draw(st.binary(min_size=step * height, max_size=step * height))
    return Image(height=height, width=width, encoding=encoding, step=step, data=data,
                 is_bigendian=draw(st.integers(0, 1)))


@st.composite
def arbitrary_images(draw: st.DrawFn) -> Image:
    """Headers that need not fit the data: zero and absurd sizes, unknown encodings."""
    return Image(
        height=draw(st.one_of(st.integers(0, 64), UINT32)),
        width=draw(st.one_of(st.integers(0, 64), UINT32)),
        encoding=draw(st.sampled_from(['mono8', 'mono16', 'bgr8', 'yuv422', '', '8UC1',
                                       'MONO8', 'mono8\u00e9'])),
        step=draw(st.one_of(st.integers(0, 256), UINT32)),
        data=draw(st.binary(max_size=1024)),
        is_bigendian=draw(UINT8),
    )


IMAGES = st.one_of(consistent_images(), arbitrary_images())


@st.composite
def flash_frames(draw: st.DrawFn) -> FlashFrame:
    header = Header(stamp=Time(sec=draw(st.integers(-2**31, 2**31 - 1)), nanosec=draw(UINT32)),
                    frame_id=draw(TEXT))
    return FlashFrame(header=header, phase=draw(UINT8), frame_counter=draw(COUNTERS),
                      cycle_index=draw(UINT64), position_in_cycle=draw(UINT8),
                      phase_source=draw(UINT8), phase_verified=draw(st.booleans()),
                      image=draw(IMAGES))


@st.composite
def eye_corners(draw: st.DrawFn) -> EyeCorners:
    message = EyeCorners(status=draw(UINT8), frame_counter=draw(COUNTERS),
                         confidence=draw(FLOAT32), face_count=draw(st.integers(0, 2**16 - 1)),
                         method=draw(UINT8), status_reason=draw(TEXT))
    for name in FIELDS:
        point = getattr(message, name)
        point.x, point.y, point.z = draw(FLOAT32), draw(FLOAT32), draw(FLOAT32)
    return message


# -- in-process nodes ----------------------------------------------------------------------------
@pytest.fixture(scope='module')
def scene() -> Scene:
    return make_scene()


@pytest.fixture(scope='module')
def module_context() -> Iterator[Context]:
    context = Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


class Listener:
    """Collects what the node under test publishes."""

    def __init__(self, context: Context, node: Node, message_type: type, topic: str) -> None:
        self.peer = Node(f'fuzz_listener_{node.get_name()}', context=context)
        self.messages: list = []
        self.diagnostics: list[dict[str, str]] = []
        self.peer.create_subscription(message_type, topic, self.messages.append, 100)
        self.peer.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.node = node
        self.executor = SingleThreadedExecutor(context=context)
        for item in (node, self.peer):
            self.executor.add_node(item)
        self._status_name = node.status_name

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        self.diagnostics += [{kv.key: kv.value for kv in status.values}
                             for status in message.status if status.name == self._status_name]

    def next_message(self, count_before: int) -> object:
        """The one message published since ``count_before`` messages were seen."""
        assert spin_until(self.executor, lambda: len(self.messages) > count_before, timeout=5)
        assert len(self.messages) == count_before + 1
        return self.messages[-1]

    def report(self) -> dict[str, str]:
        """The node's diagnostics values, published now."""
        reports = len(self.diagnostics)
        self.node.diagnostics.force_update()
        assert spin_until(self.executor, lambda: len(self.diagnostics) > reports, timeout=5)
        return self.diagnostics[-1]

    def close(self) -> None:
        self.executor.shutdown()
        self.peer.destroy_node()
        self.node.destroy_node()


@pytest.fixture(scope='module')
def landmarks(module_context: Context) -> Iterator[Listener]:
    node = LandmarkNode(context=module_context, parameter_overrides=[
        Parameter(name, value=value) for name, value in LANDMARK_PARAMETERS.items()])
    listener = Listener(module_context, node, EyeCorners, EYE_CORNERS)
    assert spin_until(listener.executor,
                      lambda: node.corners_publisher.get_subscription_count() > 0, 10)
    yield listener
    listener.close()


@pytest.fixture(scope='module')
def liveness(module_context: Context) -> Iterator[Listener]:
    node = LivenessNode(context=module_context)  # the shipped P2 face model
    listener = Listener(module_context, node, LivenessResult, LIVENESS_RESULT)
    assert spin_until(listener.executor,
                      lambda: node.result_publisher.get_subscription_count() > 0, 10)
    yield listener
    listener.close()


def readable_mono(image: Image) -> bool:
    """Whether a frame can be read as a 2-D grey image (independent of the node's check)."""
    size = {'mono8': 1, 'mono16': 2}.get(image.encoding)
    return (size is not None and 0 < image.height * image.width <= MAX_PIXELS
            and image.step >= image.width * size and len(image.data) >= image.step * image.height)


# -- landmark_node --------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(frame=st.one_of(flash_frames(), st.sampled_from(sorted(FRAME_DEFECTS))))
def test_landmark_node_answers_every_frame_and_still_finds_the_face(
    landmarks: Listener, scene: Scene, frame: FlashFrame | str
) -> None:
    if isinstance(frame, str):  # a named defect of a real front frame
        frame = malformed(scene.flash_frame(1, slot_header(1)), frame)
    node = landmarks.node
    frames_before, bad_before = node.statistics.frames_total, node.statistics.bad_input_total
    answers_before = len(landmarks.messages)
    node.on_frame(frame)
    answer = landmarks.next_message(answers_before)
    assert answer.header == frame.header and answer.frame_counter == frame.frame_counter
    assert node.statistics.frames_total == frames_before + 1
    event(f'status {answer.status}')
    assert (answer.status == EyeCorners.STATUS_BAD_INPUT) == (not readable_mono(frame.image))
    assert node.statistics.bad_input_total == bad_before + (
        answer.status == EyeCorners.STATUS_BAD_INPUT)
    good = scene.flash_frame(5, slot_header(5))
    node.on_frame(good)
    assert landmarks.next_message(answers_before + 1).status == EyeCorners.STATUS_OK


# -- liveness_node --------------------------------------------------------------------------------
PAIRING_MUTATIONS = st.one_of(*(
    st.tuples(st.just(target), st.just(name), values) for target, name, values in (
        (0, 'phase', UINT8), (1, 'phase', UINT8), (0, 'frame_counter', COUNTERS),
        (1, 'frame_counter', COUNTERS), (1, 'cycle_index', UINT64),
        (0, 'position_in_cycle', UINT8), (1, 'position_in_cycle', UINT8),
        (2, 'frame_counter', COUNTERS), (0, 'phase_verified', st.booleans()),
    )))
# What only the checks after pairing can catch: pixels, corner status and coordinates.
CONTENT_MUTATIONS = st.one_of(
    st.tuples(st.sampled_from([0, 1]), st.just('image'), IMAGES),
    st.tuples(st.just(2), st.just('status'), UINT8),
    st.tuples(st.just(2), st.sampled_from([f'{n}.{axis}' for n in FIELDS for axis in 'xy']),
              FLOAT32),
)
FuzzedSet = tuple[tuple[FlashFrame, FlashFrame, EyeCorners] | None, list[tuple[int, str, object]]]
FUZZED_SETS = st.one_of(
    st.tuples(st.tuples(flash_frames(), flash_frames(), eye_corners()), st.just([])),
    st.tuples(st.none(), st.lists(st.one_of(PAIRING_MUTATIONS, CONTENT_MUTATIONS),
                                  min_size=1, max_size=3)),
    st.tuples(st.none(), st.lists(CONTENT_MUTATIONS, min_size=1, max_size=2)),
)
_probes = itertools.count(PROBE_START // 4)


def valid_set(scene: Scene, counter_a: int) -> list[FlashFrame | EyeCorners]:
    """Front frame ``counter_a``, the right frame after it, and the front frame's corners."""
    header_a = slot_header(counter_a)
    return [scene.flash_frame(counter_a, header_a),
            scene.flash_frame(counter_a + 1, slot_header(counter_a + 1)),
            scene.eye_corners(counter_a, header_a)]


def build(scene: Scene, fuzzed: FuzzedSet) -> list[FlashFrame | EyeCorners]:
    """The arbitrary set, or a valid, new one with the mutations applied.

    New: newer than every pair before, so the mutations reach the checks after pairing.
    """
    arbitrary, mutations = fuzzed
    if arbitrary is not None:
        return list(arbitrary)
    messages = valid_set(scene, 4 * next(_probes) + 1)
    for target, path, value in mutations:
        *parents, name = path.split('.')
        owner = messages[target]
        for parent in parents:
            owner = getattr(owner, parent)
        setattr(owner, name, copy.deepcopy(value))
    return messages


def well_formed(frame_a: FlashFrame, frame_b: FlashFrame, corners: EyeCorners) -> bool:
    """The contract for a set that may be scored (independent of the node's checks)."""
    points = np.array([[getattr(corners, n).x, getattr(corners, n).y] for n in FIELDS])
    width, height = frame_a.image.width, frame_a.image.height
    return bool(
        (frame_a.phase, frame_b.phase) == (Phase.FRONT, Phase.RIGHT)
        and (frame_a.position_in_cycle, frame_b.position_in_cycle) == (1, 2)
        and frame_b.frame_counter == frame_a.frame_counter + 1
        and frame_a.cycle_index == frame_b.cycle_index
        and corners.frame_counter == frame_a.frame_counter
        and corners.status == EyeCorners.STATUS_OK
        and readable_mono(frame_a.image) and readable_mono(frame_b.image)
        and (frame_b.image.width, frame_b.image.height) == (width, height)
        and np.all(np.isfinite(points)) and np.all(points >= 0)
        and np.all(points[:, 0] < width) and np.all(points[:, 1] < height)
    )


def ask(liveness: Listener, messages: list[FlashFrame | EyeCorners]) -> LivenessResult:
    before = len(liveness.messages)
    liveness.node.on_pair(*messages)
    return liveness.next_message(before)


@settings(max_examples=150, deadline=None)
@given(fuzzed=FUZZED_SETS)
def test_liveness_node_never_scores_a_bad_set_and_keeps_scoring_good_ones(
    liveness: Listener, scene: Scene, fuzzed: FuzzedSet
) -> None:
    messages = build(scene, fuzzed)
    validator = liveness.node.validator
    checked_before = validator.accepted + validator.dropped
    result = ask(liveness, messages)
    assert validator.accepted + validator.dropped == checked_before + 1  # every set counted
    event(f'reason {result.reason}, scored {not math.isnan(result.score)}')
    if not math.isnan(result.score):
        assert well_formed(*messages)
    if result.decision != LivenessResult.DECISION_UNKNOWN:
        assert not math.isnan(result.score)
    # valid input is still served: after an absurd counter the first probe may be dropped
    # as a camera restart, the second must be scored
    probes = [ask(liveness, valid_set(scene, 4 * next(_probes) + 1)) for _ in range(2)]
    assert not math.isnan(probes[-1].score)


def _delta(before: dict[str, str], after: dict[str, str], keys: tuple[str, ...]) -> dict:
    return {key: int(after[key]) - int(before[key]) for key in keys}


def test_every_named_defect_is_counted_by_both_nodes(
    liveness: Listener, landmarks: Listener, scene: Scene
) -> None:
    keys = ('pairs_bad_image', 'pairs_wrong_phase', 'pairs_not_consecutive',
            'pairs_bad_input', 'pairs_corners_outside_frame', 'pairs_corners_mismatch')
    before, landmark_before = liveness.report(), landmarks.report()
    for target, defects in ((0, FRAME_DEFECTS), (1, FRAME_DEFECTS), (2, CORNER_DEFECTS)):
        for defect in defects:
            messages = valid_set(scene, 4 * next(_probes) + 1)
            messages[target] = malformed(messages[target], defect)
            assert math.isnan(ask(liveness, messages).score), (target, defect)
            if target == 0:
                answers = len(landmarks.messages)
                landmarks.node.on_frame(messages[0])
                landmarks.next_message(answers)
    rises = _delta(before, liveness.report(), keys)
    unreadable = 6  # wrong encoding, colour claimed, short step, truncated, empty, absurd
    assert rises == {'pairs_bad_image': 2 * unreadable, 'pairs_wrong_phase': 4,
                     'pairs_not_consecutive': 2, 'pairs_bad_input': 3,
                     'pairs_corners_outside_frame': 1, 'pairs_corners_mismatch': 1}
    landmark_rise = _delta(landmark_before, landmarks.report(), ('bad_input_total',))
    assert landmark_rise == {'bad_input_total': unreadable}


# -- one burst over DDS to the real executables ---------------------------------------------------
BURST_NAMESPACE = 'fuzz_burst'


@pytest.mark.slow
def test_real_nodes_survive_a_burst_of_malformed_messages(
    ros_context: Context, scene: Scene
) -> None:
    # A namespace of its own: the module's in-process nodes still subscribe to the plain topics.
    peer = Node('fuzz_burst', namespace=BURST_NAMESPACE, context=ros_context)
    inputs = ((flash_frame_topic(Phase.FRONT), FlashFrame),
              (flash_frame_topic(Phase.RIGHT), FlashFrame), (EYE_CORNERS, EyeCorners))
    publishers = {topic: peer.create_publisher(kind, topic, 200) for topic, kind in inputs}
    results: list[LivenessResult] = []
    answers: list[EyeCorners] = []
    diagnostics: dict[str, dict[str, str]] = {}
    peer.create_subscription(LivenessResult, LIVENESS_RESULT, results.append, 100)
    peer.create_subscription(EyeCorners, 'fuzz/landmark_corners', answers.append, 100)
    peer.create_subscription(DiagnosticArray, '/diagnostics', lambda m: diagnostics.update(
        {s.name.split(':')[0]: {kv.key: kv.value for kv in s.values} for s in m.status
         if s.name in MAIN_STATUSES}), 50)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(peer)
    # the peer plays camera, and every message of the burst must arrive to be counted
    period = ['-r', f'__ns:=/{BURST_NAMESPACE}', '-p', 'diagnostics_period_s:=0.2',
              '-p', 'camera_node_name:=fuzz_burst', '-p', 'frame_qos:=reliable']
    liveness = start_node('liveness_node', '--ros-args', *period)
    landmarks = start_node('landmark_node', '--ros-args', *period,
                           '-p', 'min_face_px:=160',
                           '-r', f'{EYE_CORNERS}:=fuzz/landmark_corners')
    processes = (liveness, landmarks)
    topics = list(publishers)
    try:
        assert spin_until(executor, lambda: publishers[topics[0]].get_subscription_count() == 2
                          and publishers[topics[1]].get_subscription_count() == 1
                          and publishers[topics[2]].get_subscription_count() == 1
                          and peer.count_publishers(LIVENESS_RESULT) == 1, timeout=40), (
            f'deleted by another process: {deleted_shared_memory()}\n'
            + liveness.output + landmarks.output)
        counter = 1
        for target, defects in ((0, FRAME_DEFECTS), (1, FRAME_DEFECTS), (2, CORNER_DEFECTS)):
            for defect in defects:
                messages = valid_set(scene, counter)
                messages[target] = malformed(messages[target], defect)
                for topic, message in zip(topics, messages, strict=True):
                    publishers[topic].publish(message)
                counter += 4
                spin_until(executor, lambda: False, timeout=0.005)  # 200 sets/s
        burst_end, first_valid = len(results), counter
        started = time.monotonic()
        while time.monotonic() - started < 3.0:  # valid cycles at 30 Hz
            for topic, message in zip(topics, valid_set(scene, counter), strict=True):
                publishers[topic].publish(message)
            counter += 4
            spin_until(executor, lambda: False, timeout=1 / 30)
            if any(not math.isnan(r.score) for r in results[burst_end:]) and any(
                    a.status == EyeCorners.STATUS_OK for a in answers):
                break
        def counted(node: str, keys: tuple[str, ...]) -> bool:
            report = diagnostics.get(node, {})
            return all(int(report.get(key, 0)) > 0 for key in keys)

        assert spin_until(executor, lambda: counted('landmark_node', ('bad_input_total',))
                          and counted('liveness_node', ('pairs_bad_image', 'pairs_wrong_phase',
                                                        'pairs_bad_input')), timeout=5), (
            diagnostics)
        assert all(process.running for process in processes)
        for process in processes:
            assert process.stop() == 0
    finally:
        for process in processes:
            process.stop()
        executor.shutdown()
        peer.destroy_node()
    scored = [r for r in results if not math.isnan(r.score)]
    assert scored and all(r.frame_counter_a >= first_valid for r in scored)
    assert any(answer.status == EyeCorners.STATUS_OK for answer in answers)
    # the landmark node keeps the 5 newest frames: a burst may overrun it, never crash it
    assert 1 <= [a.status for a in answers].count(EyeCorners.STATUS_BAD_INPUT) <= 6
    assert all('Traceback' not in process.output for process in processes)
