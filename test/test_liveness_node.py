"""liveness_node: pairs from in-band stamps, header from frame B, and fail-closed decisions.

A feeder node publishes front/right FlashFrames and EyeCorners like the camera and
landmark nodes would; models are small real ONNX graphs with a known answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import hashlib
from pathlib import Path
import re
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Point32
from node_process import spin_until, start_node
import numpy as np
from onnx_models import constant_face_model
import pytest
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Header

from antispoof_ros.flash import Phase
from antispoof_ros.msg import EyeCorners, FlashFrame, LivenessResult
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.liveness_node import LivenessNode
from antispoof_ros.nodes.topics import EYE_CORNERS, LIVENESS_RESULT, flash_frame_topic

pytestmark = pytest.mark.ros

FRAME_PERIOD_NS = 8_333_333
LIVE, UNKNOWN, SPOOF = (LivenessResult.DECISION_LIVE, LivenessResult.DECISION_UNKNOWN,
                        LivenessResult.DECISION_SPOOF)
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


class Feeder:
    """Publishes what the camera and landmark nodes would, frame by frame."""

    def __init__(self, context: Context) -> None:
        self.node = Node('pair_feeder', context=context)
        self.frames = {phase: self.node.create_publisher(FlashFrame, flash_frame_topic(phase),
                                                         RELIABLE)
                       for phase in (Phase.FRONT, Phase.RIGHT)}
        self.corners = self.node.create_publisher(EyeCorners, EYE_CORNERS, RELIABLE)
        self.results: list[LivenessResult] = []
        self.diagnostics: list[dict[str, str]] = []
        self.levels: list[bytes] = []
        self.node.create_subscription(LivenessResult, LIVENESS_RESULT, self.results.append,
                                      RELIABLE)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        rng = np.random.default_rng(0)
        self.pixels = rng.integers(20, 200, (400, 640), dtype=np.uint8)
        self.t0 = 1_800_000_000_000_000_000
        self.period_ns = FRAME_PERIOD_NS

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == 'liveness_node: liveness':
                self.diagnostics.append({kv.key: kv.value for kv in status.values})
                self.levels.append(status.level)

    def stamp(self, counter: int) -> Header:
        ns = self.t0 + counter * self.period_ns
        header = Header(frame_id='nir_camera_optical_frame')
        header.stamp.sec, header.stamp.nanosec = divmod(ns, 1_000_000_000)
        return header

    def frame(self, counter: int, phase: Phase | None = None) -> FlashFrame:
        """The frame with this counter; its phase follows dark, front, right, left."""
        position = counter % 4
        header = self.stamp(counter)
        return FlashFrame(
            header=header, phase=int(phase if phase is not None else Phase(position)),
            frame_counter=counter, cycle_index=counter // 4, position_in_cycle=position,
            phase_source=FlashFrame.SOURCE_FRAME_COUNTER, phase_verified=True,
            image=array_to_image(self.pixels, 'mono8', header),
        )

    def corners_msg(self, counter: int, source_counter: int | None = None) -> EyeCorners:
        """Corners stamped like frame ``counter``, claiming to come from ``source_counter``."""
        return EyeCorners(
            header=self.stamp(counter), status=EyeCorners.STATUS_OK,
            frame_counter=counter if source_counter is None else source_counter,
            right_eye_outer=Point32(x=250.0, y=180.0), right_eye_inner=Point32(x=295.0, y=182.0),
            left_eye_outer=Point32(x=390.0, y=180.0), left_eye_inner=Point32(x=345.0, y=182.0),
            confidence=1.0, face_count=1, method=EyeCorners.METHOD_DETECTED,
        )

    def publish_cycle(self, cycle: int, corners: bool = True, stale: bool = False) -> None:
        front, right = 4 * cycle + 1, 4 * cycle + 2
        self.frames[Phase.FRONT].publish(self.frame(front))
        if corners:
            self.corners.publish(self.corners_msg(front, front - 4 if stale else None))
        self.frames[Phase.RIGHT].publish(self.frame(right))



@pytest.fixture
def make_pipeline(ros_context: Context) -> Iterator[Callable[..., tuple]]:
    """Start a LivenessNode with the given model and a Feeder, spun by one executor."""
    created: list[Node] = []
    executor = SingleThreadedExecutor(context=ros_context)

    def make(model: Path, **parameters: object) -> tuple[Feeder, SingleThreadedExecutor]:
        # the test models have no card: unpinned unless a test pins or refuses them; the
        # feeder stands in for the camera node and every frame it sends must arrive
        parameters = {'model_path': str(model), 'diagnostics_period_s': 0.2,
                      'allow_unpinned_model': True, 'camera_node_name': 'pair_feeder',
                      'frame_qos': 'reliable', **parameters}
        overrides = [Parameter(name, value=value) for name, value in parameters.items()]
        node = LivenessNode(context=ros_context, parameter_overrides=overrides)
        feeder = Feeder(ros_context)
        for item in (node, feeder.node):
            created.append(item)
            executor.add_node(item)
        deadline = time.monotonic() + 10
        while feeder.frames[Phase.RIGHT].get_subscription_count() == 0 or (
            feeder.corners.get_subscription_count() == 0
        ) or node.result_publisher.get_subscription_count() == 0:
            executor.spin_once(timeout_sec=0.05)
            assert time.monotonic() < deadline, 'discovery did not complete'
        return feeder, executor

    yield make
    executor.shutdown()
    for node in created:
        node.destroy_node()


def liveness_node_of(executor: SingleThreadedExecutor) -> LivenessNode:
    return next(node for node in executor.get_nodes() if isinstance(node, LivenessNode))


def feed(feeder: Feeder, executor: SingleThreadedExecutor, cycles: range, **kwargs) -> None:
    for cycle in cycles:
        feeder.publish_cycle(cycle, **kwargs)
        spin_until(executor, lambda: False, timeout=0.02)


def test_results_carry_frame_b_header_pair_and_model_identity(
    tmp_path: Path, make_pipeline: Callable[..., tuple]
) -> None:
    model = constant_face_model(tmp_path / 'live.onnx', probability_logit=6.0)
    # a slow feed on a loaded machine must not time the window out between pairs
    feeder, executor = make_pipeline(model, timeout_s=30.0)
    feed(feeder, executor, range(12))

    def pair_results() -> list:
        return [result for result in feeder.results if result.frame_counter_b]

    assert spin_until(executor, lambda: len(pair_results()) >= 12, timeout=10)
    sha256 = hashlib.sha256(model.read_bytes()).hexdigest()
    for result in pair_results():
        b = result.frame_counter_b
        assert result.header == feeder.stamp(b)
        assert (result.frame_counter_a, b % 4) == (b - 1, 2)
        assert result.stamp_a == feeder.stamp(b - 1).stamp
        assert (result.pair_config, result.region) == ('P2', 'face')
        assert (result.phase_a, result.phase_b) == (Phase.FRONT, Phase.RIGHT)
        assert result.model_sha256 == sha256
        assert result.model_name == 'constant_probe (unpinned)'  # no card, no expected_sha256
        assert result.pair_decision == LIVE and result.score > 0.99
        assert np.isfinite(result.latency_ms) and result.latency_ms >= 0
    decisions = [result.decision for result in pair_results()]
    assert decisions[:5] == [UNKNOWN] * 5  # warming up: 6 valid pairs needed
    assert decisions[-1] == LIVE
    assert spin_until(executor, lambda: bool(feeder.diagnostics), timeout=5)
    assert feeder.diagnostics[-1]['model'] == 'constant_probe (unpinned)'
    assert feeder.diagnostics[-1]['model_pinned_by'] == 'nothing (unpinned)'


def test_expected_sha256_pins_a_model_without_a_card(
    tmp_path: Path, make_pipeline: Callable[..., tuple]
) -> None:
    model = constant_face_model(tmp_path / 'live.onnx', probability_logit=6.0)
    sha256 = hashlib.sha256(model.read_bytes()).hexdigest()
    feeder, executor = make_pipeline(model, allow_unpinned_model=False,
                                     expected_sha256=sha256.upper())
    feed(feeder, executor, range(3))
    assert spin_until(executor, lambda: len(feeder.results) >= 3, timeout=10)
    assert {r.model_name for r in feeder.results} == {'constant_probe'}
    assert spin_until(executor, lambda: bool(feeder.diagnostics), timeout=5)
    assert feeder.diagnostics[-1]['model_pinned_by'] == 'expected_sha256'


def test_timeouts_follow_the_ros_clock_under_use_sim_time(
    tmp_path: Path, make_pipeline: Callable[..., tuple]
) -> None:
    """Bag replay at any rate: pairs age, and the fused decision times out, on /clock time."""
    feeder, executor = make_pipeline(constant_face_model(tmp_path / 'live.onnx', 6.0),
                                     use_sim_time=True)
    node = liveness_node_of(executor)
    clock = feeder.node.create_publisher(Clock, '/clock', 10)
    sim_ns = 1_000 * 1_000_000_000

    def tick(step_ns: int) -> None:
        nonlocal sim_ns
        sim_ns += step_ns
        message = Clock()
        message.clock.sec, message.clock.nanosec = divmod(sim_ns, 1_000_000_000)
        clock.publish(message)

    assert spin_until(executor, lambda: clock.get_subscription_count() > 0, timeout=10)
    tick(0)
    assert spin_until(executor, lambda: node.now_s() == sim_ns / 1e9, timeout=10)
    for cycle in range(12):
        tick(FRAME_PERIOD_NS * 4)
        feed(feeder, executor, range(cycle, cycle + 1))

    def scored() -> list[LivenessResult]:
        return [r for r in feeder.results if r.frame_counter_b]  # not timeout notices

    assert spin_until(executor, lambda: len(scored()) >= 12, timeout=10)
    assert scored()[-1].decision == LIVE
    # a second of wall time while the simulated clock stands still: nothing times out
    published = len(feeder.results)
    spin_until(executor, lambda: False, timeout=1.0)
    assert len(feeder.results) == published
    for _ in range(10):  # 1 s of simulated time without pairs, in steps of the check period
        tick(100_000_000)
        spin_until(executor, lambda: False, timeout=0.05)
    assert spin_until(executor, lambda: len(feeder.results) > published, timeout=10)
    notice = feeder.results[published]
    assert (notice.decision, notice.frame_counter_b) == (UNKNOWN, 0)
    assert notice.header.stamp.sec * 1_000_000_000 + notice.header.stamp.nanosec <= sim_ns


def test_spoof_model_gives_spoof(tmp_path: Path, make_pipeline: Callable[..., tuple]) -> None:
    feeder, executor = make_pipeline(constant_face_model(tmp_path / 'spoof.onnx', -6.0))
    feed(feeder, executor, range(10))
    assert spin_until(executor, lambda: len(feeder.results) >= 10, timeout=10)
    assert feeder.results[-1].decision == SPOOF
    assert LIVE not in {r.decision for r in feeder.results}


def test_nan_model_output_is_unknown_never_live(
    tmp_path: Path, make_pipeline: Callable[..., tuple]
) -> None:
    model = constant_face_model(tmp_path / 'nan.onnx', probability_logit=float('nan'))
    feeder, executor = make_pipeline(model)
    feed(feeder, executor, range(10))
    assert spin_until(executor, lambda: len(feeder.results) >= 10, timeout=10)
    assert {r.decision for r in feeder.results} == {UNKNOWN}
    assert {r.reason for r in feeder.results} == {LivenessResult.REASON_MODEL_ERROR}
    assert all(np.isnan(r.score) for r in feeder.results)


def test_stale_landmarks_are_unknown_never_live(
    tmp_path: Path, make_pipeline: Callable[..., tuple]
) -> None:
    feeder, executor = make_pipeline(constant_face_model(tmp_path / 'live.onnx', 6.0))
    feed(feeder, executor, range(1, 11), stale=True)  # corners from the previous cycle
    assert spin_until(executor, lambda: len(feeder.results) >= 10, timeout=10)
    assert {r.decision for r in feeder.results} == {UNKNOWN}
    assert {r.reason for r in feeder.results} == {LivenessResult.REASON_LANDMARKS_STALE}
    assert spin_until(executor, lambda: bool(feeder.diagnostics) and
                      feeder.diagnostics[-1]['pairs_corners_stale'] == '10', timeout=5)


def test_missing_landmarks_turn_a_live_decision_unknown(
    tmp_path: Path, make_pipeline: Callable[..., tuple]
) -> None:
    feeder, executor = make_pipeline(constant_face_model(tmp_path / 'live.onnx', 6.0),
                                     timeout_s=0.3)
    feed(feeder, executor, range(8))
    assert spin_until(executor, lambda: feeder.results and feeder.results[-1].decision == LIVE,
                      timeout=10)
    live_results = len(feeder.results)
    started = time.monotonic()
    for cycle in range(8, 40):  # the landmark node is gone, frames keep coming
        feeder.publish_cycle(cycle, corners=False)
        spin_until(executor, lambda: len(feeder.results) > live_results, timeout=0.033)
        if len(feeder.results) > live_results:
            break
    took = time.monotonic() - started
    after = feeder.results[live_results:]
    assert after and after[0].decision == UNKNOWN
    assert after[0].reason == LivenessResult.REASON_LANDMARKS_STALE
    assert took < 0.3 + 0.3  # timeout + one check period + slack
    assert LIVE not in {r.decision for r in after}


def test_drops_duplicates_reordering_and_phase_offset_never_reach_the_model(
    tmp_path: Path, make_pipeline: Callable[..., tuple]
) -> None:
    feeder, executor = make_pipeline(constant_face_model(tmp_path / 'live.onnx', 6.0))
    f, c = feeder.frames, feeder.corners

    def send(phase: Phase, counter: int, labelled: Phase | None = None) -> None:
        f[phase].publish(feeder.frame(counter, labelled))
        spin_until(executor, lambda: False, timeout=0.01)

    # cycle 0: complete
    send(Phase.FRONT, 1), c.publish(feeder.corners_msg(1)), send(Phase.RIGHT, 2)
    # cycle 1: the right frame is lost
    send(Phase.FRONT, 5), c.publish(feeder.corners_msg(5))
    # cycle 2: complete, then a duplicate of its front frame and corners
    send(Phase.FRONT, 9), c.publish(feeder.corners_msg(9)), send(Phase.RIGHT, 10)
    # cycle 3: front frame labelled right by a wrong phase offset (counter 13 is a front slot)
    send(Phase.RIGHT, 13, labelled=Phase.RIGHT), c.publish(feeder.corners_msg(13))
    send(Phase.RIGHT, 14)
    # cycle 2 again, re-delivered late (reordering)
    send(Phase.FRONT, 9), c.publish(feeder.corners_msg(9)), send(Phase.RIGHT, 10)
    # cycle 4: complete
    send(Phase.FRONT, 17), c.publish(feeder.corners_msg(17)), send(Phase.RIGHT, 18)
    spin_until(executor, lambda: False, timeout=0.5)

    scored = [r for r in feeder.results if not np.isnan(r.score)]
    assert [(r.frame_counter_a, r.frame_counter_b) for r in scored] == [(1, 2), (9, 10), (17, 18)]
    assert spin_until(executor, lambda: bool(feeder.diagnostics), timeout=5)
    drops = {k.removeprefix('pairs_'): int(v) for k, v in feeder.diagnostics[-1].items()
             if k.startswith('pairs_') and k != 'pairs_per_s'}
    assert drops['accepted'] == 3
    assert sum(drops.values()) - drops['accepted'] == len(feeder.results) - 3
    assert all(r.decision != LIVE or not np.isnan(r.score) for r in feeder.results)


def test_slop_follows_the_frame_period_the_frames_show(
    tmp_path: Path, make_pipeline: Callable[..., tuple]
) -> None:
    """A 60 Hz camera and the default frame_rate_hz of 120: pairs all the same."""
    feeder, executor = make_pipeline(constant_face_model(tmp_path / 'live.onnx', 6.0))
    node = liveness_node_of(executor)
    assert node.slop_ns == pytest.approx(2.5 * 8_333_333, rel=1e-3)  # the first guess
    feeder.period_ns = 16_666_667
    feed(feeder, executor, range(12))
    assert spin_until(executor, lambda: sum(bool(r.frame_counter_b) for r in feeder.results)
                      >= 11, timeout=10)
    assert node.slop_ns == pytest.approx(2.5 * 16_666_667, rel=1e-3)
    scored = [r for r in feeder.results if r.frame_counter_b]  # not a timeout notice
    assert len(scored) >= 11 and all(
        r.frame_counter_b == r.frame_counter_a + 1 and r.pair_decision == LIVE for r in scored)
    assert spin_until(executor, lambda: bool(feeder.diagnostics)
                      and feeder.diagnostics[-1]['slop_ms'] == '41.7', timeout=5)


def test_frames_without_corners_are_explained_in_diagnostics(
    tmp_path: Path, make_pipeline: Callable[..., tuple]
) -> None:
    feeder, executor = make_pipeline(constant_face_model(tmp_path / 'live.onnx', 6.0))
    node = liveness_node_of(executor)
    cycle = 0
    while node.no_pairs is None:  # a second without a set, however slowly the feed goes
        feed(feeder, executor, range(cycle, cycle + 5), corners=False)
        cycle += 5
        assert cycle < 2000, 'no reason given'
    assert re.fullmatch(r'no eye corners for \d+ front frames', node.no_pairs.text)
    assert spin_until(executor, lambda: bool(feeder.diagnostics)
                      and feeder.diagnostics[-1]['no_pairs_reason'].startswith('no eye corners'),
                      timeout=5)
    assert feeder.levels[-1] == DiagnosticStatus.WARN
    feed(feeder, executor, range(cycle, cycle + 3))  # corners again: the reason is gone
    assert spin_until(executor, lambda: node.no_pairs is None and bool(feeder.results),
                      timeout=5)


@pytest.mark.parametrize('content', [None, b'not an onnx model'], ids=['missing', 'corrupt'])
def test_unusable_model_file_is_a_clear_error_at_start(tmp_path: Path, content: bytes | None
                                                        ) -> None:
    model = tmp_path / 'model.onnx'
    if content is not None:
        model.write_bytes(content)
    node = start_node('liveness_node', '--ros-args',
                      '-p', f'model_path:={model}', '-p', 'allow_unpinned_model:=true')
    code = node.wait(timeout=30)
    lines = [line for line in node.lines if line.strip()]
    assert code == 2 and len(lines) == 1, node.output
    assert lines[0].startswith('[ERROR] liveness_node: configuration error:')
    assert str(model) in lines[0]


def test_model_for_another_pair_is_refused(tmp_path: Path) -> None:
    model = constant_face_model(tmp_path / 'p2.onnx', 0.0)
    node = start_node('liveness_node', '--ros-args', '-p', f'model_path:={model}',
                      '-p', 'allow_unpinned_model:=true', '-p', 'pair:=P3')
    assert node.wait(timeout=30) == 2
    assert "model was trained for pair 'P2', node uses 'P3'" in node.output


def test_fusion_settings_that_could_fuse_spoof_pairs_to_live_are_refused() -> None:
    node = start_node('liveness_node', '--ros-args', '-p', 'min_live_fraction:=0.0',
                      '-p', 'exit_margin:=-0.5')
    code = node.wait(timeout=30)
    lines = [line for line in node.lines if line.strip()]
    assert code == 2 and len(lines) == 1, node.output
    assert lines[0].startswith('[ERROR] liveness_node: configuration error: min_live_fraction 0')
    assert 'all SPOOF' in lines[0]
