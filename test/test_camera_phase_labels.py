"""Phase labels come from frame counters: gaps, wraps and reconnects never shift them.

Only labels that something checked are verified: ``PhaseTracker`` verifies frame-counter
labels against each frame's image statistics, frame by frame.
"""

from __future__ import annotations

import pytest

from antispoof_ros.camera.clock import ExposureClock
from antispoof_ros.camera.phase_labels import (
    GIGE_BLOCK_ID_MAX,
    FrameCounterLabeler,
    MonotonicCounter,
    PhaseSource,
    PhaseTracker,
    check_image_check_pattern,
)
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.offline.synthetic.phase_coded_images import decode_phase, phase_coded_frame


def true_phase(raw_counter: int) -> Phase:
    return DEFAULT_PATTERN[raw_counter % 4]


def test_lost_frames_leave_gaps_but_no_wrong_labels() -> None:
    labeler = FrameCounterLabeler(DEFAULT_PATTERN)
    delivered = [0, 1, 2, 5, 6, 7, 8, 13, 14]
    labels = [labeler.label(labeler.counter(raw)) for raw in delivered]
    assert [label.phase for label in labels] == [true_phase(raw) for raw in delivered]
    assert [label.cycle_index for label in labels] == [raw // 4 for raw in delivered]
    assert labeler.skipped_frames == (5 - 2 - 1) + (13 - 8 - 1)


def test_reconnect_keeps_counters_monotonic_and_phases_aligned() -> None:
    labeler = FrameCounterLabeler(DEFAULT_PATTERN, offset=1)
    before = [labeler.label(labeler.counter(raw)) for raw in range(10)]
    labeler.start_stream()  # the camera restarts its counter at 0
    after = [labeler.label(labeler.counter(raw)) for raw in range(6)]
    assert after[0].frame_counter > before[-1].frame_counter
    assert [a.phase for a in after] == [DEFAULT_PATTERN[(raw + 1) % 4] for raw in range(6)]
    assert labeler.skipped_frames == 0


def test_gige_block_id_wrap_keeps_counters_and_phases_running() -> None:
    labeler = FrameCounterLabeler(DEFAULT_PATTERN)
    # BlockID 65535 is followed by 1: 0 marks only the first block of a stream
    raws = [*range(GIGE_BLOCK_ID_MAX - 5, GIGE_BLOCK_ID_MAX + 1), *range(1, 7)]
    counters = [labeler.counter(raw) for raw in raws]
    assert counters == list(range(GIGE_BLOCK_ID_MAX - 5, GIGE_BLOCK_ID_MAX + 7))
    assert [labeler.label(c).phase for c in counters] == [true_phase(c) for c in counters]
    assert labeler.skipped_frames == 0
    assert labeler.counters.wraps == 1


def test_frames_lost_across_a_wrap_are_counted_as_skipped() -> None:
    counter = MonotonicCounter(modulus=4)
    assert counter(GIGE_BLOCK_ID_MAX - 1) == GIGE_BLOCK_ID_MAX - 1
    assert counter(2) == GIGE_BLOCK_ID_MAX + 2  # 65535 and 1 were lost
    assert counter.skipped_frames == 2
    assert (counter.wraps, counter.restarts) == (1, 0)


def test_a_16_bit_counter_that_counts_zero_again_wraps_after_65536() -> None:
    counter = MonotonicCounter(modulus=4)
    assert [counter(raw) for raw in (GIGE_BLOCK_ID_MAX, 0, 1)] == [
        GIGE_BLOCK_ID_MAX, GIGE_BLOCK_ID_MAX + 1, GIGE_BLOCK_ID_MAX + 2]
    assert (counter.wraps, counter.skipped_frames) == (1, 0)


def test_counters_stay_monotonic_over_many_wraps_and_an_unannounced_restart() -> None:
    counter = MonotonicCounter(modulus=4)
    raws = [0, *range(1, GIGE_BLOCK_ID_MAX + 1), *range(1, GIGE_BLOCK_ID_MAX + 1), *range(1, 50)]
    published = [counter(raw) for raw in raws]
    assert published == list(range(len(raws)))
    restarted = [counter(raw) for raw in (0, 1, 2)]  # the camera restarted on its own
    assert published[-1] < restarted[0] and restarted[0] % 4 == 0
    assert restarted == [restarted[0], restarted[0] + 1, restarted[0] + 2]
    assert (counter.wraps, counter.restarts, counter.skipped_frames) == (2, 1, 0)


def test_a_step_back_that_is_no_wrap_is_a_restart() -> None:
    counter = MonotonicCounter(modulus=4)
    before = [counter(raw) for raw in range(1000, 1003)]
    after = [counter(raw) for raw in (5, 6)]  # far from the 16-bit top: not a wrap
    assert after[0] > before[-1] and after[0] % 4 == 5 % 4
    assert (counter.wraps, counter.restarts) == (0, 1)


def test_frame_counter_labels_are_never_verified_by_themselves() -> None:
    label = FrameCounterLabeler(DEFAULT_PATTERN).label(7)
    assert (label.source, label.verified) == (PhaseSource.FRAME_COUNTER, False)


def test_phase_tracker_verifies_only_frames_its_images_confirm() -> None:
    tracker = PhaseTracker(FrameCounterLabeler(DEFAULT_PATTERN, offset=2))
    corrections: list[tuple[int, int]] = []
    tracker.on_correction = lambda old, new: corrections.append((old, new))
    labels = [tracker.label(c, phase_coded_frame(true_phase(c), 320, 200, seed=c))
              for c in range(8)]
    # no full cycle before counter 3; then the images correct offset 2 to 0
    assert [label.verified for label in labels] == [False] * 3 + [True] * 5
    assert all(label.phase == true_phase(c) for c, label in enumerate(labels) if c >= 3)
    assert {label.source for label in labels} == {PhaseSource.IMAGE_CHECK}
    assert corrections == [(2, 0)] and tracker.corrections == 1
    # a frame lit by the wrong flash ends verification at once
    odd = tracker.label(8, phase_coded_frame(Phase.LEFT, 320, 200, seed=8))
    assert not odd.verified and not tracker.verified
    assert tracker.contradictions == 1


def test_phase_tracker_does_not_verify_featureless_frames() -> None:
    tracker = PhaseTracker(FrameCounterLabeler(DEFAULT_PATTERN))
    flat = phase_coded_frame(Phase.FRONT, 320, 200)
    assert not any(tracker.label(c, flat).verified for c in range(8))


def test_phase_tracker_checks_nothing_across_a_lost_frame() -> None:
    tracker = PhaseTracker(FrameCounterLabeler(DEFAULT_PATTERN))
    counters = (0, 1, 2, 3, 5, 6, 7, 8)
    labels = [tracker.label(c, phase_coded_frame(true_phase(c), 320, 200, seed=c))
              for c in counters]
    assert [label.verified for label in labels] == [False, False, False, True,
                                                    False, False, False, True]


def test_phase_tracker_reset_forgets_the_evidence() -> None:
    tracker = PhaseTracker(FrameCounterLabeler(DEFAULT_PATTERN))
    for c in range(4):
        tracker.label(c, phase_coded_frame(true_phase(c), 320, 200, seed=c))
    assert tracker.verified
    tracker.reset()
    assert not tracker.label(4, phase_coded_frame(true_phase(4), 320, 200)).verified


def test_phase_tracker_without_a_dark_phase_uses_the_side_flashes() -> None:
    pattern = (Phase.FRONT, Phase.RIGHT, Phase.LEFT)
    tracker = PhaseTracker(FrameCounterLabeler(pattern))
    labels = [tracker.label(c, phase_coded_frame(pattern[(c + 1) % 3], 320, 200, seed=c))
              for c in range(6)]
    assert [label.verified for label in labels] == [False, False, True, True, True, True]
    assert [label.phase for label in labels[2:]] == [pattern[(c + 1) % 3] for c in range(2, 6)]


@pytest.mark.parametrize('pattern', [(Phase.FRONT,), (Phase.FRONT, Phase.RIGHT)])
def test_phase_tracker_needs_a_dark_or_both_side_flashes(pattern: tuple[Phase, ...]) -> None:
    with pytest.raises(ValueError, match='image_check needs'):
        PhaseTracker(FrameCounterLabeler(pattern))


@pytest.mark.parametrize('names', [('dark', 'front', 'right'), ('front', 'right', 'dark')])
def test_image_check_refuses_patterns_whose_lit_phases_look_alike(
    names: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError, match='cannot tell front from right'):
        check_image_check_pattern(tuple(Phase.from_name(name) for name in names))


def test_phase_code_round_trip() -> None:
    for phase in Phase:
        assert decode_phase(phase_coded_frame(phase, 200, 100)) == phase


def test_exposure_clock_maps_ticks_with_the_fastest_frame() -> None:
    clock = ExposureClock(tick_period_ns=1.0)
    # the camera clock runs 1 s behind host time; transfer takes 3 ms, once only 2 ms
    latencies = [3_000_000, 2_000_000, 3_000_000]
    stamps = [
        clock.stamp_ns(tick, tick + 1_000_000_000 + latency, exposure_ns=0)
        for tick, latency in zip((10_000_000, 18_333_333, 26_666_666), latencies, strict=True)
    ]
    assert clock.uses_camera_clock
    assert stamps[2] - (26_666_666 + 1_000_000_000) == 2_000_000  # min-latency offset


def test_exposure_clock_maps_anew_when_the_camera_clock_restarts() -> None:
    clock = ExposureClock(tick_period_ns=1.0)
    clock.stamp_ns(50_000_000, 1_052_000_000, exposure_ns=0)  # camera clock 1 s behind
    # the camera restarted its tick clock (now 2.001 s behind); transfers take 1-3 ms
    first = clock.stamp_ns(1_000_000, 2_002_000_000 + 1_000_000, exposure_ns=0)
    second = clock.stamp_ns(9_333_333, 9_333_333 + 2_001_000_000 + 3_000_000, exposure_ns=0)
    assert first == 2_003_000_000  # one sample: the mapping is that frame's arrival
    assert second == 9_333_333 + 2_002_000_000  # the old mapping (1 s) is gone
    assert clock.uses_camera_clock


def test_exposure_clock_falls_back_to_host_time_without_ticks() -> None:
    clock = ExposureClock()
    assert clock.stamp_ns(0, 5_000_000_000, exposure_ns=2_000_000) == 4_998_000_000
    assert not clock.uses_camera_clock
