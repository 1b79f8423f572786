"""Synchronization policies, run against every message_filters implementation present.

The policy tests feed real ROS messages through ``SimpleFilter`` sources (no DDS); one test
runs the compatible Subscriber + TimeSynchronizer over real shared-memory DDS. The slop is
an ``rclpy.duration.Duration`` in the attribute ``slop`` in both, and liveness_node assigns
a new one there as the frame period it observes changes.
"""

from __future__ import annotations

import importlib
import os
import random
import time
from types import ModuleType

from builtin_interfaces.msg import Time
import pytest
import rclpy
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Header

from antispoof_ros.flash import pair_config
from antispoof_ros.liveness.pairing import CornerInfo, FrameInfo, PairValidator
from antispoof_ros.msg import EyeCorners, FlashFrame
from antispoof_ros.nodes import message_filters_compat
from antispoof_ros.nodes.message_filters_compat import load_message_filters

FRAME_NS = 8_333_333  # 120 Hz
CYCLE_NS = 4 * FRAME_NS


def _implementations() -> list[ModuleType]:
    modules = [message_filters_compat]
    try:
        modules.append(importlib.import_module('message_filters'))
    except ImportError:
        pass
    return modules


@pytest.fixture(params=_implementations(), ids=lambda module: module.__name__)
def mf(request: pytest.FixtureRequest) -> ModuleType:
    return request.param


