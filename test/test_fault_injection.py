"""Fault injection: every scenario against the real node executables.

The scenarios run once per module (about 30 s: node start-ups dominate); each test then checks
one scenario's row. Fast tests cover the pieces the verdicts rest on (injectors, ledger,
counter bookkeeping) and the liveness-node fixes the faults exposed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
import math

from diagnostic_msgs.msg import DiagnosticArray
from node_process import spin_until
import numpy as np
import pytest
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from antispoof_ros.camera.phase_labels import counter_label
from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import Phase
from antispoof_ros.liveness.pairing import StreamAnomaly, StreamMonitor
from antispoof_ros.liveness.pipeline import corners_inside
from antispoof_ros.msg import EyeCorners, FlashFrame, LivenessResult
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.liveness_node import LivenessNode
from antispoof_ros.nodes.messages import eye_corners_message, flash_frame_message, frame_header
from antispoof_ros.nodes.topics import EYE_CORNERS, LIVENESS_RESULT, flash_frame_topic
from antispoof_ros.tools.fault_injection.feed import Ledger
from antispoof_ros.tools.fault_injection.judge import (
    CumulativeCounters,
    ScenarioResult,
    anomaly_increase,
    check_expectations,
    report,
)
from antispoof_ros.tools.fault_injection.runner import main, run_scenarios
from antispoof_ros.tools.fault_injection.scenarios import (
    BY_NAME,
    RECOVERY_LIMIT_S,
    SCENARIOS,
    UNPLUGS,
)
from antispoof_ros.tools.fault_injection.scene import (
    FAULT_CYCLES,
    MALFORMED_KINDS,
    DropFrames,
    DuplicateMessages,
    MalformedBurst,
    ReorderCycles,
    malformed,
)
from antispoof_ros.tools.harness.frame_player import Outgoing

pytestmark = pytest.mark.ros

FRONT_TOPIC, RIGHT_TOPIC = flash_frame_topic(Phase.FRONT), flash_frame_topic(Phase.RIGHT)

# What each fault must raise in /diagnostics, at least by this much (exact where it is known).
EXPECTED_RISES = {
    'camera_disconnect': {'camera_node.reconnects': UNPLUGS, 'camera_node.failed_grabs': UNPLUGS},
    'landmark_kill': {'landmark_node.restarts': 1, 'liveness_node.input_missing': 1},
    'liveness_restart': {'liveness_node.restarts': 1},
    'replay_injection': {'liveness_node.source_untrusted_onsets': 1},
    'frames_dropped': {'liveness_node.input_missing': FAULT_CYCLES},  # every right frame
    'frames_duplicated': {'liveness_node.input_duplicate': 3 * FAULT_CYCLES},
    'frames_reordered': {'liveness_node.pairs_out_of_order': FAULT_CYCLES // 2,
                         'liveness_node.input_out_of_order': 3 * FAULT_CYCLES // 2},
    'malformed_burst': {'liveness_node.pairs_bad_image': 1, 'liveness_node.pairs_bad_input': 1,
                        'liveness_node.pairs_wrong_phase': 1,
                        'liveness_node.pairs_corners_outside_frame': 1,
                        'landmark_node.bad_input_total': 1},
}
EXACT = {'camera_node.reconnects', 'landmark_node.restarts', 'liveness_node.restarts',
         'liveness_node.input_duplicate', 'liveness_node.pairs_out_of_order'}
# Faults that leave the node without a valid pair for longer than its timeout.
STARVING = {'landmark_kill', 'frames_dropped', 'frames_reordered', 'malformed_burst',
            'replay_injection'}
# Faults that restart a node: its start-up is reported apart from the recovery.
RESTARTS = {'landmark_kill', 'liveness_restart'}


@pytest.fixture(scope='module')
def scenario_results() -> dict[str, ScenarioResult]:
    return {result.fault: result for result in run_scenarios()}


@pytest.mark.slow
@pytest.mark.parametrize('name', SCENARIOS)
def test_fault_degrades_to_unknown_recovers_within_a_second_and_is_counted(
    scenario_results: dict[str, ScenarioResult], name: str
) -> None:
    result = scenario_results[name]
    print(result.row())
    assert result.injected > 0
    assert result.crashes == 0, result.row()
    assert (result.mispaired, result.mislabelled, result.bad_during) == (0, 0, 0), result.row()
    if name in STARVING:
        assert result.unknown_during > 0, result.row()
    expectation = BY_NAME[name].expectation
    assert result.recovery_s is not None, result.row()
    assert result.recovery_s <= expectation.recovery_limit_s, result.row()
    if expectation.no_live:  # injected frames: nothing is LIVE while they come
        assert result.results_during_fault > 0 and result.live_during_fault == 0, result.row()
    assert (result.startup_s is not None and result.startup_s > 0) == (name in RESTARTS), (
        result.row())
    for counter, least in EXPECTED_RISES[name].items():
        rise = result.counters_up.get(counter, 0)
        assert rise == least if counter in EXACT else rise >= least, (counter, result.row())
    assert result.ok, result.failures


# -- the pieces the verdicts rest on ------------------------------------------------------------
def _frame(counter: int, pixels: np.ndarray | None = None) -> FlashFrame:
    header = frame_header(counter * 1_000_000_000)
    if pixels is None:
        pixels = np.full((8, 8), counter % 256, np.uint8)
    return flash_frame_message(counter_label(counter, verified=True), header,
                               array_to_image(pixels, 'mono8', header))


def _slot(counter: int) -> list[Outgoing]:
    frame = _frame(counter)
    items = [Outgoing(flash_frame_topic(Phase(frame.phase)), frame, counter)]
    if frame.phase == Phase.FRONT:
        items.append(Outgoing(EYE_CORNERS, eye_corners_message(frame.header, counter, None),
                              counter))
    return items


def _run(injector: object, counters: range) -> list[Outgoing]:
    return [item for counter in counters for item in injector(counter, _slot(counter))]


def test_injectors_touch_only_their_window_and_count_what_they_did() -> None:
    window = range(8, 8 + 4 * FAULT_CYCLES)
    everything = range(0, window.stop + 8)

    dropped = DropFrames(window.start)
    sent = _run(dropped, everything)
    frames_sent = {i.counter for i in sent if i.topic != EYE_CORNERS}
    assert sorted(c for c in frames_sent if c % 4 == 2) == [2, 6, window.stop + 2,
                                                             window.stop + 6]
    assert dropped.injected == len(set(everything) - frames_sent) > FAULT_CYCLES
    assert set(everything) - frames_sent <= set(window)
    assert len([i for i in sent if i.topic == EYE_CORNERS]) == len(everything) // 4

    duplicated = DuplicateMessages(window.start)
    assert len(_run(duplicated, everything)) == sum(len(_slot(c)) for c in everything) + (
        duplicated.injected) and duplicated.injected == 5 * FAULT_CYCLES

    reordered = ReorderCycles(window.start)
    fronts = [i.counter for i in _run(reordered, everything) if i.topic == FRONT_TOPIC]
    assert sorted(fronts) == [c for c in everything if c % 4 == 1]  # none lost
    assert fronts[2:4] == [window.start + 5, window.start + 1]  # cycle 1 before cycle 0
    assert reordered.injected == FAULT_CYCLES // 2

    burst = MalformedBurst(window.start)
    broken = [i for i in _run(burst, everything) if not i.genuine]
    assert len(broken) == burst.injected == FAULT_CYCLES
    assert all(window.start <= i.counter < window.stop for i in broken)
    assert {(i.topic, i.counter) for i in broken} == {
        (MALFORMED_KINDS[k % len(MALFORMED_KINDS)][0], window.start + 4 * k + (
            2 if MALFORMED_KINDS[k % len(MALFORMED_KINDS)][0] == RIGHT_TOPIC else 1))
        for k in range(FAULT_CYCLES)}


def test_malformed_copies_leave_the_original_intact() -> None:
    frame = _frame(5)
    broken = malformed(frame, 'truncated_data')
    assert len(broken.image.data) == len(frame.image.data) // 2 and len(frame.image.data) == 64
    corners = EyeCorners(frame_counter=5)
    assert math.isnan(malformed(corners, 'nan_corners').right_eye_outer.x)
    assert corners.right_eye_outer.x == 0.0


def test_ledger_accepts_only_an_intact_front_right_pair_with_its_corners() -> None:
    ledger = Ledger()
    for counter in range(8):
        ledger.add_frame(counter, int(counter_label(counter).phase), counter)
    ledger.corners.update({1, 5})
    assert ledger.valid_pair(1, 2) and ledger.valid_pair(5, 6)
    assert not ledger.valid_pair(1, 3) and not ledger.valid_pair(2, 3)
    assert not ledger.valid_pair(0, 1)  # dark + front
    ledger.tainted.add(6)
    assert not ledger.valid_pair(5, 6)
    ledger.corners.discard(1)
    assert not ledger.valid_pair(1, 2)


def test_counter_totals_survive_a_node_restart_and_only_anomalies_are_reported() -> None:
    counters = CumulativeCounters()
    counters.update('liveness_node', {'pairs_accepted': '40', 'pairs_duplicate': '2'})
    before = counters.snapshot()
    counters.update('liveness_node', {'pairs_accepted': '3', 'pairs_duplicate': '1'})
    after = counters.snapshot()
    assert after[('liveness_node', 'pairs_duplicate')] == 3
    assert anomaly_increase(before, after) == {'liveness_node.pairs_duplicate': 1,
                                               'liveness_node.restarts': 1}


def test_report_names_every_failed_expectation() -> None:
    held = ScenarioResult('frames_dropped', 46, 'frames', recovery_s=0.2,
                          counters_up={'liveness_node.input_missing': 31})
    failed = ScenarioResult('landmark_kill', 1, 'SIGKILL', startup_s=1.37,
                            failures=['no recovery within 1.0 s'])
    text = report([held, failed])
    assert 'liveness_node.input_missing +31' in held.row() and 'never' in failed.row()
    assert '1.37 s' in failed.row() and '1.37' not in held.row()
    assert 'FAILED landmark_kill: no recovery within 1.0 s' in text
    assert 'worst recovery 0.20 s (node start-ups up to 1.37 s before it)' in text
    assert 'frames_dropped:' not in text and text.endswith('1 scenario(s) failed')


def test_start_up_of_a_restarted_node_does_not_count_against_recovery() -> None:
    expectation = BY_NAME['landmark_kill'].expectation
    counters = dict.fromkeys(expectation.counters, 1)
    slow_start = ScenarioResult('landmark_kill', 1, 'SIGKILL', unknown_during=3,
                                recovery_s=0.3, startup_s=5.0, counters_up=counters)
    check_expectations(slow_start, expectation)
    assert slow_start.ok, slow_start.failures
    late = ScenarioResult('landmark_kill', 1, 'SIGKILL', unknown_during=3,
                          recovery_s=RECOVERY_LIMIT_S + 0.01, startup_s=0.1,
                          counters_up=counters)
    check_expectations(late, expectation)
    assert late.failures == [f'no recovery within {RECOVERY_LIMIT_S:.1f} s']


def test_cli_refuses_an_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(['--only', 'meteor_strike'])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "invalid choice: 'meteor_strike'" in error
    assert 'Traceback' not in error


# -- regression tests for the fixes the faults led to --------------------------------------------
def test_stream_monitor_counts_gaps_duplicates_reordering_and_jumps() -> None:
    monitor = StreamMonitor(step=4)
    anomalies = [monitor.add(counter) for counter in (1, 5, 13, 13, 9, 17, 2**64 - 1, 21, 25)]
    assert anomalies == [None, None, StreamAnomaly.MISSING, StreamAnomaly.DUPLICATE,
                         StreamAnomaly.OUT_OF_ORDER, None, StreamAnomaly.COUNTER_JUMP,
                         StreamAnomaly.COUNTER_JUMP, None]
    assert monitor.counts == {StreamAnomaly.MISSING: 1, StreamAnomaly.DUPLICATE: 1,
                              StreamAnomaly.OUT_OF_ORDER: 1, StreamAnomaly.COUNTER_JUMP: 2}
    with pytest.raises(ValueError, match='step must be at least 1'):
        StreamMonitor(step=0)


def test_corners_inside_the_frame() -> None:
    inside = np.array([[0.0, 0.0], [639.5, 399.5]])
    assert corners_inside(inside, (400, 640))
    assert not corners_inside(inside + [1.0, 0.0], (400, 640))
    assert not corners_inside(np.array([[-0.1, 10.0]]), (400, 640))


@dataclass
class LivenessUnderTest:
    node: LivenessNode
    executor: SingleThreadedExecutor
    results: list[LivenessResult] = field(default_factory=list)
    diagnostics: list[dict[str, str]] = field(default_factory=list)

    def pair_results(self) -> list[LivenessResult]:
        # the node's timeout notices (no frame B) come whenever the executor is slow
        return [result for result in self.results if result.frame_counter_b]

    def on_diagnostics(self, message: DiagnosticArray) -> None:
        self.diagnostics += [{kv.key: kv.value for kv in s.values} for s in message.status
                             if s.name == self.node.status_name]

    def report(self) -> dict[str, str]:
        """The node's diagnostics values, published now."""
        reports = len(self.diagnostics)
        self.node.diagnostics.force_update()
        assert spin_until(self.executor, lambda: len(self.diagnostics) > reports, timeout=5)
        return self.diagnostics[-1]


