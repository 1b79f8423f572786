"""Injected frames are refused: tick continuity, trust hold, and the guard in the real nodes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
import copy
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from node_process import spin_until
import pytest
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from antispoof_ros.flash import Phase
from antispoof_ros.liveness.frame_source_check import SourceTrust, TickCheck
from antispoof_ros.msg import FlashFrame, LivenessResult
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.liveness_node import LivenessNode
from antispoof_ros.nodes.messages import frame_header
from antispoof_ros.nodes.source_guard import UNTRUSTED, qualified_node_name
from antispoof_ros.nodes.topics import LIVENESS_RESULT, flash_frame_topic
from antispoof_ros.tools.fault_injection.scene import make_scene
from antispoof_ros.tools.harness.frame_player import FramePlayer, Outgoing, SlotHook

PERIOD_NS = 8_333_333
EPOCH_NS = 1_700_000_000 * 10**9


def stamp(counter: int, late_ns: int = 0) -> int:
    return EPOCH_NS + counter * PERIOD_NS + late_ns


def camera_stream(check: TickCheck, counters: range, stream: str = 'front') -> list[str | None]:
    return [check.add(stream, c, stamp(c)) for c in counters]


# -- the ROS-free check ---------------------------------------------------------------------
def test_one_camera_keeps_its_line_through_losses_duplicates_late_frames_and_pauses() -> None:
    check = TickCheck()
    assert camera_stream(check, range(1, 400, 4)) == [None] * 100
    assert check.add('front', 397, stamp(397)) is None  # exact duplicate
    assert check.add('front', 393, stamp(393)) is None  # one cycle late, stamped before
    assert check.add('front', 441, stamp(441)) is None  # ten frames lost
    assert check.add('front', 445, stamp(445) + 2 * 10**9) is None  # reconnect: a pause
    assert check.add('front', 449, stamp(449) + 2 * 10**9 + 3_000_000) is None  # late stamp
    assert check.discontinuities == 0


def test_a_camera_stamped_on_arrival_may_stall_and_burst() -> None:
    check = TickCheck()
    camera_stream(check, range(1, 100, 4))
    # frames 101..113 were exposed during a 150 ms stall and all reach the host at its end
    stall_end = stamp(97) + 150_000_000
    burst = [check.add('front', c, stall_end + (c - 101) * 100_000) for c in range(101, 114, 4)]
    after = camera_stream(check, range(117, 200, 4))
    assert burst + after == [None] * (len(burst) + len(after))


@pytest.mark.parametrize(('counter', 'stamp_ns', 'words'), [
    (97, stamp(97) + 1, 'again'),
    (61, stamp(61), 'went back from 97 to 61'),
    (93, stamp(98), 'after frame 97'),
    (101, stamp(96), 'from the older frame 97'),
    (141, stamp(98), 'earlier than its counter allows'),
])
def test_breaks_of_the_line_are_discontinuities(counter: int, stamp_ns: int,
                                                 words: str) -> None:
    check = TickCheck()
    camera_stream(check, range(1, 100, 4))
    problem = check.add('front', counter, stamp_ns)
    assert problem is not None and words in problem and 'front' in problem
    assert check.discontinuities == 1


def test_a_replay_interleaved_with_the_camera_breaks_the_line_again_and_again() -> None:
    check = TickCheck()
    camera_stream(check, range(1, 100, 4))
    problems = []
    for k in range(10):
        replayed = 1_000_000_000 + 4 * k
        problems.append(check.add('front', replayed, EPOCH_NS - 3600 * 10**9 + k * 4 * PERIOD_NS))
        problems.append(check.add('front', 101 + 4 * k, stamp(101 + 4 * k)))
    assert all(problems) and check.discontinuities == 20


def test_a_camera_stamped_on_arrival_may_catch_up_after_a_slow_spell() -> None:
    # a loaded host delivered every frame 2 periods apart; the median period lags behind
    # when the host recovers and the frames come at the camera's rate again
    check = TickCheck()
    slow = [check.add('front', c, EPOCH_NS + c * 2 * PERIOD_NS) for c in range(1, 200, 4)]
    recovered_at = EPOCH_NS + 197 * 2 * PERIOD_NS
    fast = [check.add('front', c, recovered_at + (c - 197) * PERIOD_NS)
            for c in range(201, 300, 4)]
    assert slow + fast == [None] * (len(slow) + len(fast))


def test_a_camera_set_to_another_rate_is_followed() -> None:
    check = TickCheck()
    camera_stream(check, range(1, 100, 4))
    faster = [check.add('front', c, stamp(97) + (c - 97) * PERIOD_NS // 2)
              for c in range(101, 400, 4)]
    assert faster[-30:] == [None] * 30


def test_trust_returns_only_after_the_hold_without_problems() -> None:
    trust = SourceTrust(hold_s=0.5)
    assert trust.problem(0.0) is None
    assert trust.report('foreign publisher', 10.0) is True
    assert trust.report('foreign publisher', 10.3) is False  # still the same spell
    assert trust.problem(10.7) == 'foreign publisher'
    assert trust.problem(10.8) is None and trust.onsets == 1
    with pytest.raises(ValueError, match='hold_s'):
        SourceTrust(hold_s=0.0)


def test_camera_node_names_are_qualified_in_the_node_namespace() -> None:
    assert qualified_node_name('camera_node', '/') == '/camera_node'
    assert qualified_node_name('camera_node', '/rig') == '/rig/camera_node'
    assert qualified_node_name('/rig/camera_node', '/other') == '/rig/camera_node'


# -- the real liveness node ----------------------------------------------------------------
@dataclass
class Rig:
    """liveness_node fed by a FramePlayer (named as the camera node) with the scene's corners."""

    node: LivenessNode
    player: FramePlayer
    executor: SingleThreadedExecutor
    results: list[LivenessResult] = field(default_factory=list)
    statuses: list[DiagnosticStatus] = field(default_factory=list)

    def play_until(self, done: Callable[[], bool], timeout: float = 20.0) -> bool:
        def step() -> bool:
            self.player.play_due()
            return done()
        return spin_until(self.executor, step, timeout, step=0.005)

    def pair_results(self, since: int = 0) -> list[LivenessResult]:
        return [r for r in self.results[since:] if r.frame_counter_b]

    def diagnostics(self) -> DiagnosticStatus:
        seen = len(self.statuses)
        self.node.diagnostics.force_update()
        assert spin_until(self.executor, lambda: len(self.statuses) > seen, timeout=5)
        return self.statuses[-1]


