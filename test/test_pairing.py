"""PairValidator: only the configured pair of one flash cycle, with its own corners, passes.

Also the synchronizer's helpers: the frame period seen on counters and stamps, the slop in
frame periods, and the cause named when no set is matched.
"""

from __future__ import annotations

from collections import Counter
import itertools
import math
import random

from geometry_msgs.msg import Point32
import pytest

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import PAIR_CONFIGS, Phase, pair_config
from antispoof_ros.liveness.pairing import (
    CornerInfo,
    CornerStatus,
    DropReason,
    FrameInfo,
    FramePeriodEstimator,
    NoPairsCause,
    PairValidator,
    SyncInput,
    SyncWatch,
    sync_slop_periods,
)
from antispoof_ros.msg import EyeCorners, FlashFrame

PATTERN = (Phase.DARK, Phase.FRONT, Phase.RIGHT, Phase.LEFT)
POINTS = EyeCornerPoints((800.0, 540.0), (870.0, 541.0), (1010.0, 539.0), (940.0, 540.0))


def camera_frame(counter: int, offset: int = 0) -> FrameInfo:
    """Frame ``counter`` of a camera whose cycle starts ``offset`` frames into the count."""
    position = (counter - offset) % len(PATTERN)
    return FrameInfo(
        phase=int(PATTERN[position]),
        frame_counter=counter,
        cycle_index=(counter - offset) // len(PATTERN),
        position_in_cycle=position,
    )


def corners_of(counter: int, status: int = CornerStatus.OK) -> CornerInfo:
    return CornerInfo(status=status, frame_counter=counter, points=POINTS)


def front_of_cycle(frame: FrameInfo) -> int:
    return frame.frame_counter - frame.position_in_cycle + PATTERN.index(Phase.FRONT)


def true_pair(validator: PairValidator, cycle: int, offset: int = 0):
    """The correct (A, B, corners) of ``cycle`` for the validator's configuration."""
    cfg = validator.config
    base = offset + cycle * len(PATTERN)
    a = camera_frame(base + PATTERN.index(cfg.phase_a), offset)
    b = camera_frame(base + PATTERN.index(cfg.phase_b), offset)
    return a, b, corners_of(front_of_cycle(a))


@pytest.mark.parametrize('name', list(PAIR_CONFIGS))
def test_true_pairs_of_every_configuration_pass(name: str) -> None:
    validator = PairValidator(pair_config(name))
    for cycle in range(5):
        assert validator.check(*true_pair(validator, cycle)).ok
    assert validator.accepted == 5 and validator.dropped == 0


@pytest.mark.parametrize(
    ('name', 'corner_offset'),
    [('P1', 1), ('P2', 0), ('P3', -1), ('single_front', 0), ('single_left', -2)],
)
def test_corners_come_from_the_front_frame_of_the_cycle(name: str, corner_offset: int) -> None:
    validator = PairValidator(pair_config(name))
    a, b, _ = true_pair(validator, 3)
    assert validator.check(a, b, corners_of(a.frame_counter + corner_offset)).ok