@pytest.fixture
def liveness(ros_context: Context) -> Iterator[LivenessUnderTest]:
    node = LivenessNode(context=ros_context,
                        parameter_overrides=[Parameter('diagnostics_period_s', value=60.0)])
    under_test = LivenessUnderTest(node, SingleThreadedExecutor(context=ros_context))
    peer = Node('fault_regression_peer', context=ros_context)
    peer.create_subscription(LivenessResult, LIVENESS_RESULT, under_test.results.append, 50)
    peer.create_subscription(DiagnosticArray, '/diagnostics', under_test.on_diagnostics, 10)
    for item in (node, peer):
        under_test.executor.add_node(item)
    assert spin_until(under_test.executor,
                      lambda: node.result_publisher.get_subscription_count() > 0, 10)
    yield under_test
    under_test.executor.shutdown()
    peer.destroy_node()
    node.destroy_node()


def _pair(counter_a: int, pixels: np.ndarray, corner_xy: tuple[float, float]
          ) -> tuple[FlashFrame, FlashFrame, EyeCorners]:
    frame_a, frame_b = _frame(counter_a, pixels), _frame(counter_a + 1, pixels)
    x, y = corner_xy
    points = EyeCornerPoints((x, y), (x + 20, y), (x + 80, y), (x + 60, y))
    return frame_a, frame_b, eye_corners_message(frame_a.header, counter_a, points)


