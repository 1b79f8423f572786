"""Flash desyncs are detected, relabelled within two cycles, and never scored.

A desync is a jump of the flash sequence against the camera's frame counter: a dropped
trigger, a controller reset, a phase offset jump. pylon's emulated camera replays a folder
of phase-coded frames in name order, so the folder's sequence injects the desync; the phase
code in each frame's pixels is the truth every label is checked against. Every labelled
frame is also offered to the liveness pairing, which scores a pair only when both frames
are verified: no pair with a wrong label may get through.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from antispoof_ros.camera.phase_labels import FrameCounterLabeler, PhaseLabel, PhaseTracker
from antispoof_ros.camera.pylon_source import CameraSettings, GrabStatistics, PylonCamera
from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, PAIR_CONFIGS, Phase
from antispoof_ros.liveness.pairing import CornerInfo, CornerStatus, FrameInfo, PairValidator
from antispoof_ros.offline.synthetic.emulator_folder import write_emulator_frames
from antispoof_ros.offline.synthetic.phase_coded_images import decode_phase, phase_coded_frame

N = len(DEFAULT_PATTERN)
MAX_RECOVERY_CYCLES = 2
# kind: (frame at which the flashes jump, flash position that frame gets instead)
DESYNCS = {
    'dropped_trigger': (14, 3),  # frame 14 should be lit by position 2: the controller skipped it
    'controller_reset': (13, 0),  # after one frame of a cycle the controller starts a new cycle
    'offset_jump': (12, 2),  # the flash sequence jumps two phases ahead
}
CORNERS = EyeCornerPoints((10.0, 10.0), (20.0, 10.0), (40.0, 10.0), (50.0, 10.0))


def flash_positions(kind: str, cycles_after: int = 3) -> list[int]:
    """Flash position of every frame of a sequence with one desync of ``kind``.

    It ends on the last position of a cycle, so an emulator replaying it in a loop sees
    this one desync per pass and none at the loop's seam.
    """
    at, start = DESYNCS[kind]
    after = (N - 1 - start) % N + 1 + N * cycles_after
    return [t % N for t in range(at)] + [(start + i) % N for i in range(after)]


@dataclass(frozen=True)
class Labelled:
    """A published label and the phase the frame really shows."""

    label: PhaseLabel
    truth: Phase


@dataclass
class DesyncOutcome:
    """What the tracker made of a stream with desyncs."""

    desyncs: int
    recovery_cycles: list[float]  # per desync without a lost frame before its recovery
    wrong_verified: int  # frames published verified with a wrong phase
    scored_pairs: int
    wrongly_scored_pairs: int  # scored pairs with a wrong label: must stay 0
    wrong_pairs_without_verification: int  # the same if pairing ignored phase_verified


def true_offset(record: Labelled) -> int:
    return (DEFAULT_PATTERN.index(record.truth) - record.label.frame_counter) % N


def recovery_cycles(records: list[Labelled]) -> tuple[int, list[float]]:
    """Number of desyncs; cycles from each to the first verified right label after it."""
    desyncs, cycles = 0, []
    for index in range(1, len(records)):
        if true_offset(records[index]) == true_offset(records[index - 1]):
            continue
        desyncs += 1
        start = records[index].label.frame_counter
        for later in range(index, len(records)):
            record = records[later]
            if later > index and (record.label.frame_counter
                                  != records[later - 1].label.frame_counter + 1):
                break  # a lost frame delays the check: not a clean measurement
            if record.label.verified and record.label.phase == record.truth:
                cycles.append((record.label.frame_counter - start + 1) / N)
                break
    return desyncs, cycles


def scored_pairs(records: list[Labelled], require_verified: bool) -> tuple[int, int]:
    """(accepted, accepted with a wrong label) over every pair configuration."""
    by_counter = {record.label.frame_counter: record for record in records}
    accepted = wrong = 0
    for name in ('P1', 'P2', 'P3'):
        config = PAIR_CONFIGS[name]
        validator = PairValidator(config, require_verified_phase=require_verified)
        for b in records:
            a = by_counter.get(b.label.frame_counter - 1)
            if a is None or (a.label.phase, b.label.phase) != (config.phase_a, config.phase_b):
                continue
            landmark_counter = (a.label.frame_counter - a.label.position_in_cycle
                                + DEFAULT_PATTERN.index(Phase.FRONT))
            corners = CornerInfo(CornerStatus.OK, landmark_counter, CORNERS)
            if validator.check(frame_info(a.label), frame_info(b.label), corners).ok:
                accepted += 1
                wrong += (a.truth, b.truth) != (a.label.phase, b.label.phase)
    return accepted, wrong


def frame_info(label: PhaseLabel) -> FrameInfo:
    return FrameInfo(int(label.phase), label.frame_counter, label.cycle_index,
                     label.position_in_cycle, label.verified)


def outcome(records: list[Labelled]) -> DesyncOutcome:
    desyncs, cycles = recovery_cycles(records)
    accepted, wrong = scored_pairs(records, require_verified=True)
    return DesyncOutcome(
        desyncs=desyncs,
        recovery_cycles=cycles,
        wrong_verified=sum(r.label.verified and r.label.phase != r.truth for r in records),
        scored_pairs=accepted,
        wrongly_scored_pairs=wrong,
        wrong_pairs_without_verification=scored_pairs(records, require_verified=False)[1],
    )


def track(frames: Iterable[tuple[int, np.ndarray, Phase]]) -> list[Labelled]:
    """Label (raw counter, pixels, true phase) frames as camera_node's image_check does."""
    tracker = PhaseTracker(FrameCounterLabeler(DEFAULT_PATTERN))
    return [Labelled(tracker.label(tracker.labeler.counter(raw), pixels), truth)
            for raw, pixels, truth in frames]