def test_frames_from_messages() -> None:
    msg = FlashFrame(phase=FlashFrame.PHASE_RIGHT, frame_counter=10, cycle_index=2,
                     position_in_cycle=2, phase_verified=True)
    assert FrameInfo.from_msg(msg) == FrameInfo(int(Phase.RIGHT), 10, 2, 2, True)
    corners = EyeCorners(
        status=EyeCorners.STATUS_NO_FACE, frame_counter=9,
        right_eye_outer=Point32(x=1.0, y=2.0), right_eye_inner=Point32(x=3.0, y=4.0),
        left_eye_outer=Point32(x=5.0, y=6.0), left_eye_inner=Point32(x=7.0, y=8.0),
    )
    info = CornerInfo.from_msg(corners)
    assert (info.status, info.frame_counter) == (CornerStatus.NO_FACE, 9)
    assert info.points == EyeCornerPoints((1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (7.0, 8.0))
    assert [s.value for s in CornerStatus] == [
        EyeCorners.STATUS_OK, EyeCorners.STATUS_NO_FACE, EyeCorners.STATUS_BAD_INPUT
    ]


def test_each_fault_is_dropped_under_its_reason() -> None:
    validator = PairValidator(pair_config('P2'))
    a, b, c = true_pair(validator, 10)
    nan_points = EyeCornerPoints((math.nan, 1.0), (2.0, 2.0), (3.0, 3.0), (4.0, 4.0))
    left = camera_frame(b.frame_counter + 1)
    next_right = camera_frame(b.frame_counter + 4)
    cases = [
        ((b, left, c), DropReason.WRONG_PHASE),  # P3's frames
        ((a, next_right, c), DropReason.NOT_CONSECUTIVE),  # right of the next cycle
        ((a, b, None), DropReason.CORNERS_MISSING),
        ((a, b, corners_of(c.frame_counter - 4)), DropReason.CORNERS_STALE),
        ((a, b, corners_of(c.frame_counter + 4)), DropReason.CORNERS_MISMATCH),
        ((a, b, corners_of(c.frame_counter, CornerStatus.NO_FACE)), DropReason.NO_FACE),
        ((a, b, corners_of(c.frame_counter, CornerStatus.BAD_INPUT)), DropReason.BAD_INPUT),
        ((a, b, CornerInfo(CornerStatus.OK, c.frame_counter, nan_points)), DropReason.BAD_INPUT),
    ]
    for (fa, fb, fc), reason in cases:
        fresh = PairValidator(pair_config('P2'))
        verdict = fresh.check(fa, fb, fc)
        assert (verdict.ok, verdict.reason) == (False, reason)
        assert fresh.drops == Counter({reason: 1}) and fresh.accepted == 0


def test_labels_that_contradict_the_cycle_position_are_wrong_phase() -> None:
    validator = PairValidator(pair_config('P2'))
    a, b, c = true_pair(validator, 4)
    mislabelled = FrameInfo(a.phase, a.frame_counter, a.cycle_index, position_in_cycle=0)
    assert validator.check(mislabelled, b, c).reason == DropReason.WRONG_PHASE


def test_duplicates_and_reordering_are_dropped() -> None:
    validator = PairValidator(pair_config('P2'))
    first, second = true_pair(validator, 1), true_pair(validator, 2)
    assert validator.check(*second).ok
    assert validator.check(*second).reason == DropReason.DUPLICATE
    assert validator.check(*first).reason == DropReason.OUT_OF_ORDER
    assert validator.check(*true_pair(validator, 3)).ok


def test_camera_restart_drops_one_pair_then_recovers() -> None:
    validator = PairValidator(pair_config('P2'), restart_gap_frames=100)
    assert validator.check(*true_pair(validator, 1000)).ok
    assert validator.check(*true_pair(validator, 0)).reason == DropReason.COUNTER_RESTART
    assert validator.check(*true_pair(validator, 1)).ok


def test_unverified_phases_are_dropped_only_when_required() -> None:
    strict = PairValidator(pair_config('P2'), require_verified_phase=True)
    a, b, c = true_pair(strict, 2)
    assert strict.check(a, b, c).reason == DropReason.PHASE_UNVERIFIED
    verified = [FrameInfo(f.phase, f.frame_counter, f.cycle_index, f.position_in_cycle, True)
                for f in (a, b)]
    assert strict.check(*verified, c).ok


def test_pair_that_spans_two_cycles_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match='does not follow'):
        PairValidator(pair_config('P1'), pattern=(*PATTERN[1:], Phase.DARK))
    with pytest.raises(ValueError, match='not in the flash pattern'):
        PairValidator(pair_config('P3'), pattern=(Phase.DARK, Phase.FRONT, Phase.RIGHT))


def _stream(offset: int, cycles: int):
    """Frames and front-frame corners of a camera, in capture order."""
    frames = [camera_frame(n, offset) for n in range(offset, offset + cycles * len(PATTERN))]
    corners = {f.frame_counter: corners_of(f.frame_counter) for f in frames
               if f.phase == Phase.FRONT}
    return frames, corners