def test_unusable_pairs_are_counted_and_corners_outside_the_frame_are_never_scored(
    liveness: LivenessUnderTest
) -> None:
    pixels = np.random.default_rng(0).integers(20, 200, (240, 320), dtype=np.uint8)
    good = _pair(1, pixels, (100.0, 100.0))
    outside = _pair(5, pixels, (1e7, 100.0))  # finite, far outside the 320x240 frame
    truncated = _pair(9, pixels, (100.0, 100.0))
    truncated[1].image.data = truncated[1].image.data[:100]
    for pair in (good, outside, truncated):
        liveness.node.on_pair(*pair)
    assert spin_until(liveness.executor, lambda: len(liveness.pair_results()) == 3, timeout=5)
    results = liveness.pair_results()
    assert not math.isnan(results[0].score)
    assert [math.isnan(r.score) for r in results[1:]] == [True, True]
    assert {r.reason for r in results[1:]} == {LivenessResult.REASON_BAD_INPUT}
    report = liveness.report()
    assert (report['pairs_accepted'], report['pairs_corners_outside_frame'],
            report['pairs_bad_image'], report['pairs_model_error']) == ('3', '1', '1', '0')


def test_lost_and_duplicated_inputs_are_counted_though_no_set_reaches_the_validator(
    ros_context: Context, liveness: LivenessUnderTest
) -> None:
    feeder = Node('fault_regression_feeder', context=ros_context)
    front = feeder.create_publisher(FlashFrame, FRONT_TOPIC, 50)
    right = feeder.create_publisher(FlashFrame, RIGHT_TOPIC, 50)
    executor = liveness.executor
    executor.add_node(feeder)
    try:
        assert spin_until(executor, lambda: right.get_subscription_count() > 0, 10)
        for counter in (1, 1, 5, 13):  # front 1 twice, front 9 lost; no corners at all
            front.publish(_frame(counter))
        right.publish(_frame(2))
        right.publish(_frame(14))  # right 6 and 10 lost
        assert spin_until(executor, lambda: sum(
            m.counts[StreamAnomaly.MISSING] for m in liveness.node.input_monitors) == 3, 5)
        report = liveness.report()
    finally:
        executor.remove_node(feeder)
        feeder.destroy_node()
    assert (report['input_missing'], report['input_duplicate']) == ('3', '1')
    assert report['pairs_accepted'] == '0' and not liveness.pair_results()