def _stamp(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def frame(ns: int, phase: int, counter: int) -> FlashFrame:
    return FlashFrame(header=Header(stamp=_stamp(ns)), phase=phase, frame_counter=counter)


def corners(ns: int, counter: int) -> EyeCorners:
    return EyeCorners(header=Header(stamp=_stamp(ns)), frame_counter=counter)


class Collector:
    def __init__(self) -> None:
        self.sets: list[tuple] = []

    def __call__(self, *msgs: object) -> None:
        self.sets.append(msgs)


def synchronized(mf: ModuleType, inputs: int, make) -> tuple[list, Collector]:
    sources = [mf.SimpleFilter() for _ in range(inputs)]
    collector = Collector()
    make(sources).registerCallback(collector)
    return sources, collector


def test_load_message_filters_prefers_the_real_module() -> None:
    try:
        expected = importlib.import_module('message_filters')
    except ImportError:
        expected = message_filters_compat
    assert load_message_filters() is expected


def test_exact_matches_equal_stamps_in_any_arrival_order(mf: ModuleType) -> None:
    (front, right), got = synchronized(mf, 2, lambda fs: mf.TimeSynchronizer(fs, 10))
    fronts = [frame(n * CYCLE_NS, FlashFrame.PHASE_FRONT, 4 * n) for n in range(8)]
    rights = [frame(n * CYCLE_NS, FlashFrame.PHASE_RIGHT, 4 * n) for n in range(8)]
    order = [(front, m) for m in fronts] + [(right, m) for m in rights]
    random.Random(7).shuffle(order)
    for source, msg in order:
        source.signalMessage(msg)
    matched = sorted(got.sets, key=lambda s: s[0].frame_counter)
    assert matched == list(zip(fronts, rights, strict=True))


def test_exact_never_pairs_different_stamps(mf: ModuleType) -> None:
    (a, b), got = synchronized(mf, 2, lambda fs: mf.TimeSynchronizer(fs, 10))
    a.signalMessage(frame(0, FlashFrame.PHASE_FRONT, 1))
    b.signalMessage(frame(1, FlashFrame.PHASE_RIGHT, 2))  # 1 ns apart
    assert got.sets == []
    later = frame(1, FlashFrame.PHASE_FRONT, 5)
    a.signalMessage(later)
    assert len(got.sets) == 1 and got.sets[0][0] is later


def test_exact_queue_forgets_the_oldest_stamps(mf: ModuleType) -> None:
    (a, b), got = synchronized(mf, 2, lambda fs: mf.TimeSynchronizer(fs, 2))
    for n in range(3):
        a.signalMessage(frame(n * FRAME_NS, FlashFrame.PHASE_FRONT, n))
    b.signalMessage(frame(0, FlashFrame.PHASE_RIGHT, 0))  # its partner was evicted
    assert got.sets == []
    b.signalMessage(frame(2 * FRAME_NS, FlashFrame.PHASE_RIGHT, 2))
    assert [s[0].frame_counter for s in got.sets] == [2]


def test_corners_join_their_frame_exactly_among_three_inputs(mf: ModuleType) -> None:
    (a, b, c), got = synchronized(mf, 3, lambda fs: mf.TimeSynchronizer(fs, 5))
    for n in range(4):
        a.signalMessage(frame(n * CYCLE_NS, FlashFrame.PHASE_FRONT, 4 * n + 1))
        b.signalMessage(frame(n * CYCLE_NS, FlashFrame.PHASE_FRONT, 4 * n + 1))
        if n != 2:  # no corners for cycle 2
            c.signalMessage(corners(n * CYCLE_NS, 4 * n + 1))
    assert [s[2].frame_counter for s in got.sets] == [1, 5, 13]
    assert all(s[0].frame_counter == s[2].frame_counter for s in got.sets)


def test_approximate_recombines_scrambled_sequences(mf: ModuleType) -> None:
    rng = random.Random(0)
    for length in range(1, 10):
        (a, b), got = synchronized(
            mf, 2, lambda fs, n=length: mf.ApproximateTimeSynchronizer(fs, n, 0.1)
        )
        seq_a = [frame(t * 1_000_000_000, FlashFrame.PHASE_FRONT, t) for t in range(length)]
        seq_b = [frame(t * 1_000_000_000, FlashFrame.PHASE_RIGHT, t) for t in range(length)]
        for msg in rng.sample(seq_a, length):
            a.signalMessage(msg)
        assert got.sets == []
        for msg in rng.sample(seq_b, length):
            b.signalMessage(msg)
        matched = sorted(got.sets, key=lambda s: s[0].frame_counter)
        assert matched == list(zip(seq_a, seq_b, strict=True))


def test_approximate_pairs_each_front_with_the_right_of_its_cycle(mf: ModuleType) -> None:
    """Front and right frames 8.3 ms apart; frames of other cycles are >= 25 ms away."""
    (a, b), got = synchronized(mf, 2, lambda fs: mf.ApproximateTimeSynchronizer(fs, 8, 0.012))
    lost_rights = {3, 4}
    for n in range(10):
        a.signalMessage(frame(n * CYCLE_NS + FRAME_NS, FlashFrame.PHASE_FRONT, 4 * n + 1))
        if n not in lost_rights:
            b.signalMessage(frame(n * CYCLE_NS + 2 * FRAME_NS, FlashFrame.PHASE_RIGHT, 4 * n + 2))
    assert [(x.frame_counter, y.frame_counter) for x, y in got.sets] == [
        (4 * n + 1, 4 * n + 2) for n in range(10) if n not in lost_rights
    ]


def test_approximate_takes_the_nearest_candidate(mf: ModuleType) -> None:
    (a, b), got = synchronized(mf, 2, lambda fs: mf.ApproximateTimeSynchronizer(fs, 5, 0.010))
    far, near = frame(0, FlashFrame.PHASE_FRONT, 1), frame(5_000_000, FlashFrame.PHASE_FRONT, 2)
    a.signalMessage(far)
    a.signalMessage(near)
    b.signalMessage(frame(6_000_000, FlashFrame.PHASE_RIGHT, 3))
    assert [s[0] for s in got.sets] == [near]


def test_approximate_spread_must_be_strictly_below_slop(mf: ModuleType) -> None:
    (a, b), got = synchronized(mf, 2, lambda fs: mf.ApproximateTimeSynchronizer(fs, 5, 0.010))
    a.signalMessage(frame(0, FlashFrame.PHASE_FRONT, 1))
    b.signalMessage(frame(10_000_000, FlashFrame.PHASE_RIGHT, 2))  # exactly the slop
    assert got.sets == []
    b.signalMessage(frame(9_999_999, FlashFrame.PHASE_RIGHT, 3))
    assert [s[1].frame_counter for s in got.sets] == [3]


def test_slop_is_a_duration_that_can_be_changed_between_arrivals(mf: ModuleType) -> None:
    collector = Collector()
    sources = [mf.SimpleFilter() for _ in range(2)]
    sync = mf.ApproximateTimeSynchronizer(sources, 5, 0.0125)
    sync.registerCallback(collector)
    assert sync.slop == Duration(nanoseconds=12_500_000)
    a, b = sources
    a.signalMessage(frame(0, FlashFrame.PHASE_FRONT, 1))
    b.signalMessage(frame(16_666_667, FlashFrame.PHASE_RIGHT, 2))  # 60 Hz: beyond 12.5 ms
    assert collector.sets == []
    sync.slop = Duration(nanoseconds=33_333_333)
    a.signalMessage(frame(4 * 16_666_667, FlashFrame.PHASE_FRONT, 5))
    b.signalMessage(frame(5 * 16_666_667, FlashFrame.PHASE_RIGHT, 6))
    assert [(x.frame_counter, y.frame_counter) for x, y in collector.sets] == [(5, 6)]


def test_too_wide_a_slop_loses_pairs_but_never_passes_a_mispair(mf: ModuleType) -> None:
    """The slop only proposes sets: the validator's counter checks decide what is a pair."""
    (a, b, c), got = synchronized(
        mf, 3, lambda fs: mf.ApproximateTimeSynchronizer(fs, 10, 10 * CYCLE_NS / 1e9))
    rng = random.Random(5)

    def camera_frame(counter: int) -> FlashFrame:
        labelled = frame(counter * FRAME_NS, counter % 4, counter)
        labelled.cycle_index, labelled.position_in_cycle = divmod(counter, 4)
        return labelled

    for n in range(40):  # a fifth of every input lost
        front, right = 4 * n + 1, 4 * n + 2
        if rng.random() > 0.2:
            a.signalMessage(camera_frame(front))
        if rng.random() > 0.2:
            c.signalMessage(corners(front * FRAME_NS, front))
        if rng.random() > 0.2:
            b.signalMessage(camera_frame(right))
    validator = PairValidator(pair_config('P2'))
    accepted = []
    for frame_a, frame_b, corner in got.sets:
        info_a, info_b = FrameInfo.from_msg(frame_a), FrameInfo.from_msg(frame_b)
        if validator.check(info_a, info_b, CornerInfo.from_msg(corner)).ok:
            accepted.append((frame_a.frame_counter, frame_b.frame_counter, corner.frame_counter))
    assert validator.dropped > 0  # the wide slop did join frames of different cycles
    assert accepted and all(fb == fa + 1 and fc == fa for fa, fb, fc in accepted)


@pytest.mark.ros
def test_subscriber_over_shared_memory_dds(ros_context: Context) -> None:
    """Compat Subscriber + TimeSynchronizer on real topics (the rig uses the real module)."""
    mf = message_filters_compat
    prefix = f'/mf_compat_{os.getpid()}'
    node = rclpy.create_node('mf_compat_test', context=ros_context)
    subscribers = [mf.Subscriber(node, FlashFrame, f'{prefix}/{name}') for name in ('a', 'b')]
    collector = Collector()
    mf.TimeSynchronizer(subscribers, 10).registerCallback(collector)
    publishers = [node.create_publisher(FlashFrame, s.getTopic(), 10) for s in subscribers]
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 10.0
        while (
            not all(p.get_subscription_count() for p in publishers)
            and time.monotonic() < deadline
        ):
            executor.spin_once(timeout_sec=0.05)
        sent = []
        for n in range(3):
            pair = (frame(n * CYCLE_NS, FlashFrame.PHASE_FRONT, 4 * n + 1),
                    frame(n * CYCLE_NS, FlashFrame.PHASE_RIGHT, 4 * n + 2))
            for publisher, msg in zip(publishers, pair, strict=True):
                publisher.publish(msg)
            sent.append(pair)
        while len(collector.sets) < len(sent) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        topic_name = subscribers[0].topic_name  # served by the wrapped subscription
    finally:
        executor.shutdown()
        node.destroy_node()
    assert collector.sets == sent
    assert topic_name == f'{prefix}/a'