@pytest.mark.parametrize('name', ['P1', 'P2', 'P3'])
@pytest.mark.parametrize('offset', [0, 1, 3])
def test_degraded_stream_accepts_no_wrong_pair_and_counts_every_drop(
    name: str, offset: int
) -> None:
    """Drops, duplicates, reordering and a phase offset; candidates as a sloppy matcher would.

    Each candidate joins an A-phase frame with any B-phase frame up to two cycles away and
    whatever corners are at hand (the matching ones, a neighbour cycle's, or none).
    """
    rng = random.Random(f'{name}-{offset}')
    validator = PairValidator(pair_config(name))
    cfg = validator.config
    frames, corners = _stream(offset, 60)
    delivered = [f for f in frames if rng.random() > 0.1]  # 10 % lost
    delivered += rng.sample(delivered, len(delivered) // 10)  # duplicates
    delivered.sort(key=lambda f: f.frame_counter + rng.choice([0, 0, 0, -6, 5]))  # reordered
    a_frames = [f for f in delivered if f.phase == cfg.phase_a]
    b_frames = [f for f in delivered if f.phase == cfg.phase_b]
    accepted, seen_a, candidates = [], set(), 0
    for a in a_frames:
        for b in [f for f in b_frames if abs(f.frame_counter - a.frame_counter) <= 8]:
            front = front_of_cycle(a) + rng.choice([0, 0, 0, -4, 4])
            c = corners.get(front) if rng.random() > 0.1 else None
            candidates += 1
            if validator.check(a, b, c).ok:
                accepted.append((a, b, c))
    for a, b, c in accepted:
        assert b.frame_counter == a.frame_counter + 1 and b.cycle_index == a.cycle_index
        assert (a.phase, b.phase) == (cfg.phase_a, cfg.phase_b)
        assert c is not None and c.frame_counter == front_of_cycle(a)
        assert a.frame_counter not in seen_a  # never the same pair twice
        seen_a.add(a.frame_counter)
    assert accepted, 'the stream still holds good pairs'
    assert validator.accepted == len(accepted)
    assert validator.accepted + validator.dropped == candidates
    counts = validator.counts()
    assert sum(counts.values()) == candidates
    for reason in (DropReason.NOT_CONSECUTIVE, DropReason.DUPLICATE, DropReason.OUT_OF_ORDER,
                   DropReason.CORNERS_MISSING, DropReason.CORNERS_STALE):
        assert counts[reason.value] > 0, reason


# -- synchronizer helpers -------------------------------------------------------------------
PERIOD_60_HZ = 16_666_667


def test_frame_period_from_counters_and_stamps_survives_drops_and_reordering() -> None:
    estimator = FramePeriodEstimator()
    assert estimator.period_ns is None
    for counter in (1, 5, 13, 17, 9, 17, 29):  # front frames: lost, late, duplicated
        estimator.add('front', counter, 1_000_000_000 + counter * PERIOD_60_HZ)
    for counter in (2, 6, 10):
        estimator.add('right', counter, 1_000_000_000 + counter * PERIOD_60_HZ)
    assert estimator.period_ns == pytest.approx(PERIOD_60_HZ, abs=1)


def test_frame_period_is_the_median_so_outliers_and_jitter_barely_move_it() -> None:
    rng = random.Random(3)
    estimator = FramePeriodEstimator(samples=15)
    for counter in range(1, 400, 4):
        stamp = counter * PERIOD_60_HZ + rng.uniform(-0.2, 0.2) * PERIOD_60_HZ
        if counter == 201:
            stamp += 3_000_000_000  # one frame of an outage, stamped 3 s late
        estimator.add('front', counter, round(stamp))
    assert estimator.period_ns == pytest.approx(PERIOD_60_HZ, rel=0.05)


def test_frame_period_ignores_restarts_and_impossible_periods() -> None:
    estimator = FramePeriodEstimator(restart_gap_frames=100)
    estimator.add('front', 5000, 0)
    estimator.add('front', 1, 10**9)  # camera restarted: no sample, follow the new count
    assert estimator.period_ns is None
    estimator.add('front', 2, 10**9 + 10)  # 10 ns per frame: not a camera
    estimator.add('front', 3, 10**9 + 10 + 5 * 10**9)  # 5 s per frame: not either
    assert estimator.period_ns is None
    estimator.add('front', 7, 10**9 + 10 + 5 * 10**9 + 4 * PERIOD_60_HZ)
    assert estimator.period_ns == PERIOD_60_HZ


@pytest.mark.parametrize(('name', 'periods'), [
    ('P1', 2.5), ('P2', 2.5), ('P3', 2.5), ('single_front', 3.5), ('single_left', 2.5),
])
def test_slop_lies_between_one_cycles_set_and_a_set_of_two_cycles(name: str,
                                                                   periods: float) -> None:
    cfg = pair_config(name)
    assert sync_slop_periods(PATTERN, (cfg.phase_a, cfg.phase_b, Phase.FRONT)) == periods


@pytest.mark.parametrize('name', ['P1', 'P2', 'P3', 'single_front'])
def test_slop_keeps_one_cycles_set_and_no_set_of_two_cycles(name: str) -> None:
    """Stamps one period per counter: half a period of margin at least, either way."""
    cfg = pair_config(name)
    phases = (cfg.phase_a, cfg.phase_b, Phase.FRONT)
    slop = sync_slop_periods(PATTERN, phases)
    positions = [PATTERN.index(phase) for phase in phases]
    for cycles in itertools.product((0, 1), repeat=3):
        if cfg.is_single and cycles[0] != cycles[1]:
            continue  # frame A is frame B: one message
        stamps = [p + len(PATTERN) * c for p, c in zip(positions, cycles, strict=True)]
        spread = max(stamps) - min(stamps)
        if len(set(cycles)) == 1:
            assert spread <= slop - 0.5
        else:
            assert spread >= slop + 0.5, cycles


def watch_at_60_hz(single: bool = False) -> SyncWatch:
    return SyncWatch('front', 'right', single=single, quiet_s=1.0)


def feed_watch(watch: SyncWatch, seconds: float, *, corners: bool = True, right: bool = True,
               corner_shift_ns: int = 0, right_shift_ns: int = 0, start: int = 0) -> float:
    """Cycles of 60 Hz frames for ``seconds``; returns the time of the last arrival."""
    now = 0.0
    for cycle in range(start, start + round(seconds * 15)):
        now = cycle / 15
        front = (4 * cycle + 1) * PERIOD_60_HZ
        watch.arrived(SyncInput.FRAME_A, front, now)
        if corners:
            watch.arrived(SyncInput.CORNERS, front + corner_shift_ns, now)
        if right:
            watch.arrived(SyncInput.FRAME_B, front + PERIOD_60_HZ + right_shift_ns, now)
    return now


def test_watch_is_silent_while_sets_match_or_nothing_arrives() -> None:
    watch = watch_at_60_hz()
    assert watch.why(100.0, 2 * PERIOD_60_HZ) is None  # nothing arrived yet
    now = feed_watch(watch, 0.5, corners=False)
    assert watch.why(now, 2 * PERIOD_60_HZ) is None  # not quiet for a second yet
    now = feed_watch(watch, 2.0, corners=False, start=8)
    watch.matched(now)
    assert watch.why(now + 0.5, 2 * PERIOD_60_HZ) is None
    assert watch.why(now + 5.0, 2 * PERIOD_60_HZ) is None  # no frame for 5 s: camera gone


def test_watch_names_missing_corners_and_frames_with_counts() -> None:
    watch = watch_at_60_hz()
    now = feed_watch(watch, 2.0, corners=False)
    why = watch.why(now, 2 * PERIOD_60_HZ)
    assert why.cause is NoPairsCause.NO_CORNERS
    assert why.text == 'no eye corners for 30 front frames'
    watch = watch_at_60_hz()
    now = feed_watch(watch, 2.0, right=False)
    why = watch.why(now, 2 * PERIOD_60_HZ)
    assert why.cause is NoPairsCause.NO_FRAME_B
    assert why.text == 'no right frames for 30 front frames'


def test_watch_names_stamps_too_far_apart_for_the_slop() -> None:
    watch = watch_at_60_hz()
    now = feed_watch(watch, 2.0)
    why = watch.why(now, 12_500_000)  # the slop of 120 Hz, at 60 Hz
    assert why.cause is NoPairsCause.FRAMES_APART
    assert why.text == 'front and right frames are 16.7 ms apart, slop 12.5 ms'
    watch = watch_at_60_hz()
    now = feed_watch(watch, 2.0, corner_shift_ns=-20_000_000)  # corners stamped off
    why = watch.why(now, 2 * PERIOD_60_HZ)
    assert why.cause is NoPairsCause.SPREAD
    assert why.text == 'front and right frames and eye corners span 36.7 ms, slop 33.3 ms'
    watch = watch_at_60_hz(single=True)
    now = feed_watch(watch, 2.0, corner_shift_ns=-14_000_000, right=False)
    why = watch.why(now, 12_500_000)
    assert why.cause is NoPairsCause.CORNERS_APART
    assert why.text == 'eye corners are 14.0 ms from the front frames, slop 12.5 ms'
    watch = watch_at_60_hz()
    now = feed_watch(watch, 2.0)
    assert watch.why(now, 2 * PERIOD_60_HZ).cause is NoPairsCause.UNMATCHED