def _rig(context: Context, hook: SlotHook | None = None, **parameters: object) -> Rig:
    scene = make_scene()
    overrides = [Parameter('diagnostics_period_s', value=60.0),
                 *(Parameter(k, value=v) for k, v in parameters.items())]
    node = LivenessNode(context=context, parameter_overrides=overrides)
    peer = Node('source_guard_peer', context=context)
    images = {phase: [array_to_image(scene.frames[phase], 'mono8')]
              for phase in (Phase.FRONT, Phase.RIGHT)}
    player = FramePlayer(peer, images, corners=lambda _: scene.corners, hook=hook)
    rig = Rig(node, player, SingleThreadedExecutor(context=context))
    peer.create_subscription(LivenessResult, LIVENESS_RESULT, rig.results.append, 100)
    peer.create_subscription(DiagnosticArray, '/diagnostics', lambda m: rig.statuses.extend(
        s for s in m.status if s.name == 'liveness_node: liveness'), 20)
    for item in (node, peer):
        rig.executor.add_node(item)
    assert spin_until(rig.executor, lambda: all(
        p.get_subscription_count() for p in player.publishers.values()), 10)
    return rig


@pytest.fixture
def rigs(ros_context: Context) -> Iterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for rig in made:
        rig.executor.shutdown()
        rig.player.close()
        rig.node.destroy_node()


def _scored(results: list[LivenessResult]) -> bool:
    return any(r.score == r.score for r in results)  # not NaN


@pytest.mark.ros
def test_a_second_publisher_makes_every_result_unknown_and_diagnostics_error(
    ros_context: Context, rigs: list[Rig]
) -> None:
    rig = _rig(ros_context)
    rigs.append(rig)
    assert rig.play_until(lambda: _scored(rig.pair_results()))
    assert rig.diagnostics().level != DiagnosticStatus.ERROR
    intruder = Node('intruder', context=ros_context)
    intruder.create_publisher(FlashFrame, flash_frame_topic(Phase.FRONT), 10)
    try:
        assert rig.play_until(lambda: rig.node.source_guard.problem() is not None)
        since, first = len(rig.results), rig.player.next_counter  # results in flight before
        assert rig.play_until(lambda: len(rig.pair_results(since)) >= 6)
        refused = [r for r in rig.pair_results(since) if r.frame_counter_a >= first]
        assert refused and all(r.decision == LivenessResult.DECISION_UNKNOWN for r in refused)
        assert all(r.reason == LivenessResult.REASON_BAD_INPUT for r in refused)
        assert all(r.reason_text.startswith(UNTRUSTED) and '/intruder' in r.reason_text
                   for r in refused)
        assert not _scored(refused)
        status = rig.diagnostics()
        values = {kv.key: kv.value for kv in status.values}
        assert status.level == DiagnosticStatus.ERROR and '/intruder' in status.message
        assert values['source_untrusted_onsets'] == '1' and values['source_problem']
    finally:
        intruder.destroy_node()
    assert rig.play_until(lambda: _scored(rig.pair_results(len(rig.results) - 1)), 20)


@pytest.mark.ros
def test_a_single_publisher_that_is_not_the_camera_node_is_refused(
    ros_context: Context, rigs: list[Rig]
) -> None:
    rig = _rig(ros_context, camera_node_name='/rig/camera_node')
    rigs.append(rig)
    assert rig.play_until(lambda: len(rig.pair_results()) >= 8)
    results = rig.pair_results()
    assert not _scored(results)
    assert all(r.decision == LivenessResult.DECISION_UNKNOWN for r in results)
    assert 'only /rig/camera_node may' in results[-1].reason_text


@pytest.mark.ros
def test_a_tick_discontinuity_is_refused_until_the_line_holds_again(
    ros_context: Context, rigs: list[Rig]
) -> None:
    broken: set[int] = set()

    def hook(counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        if counter not in broken:
            return outgoing
        changed = []
        for item in outgoing:
            message = copy.deepcopy(item.message)
            message.header = frame_header(1_000_000_000)  # stamped long ago
            changed.append(Outgoing(item.topic, message, counter, genuine=False))
        return changed

    rig = _rig(ros_context, hook=hook)
    rigs.append(rig)
    assert rig.play_until(lambda: _scored(rig.pair_results()))
    first = rig.player.next_counter + 8
    broken.update(range(first, first + 4))
    assert rig.play_until(lambda: rig.node.source_guard.problem() is not None)
    since = len(rig.results)
    assert rig.play_until(lambda: len(rig.pair_results(since)) >= 4)
    refused = [r for r in rig.pair_results(since) if r.frame_counter_a >= first][:2]
    assert all(r.reason_text.startswith(f'{UNTRUSTED}: tick discontinuity') for r in refused)
    assert not _scored(refused)
    assert rig.play_until(lambda: _scored(rig.pair_results(since)), 20)
