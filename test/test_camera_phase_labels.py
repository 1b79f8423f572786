"""Phase labels come from frame counters: gaps and reconnects never shift them."""

from __future__ import annotations

import numpy as np
import pytest

from antispoof_ros.camera.clock import ExposureClock
from antispoof_ros.camera.phase_labels import FrameCounterLabeler, ImagePhaseCheck
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


def test_image_check_recovers_a_wrong_offset_within_one_cycle() -> None:
    check = ImagePhaseCheck(DEFAULT_PATTERN)
    implied = []
    for counter in range(8):
        frame = phase_coded_frame(true_phase(counter + 2), 320, 200, seed=counter)
        implied.append(check.add(counter, frame))
    # the camera's counter runs 2 ahead of the flashes: offset 2 is what the images say
    assert implied == [None, None, None, 2, None, None, None, 2]


def test_image_check_does_not_decide_on_featureless_frames() -> None:
    check = ImagePhaseCheck(DEFAULT_PATTERN)
    flat = phase_coded_frame(Phase.FRONT, 320, 200)
    assert [check.add(counter, flat) for counter in range(4)] == [None] * 4


def test_image_check_discards_cycles_with_a_missing_frame() -> None:
    check = ImagePhaseCheck(DEFAULT_PATTERN)
    results = [check.add(c, phase_coded_frame(true_phase(c), 320, 200)) for c in (0, 1, 3, 4)]
    assert results == [None, None, None, None]


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


def test_exposure_clock_falls_back_to_host_time_without_ticks() -> None:
    clock = ExposureClock()
    assert clock.stamp_ns(0, 5_000_000_000, exposure_ns=2_000_000) == 4_998_000_000
    assert not clock.uses_camera_clock


@pytest.mark.parametrize('pattern', [(Phase.FRONT,), (Phase.FRONT, Phase.RIGHT)])
def test_image_check_needs_a_dark_or_both_side_flashes(pattern: tuple[Phase, ...]) -> None:
    with pytest.raises(ValueError, match='image_check needs'):
        ImagePhaseCheck(pattern)


@pytest.mark.parametrize('species', ['live', 'print', 'mask'])
@pytest.mark.parametrize('lighting', ['office', 'halogen'])
def test_image_check_recovers_a_wrong_offset_on_synthetic_flash_cycles(
    species: str, lighting: str
) -> None:
    from antispoof_ros.offline.synthetic.render import render_cycle
    from antispoof_ros.offline.synthetic.scene import (
        CROP_MODE,
        Lighting,
        Pose,
        PrintKind,
        ScenarioSpec,
        Species,
    )

    spec = ScenarioSpec(
        f'{species}-{lighting}', Species.parse(species), Lighting.parse(lighting), Pose.AHEAD,
        n_cycles=2, subject_id=1, mask_id=0 if species == 'mask' else None,
        print_kind=PrintKind.NIR if species == 'print' else None,
    )
    frames = np.concatenate([render_cycle(spec, i, mode=CROP_MODE).frames for i in range(2)])
    check, labeler = ImagePhaseCheck(DEFAULT_PATTERN), FrameCounterLabeler(DEFAULT_PATTERN, 3)
    # the camera counter starts at 1 on the dark frame: the true offset is 3
    implied = [check.add(counter, frame) for counter, frame in enumerate(frames, start=1)]
    decided = [offset for offset in implied if offset is not None]
    assert decided and set(decided) == {3}
    labeler.offset = decided[0]
    first_decision = implied.index(3) + 1  # counter of the frame that completed the cycle
    assert first_decision <= 2 * len(DEFAULT_PATTERN)
    for counter in range(first_decision + 1, len(frames) + 1):
        assert labeler.label(counter).phase == DEFAULT_PATTERN[(counter - 1) % 4]


def test_image_check_without_a_dark_phase_uses_the_side_flashes() -> None:
    pattern = (Phase.FRONT, Phase.RIGHT, Phase.LEFT)
    check = ImagePhaseCheck(pattern)
    implied = [check.add(c, phase_coded_frame(pattern[(c + 1) % 3], 320, 200, seed=c))
               for c in range(6)]
    assert implied == [None, None, 1, None, None, 1]