def assert_desyncs_handled(kind: str, result: DesyncOutcome, min_desyncs: int) -> None:
    print(f'{kind}: {result.desyncs} desyncs, recovered within '
          f'{max(result.recovery_cycles, default=float("nan")):.2f} cycles '
          f'({len(result.recovery_cycles)} measured), {result.wrong_verified} wrong labels '
          f'verified, {result.scored_pairs} pairs scored, {result.wrongly_scored_pairs} with '
          f'a wrong label ({result.wrong_pairs_without_verification} without the check)')
    assert result.desyncs >= min_desyncs
    assert len(result.recovery_cycles) >= min_desyncs
    assert max(result.recovery_cycles) <= MAX_RECOVERY_CYCLES
    assert result.wrong_verified == 0
    assert result.scored_pairs > 0
    assert result.wrongly_scored_pairs == 0
    # the desyncs do mislabel frames: only the verification keeps them from being scored
    assert result.wrong_pairs_without_verification > 0


def grab(folder: Path, frames: int) -> Iterator[tuple[int, np.ndarray, Phase]]:
    """(BlockID, pixels, phase in the pixels) of the emulated camera replaying ``folder``."""
    camera = PylonCamera(CameraSettings(width=640, height=400, emulated_cameras=1,
                                        emulator_image_dir=str(folder)))
    camera.open()
    try:
        camera.start()
        statistics, grabbed = GrabStatistics(), 0
        while grabbed < frames:
            frame = camera.grab(1000, statistics)
            assert statistics.timeouts < 10, 'the emulated camera stopped delivering'
            if frame is not None:
                grabbed += 1
                yield frame.block_id, frame.pixels, decode_phase(frame.pixels)
    finally:
        camera.close()


@pytest.mark.slow
@pytest.mark.parametrize('kind', sorted(DESYNCS))
def test_emulated_camera_desyncs_are_relabelled_and_never_scored(
    kind: str, tmp_path: Path
) -> None:
    positions = flash_positions(kind)
    write_emulator_frames(tmp_path, (
        (DEFAULT_PATTERN[p], phase_coded_frame(DEFAULT_PATTERN[p], 640, 400, seed=index))
        for index, p in enumerate(positions)))
    passes = 5
    records = track(grab(tmp_path, passes * len(positions)))
    assert_desyncs_handled(kind, outcome(records), min_desyncs=passes - 2)


@pytest.mark.slow
@pytest.mark.parametrize('lighting', ['office', 'halogen'])
@pytest.mark.parametrize('species', ['live', 'print', 'mask'])
def test_desyncs_on_rendered_faces_are_relabelled_and_never_scored(
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
        n_cycles=8, subject_id=1, mask_id=0 if species == 'mask' else None,
        print_kind=PrintKind.NIR if species == 'print' else None,
    )
    take = [render_cycle(spec, i, mode=CROP_MODE, take_period_s=2.0).frames
            for i in range(spec.n_cycles)]
    for kind in sorted(DESYNCS):
        # the scene goes on frame by frame; only the flash that lights each frame jumps
        positions = flash_positions(kind)
        frames = ((t, take[t // N][p], DEFAULT_PATTERN[p]) for t, p in enumerate(positions))
        assert_desyncs_handled(kind, outcome(track(frames)), min_desyncs=1)
