"""Rig check: after wiring the flashes, does the camera see the flash pattern it should.

``python -m antispoof_ros.camera.check`` opens the camera, applies the flash wiring the
camera node would apply, grabs a number of flash cycles and prints, per phase of the
pattern, the mean brightness and left/right asymmetry of its frames and which flash the
images show there (the dark frame is the darkest, the side flashes shade their side of the
face; ``RIGHT_FLASH_IMAGE_SIDE``). It names a miswired rig ("right and left are swapped",
"the flashes run 1 frame ahead of the labels"), and reports the frame-interval jitter and
the frames the camera dropped (BlockID gaps, failed grabs). ``--dry-run`` prints the
wiring plan without a camera.

Exit status: 0 pattern confirmed, 1 not confirmed or miswired, 2 bad input or camera error.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
import sys
import time

import numpy as np

from antispoof_ros.camera import wiring
from antispoof_ros.camera.phase_labels import (
    FrameCounterLabeler,
    PhaseTracker,
    counter_label,
    frame_statistics,
)
from antispoof_ros.camera.pylon_source import (
    CameraError,
    CameraSettings,
    GrabStatistics,
    PylonCamera,
)
from antispoof_ros.flash import DEFAULT_PATTERN, RIGHT_FLASH_IMAGE_SIDE, Phase, parse_pattern

PROGRAM = 'python -m antispoof_ros.camera.check'
CONFIRMED, NOT_CONFIRMED, BAD_INPUT = 0, 1, 2
DARK_RATIO = 0.7  # the dark frame must be darker than this times the next darkest
MIN_SIDE_DIFFERENCE = 0.02  # right-vs-left asymmetry difference that decides the sides


@dataclass
class Frame:
    """What the check keeps of one grabbed frame (not its pixels)."""

    block_id: int
    time_ns: int
    brightness: float
    asymmetry: float
    sequencer_set: int | None


@dataclass
class Observation:
    """Frames of one run and the offsets the image check confirmed, one per whole cycle."""

    frames: list[Frame] = field(default_factory=list)
    implied_offsets: list[int] = field(default_factory=list)
    statistics: GrabStatistics = field(default_factory=GrabStatistics)
    uses_camera_clock: bool = False


@dataclass(frozen=True)
class Verdict:
    """The check's conclusion: exit status and one line for the engineer."""

    status: int
    text: str


def identify_phases(brightness: Sequence[float], asymmetry: Sequence[float],
                    pattern: Sequence[Phase]) -> list[Phase | None]:
    """Which flash lit each position of the cycle, from its mean statistics (None: unclear).

    Only the phases in ``pattern`` are looked for: the darkest position is dark when it
    stands out (``DARK_RATIO``), the side flashes are the positions whose asymmetry leans
    most to their side, and front is what remains.
    """
    observed: list[Phase | None] = [None] * len(pattern)
    remaining = list(range(len(pattern)))
    if Phase.DARK in pattern and len(remaining) > 1:
        order = sorted(remaining, key=lambda p: brightness[p])
        if brightness[order[0]] <= DARK_RATIO * brightness[order[1]]:
            observed[order[0]] = Phase.DARK
            remaining.remove(order[0])
    if {Phase.RIGHT, Phase.LEFT} <= set(pattern) and len(remaining) >= 2:
        by_side = sorted(remaining, key=lambda p: RIGHT_FLASH_IMAGE_SIDE * asymmetry[p])
        right, left = by_side[-1], by_side[0]
        if RIGHT_FLASH_IMAGE_SIDE * (asymmetry[right] - asymmetry[left]) >= MIN_SIDE_DIFFERENCE:
            observed[right], observed[left] = Phase.RIGHT, Phase.LEFT
            remaining = [p for p in remaining if p not in (right, left)]
    unplaced = [phase for phase in pattern if phase not in observed]
    if len(remaining) == 1 and len(unplaced) == 1:
        observed[remaining[0]] = unplaced[0]
    return observed


def diagnose(pattern: Sequence[Phase], observed: Sequence[Phase | None], offset: int) -> Verdict:
    """Compare the observed phases with the pattern and name the miswiring."""
    n = len(pattern)
    if None in observed:
        unclear = ', '.join(pattern[p].label for p in range(n) if observed[p] is None)
        return Verdict(NOT_CONFIRMED, f'NOT CONFIRMED: the images do not tell which flash lit '
                                      f'the {unclear} frames (flashes off, no face in view?)')
    if list(observed) == list(pattern):
        return Verdict(CONFIRMED, 'PATTERN CONFIRMED')
    wrong = [p for p in range(n) if observed[p] != pattern[p]]
    if len(wrong) == 2 and observed[wrong[0]] == pattern[wrong[1]]:
        a, b = (pattern[p].label for p in wrong)
        return Verdict(NOT_CONFIRMED, f'MISWIRED: {a} and {b} are swapped')
    for shift in range(1, n):
        if all(observed[p] == pattern[(p + shift) % n] for p in range(n)):
            return Verdict(NOT_CONFIRMED, (
                f"MISWIRED: the flashes run {shift} frame{'s' if shift > 1 else ''} ahead of "
                f'the labels (phase offset {(offset + shift) % n} would match)'))
    seen = ', '.join(f'{pattern[p].label} frames show {observed[p].label}' for p in wrong)
    return Verdict(NOT_CONFIRMED, f'MISWIRED: {seen}')


def percentile_ms(values: np.ndarray, q: float) -> float:
    """Percentile of nanosecond values, in milliseconds."""
    return float(np.percentile(values, q)) / 1e6


def grab(camera: PylonCamera, tracker: PhaseTracker, frame_count: int,
         timeout_s: float) -> Observation:
    """Grab ``frame_count`` frames (or until ``timeout_s``); statistics, not pixels, are kept.

    A cycle (counters ``k*N`` to ``k*N + N - 1``) is decided when the tracker verifies its
    last frame: its window is then exactly that cycle, and the offset that fits is kept.
    """
    n = len(tracker.pattern)
    observation = Observation()
    deadline = time.monotonic() + timeout_s
    while len(observation.frames) < frame_count and time.monotonic() < deadline:
        grabbed = camera.grab(1000, observation.statistics)
        if grabbed is None:
            continue
        if grabbed.camera_tick > 0:
            observation.uses_camera_clock = True
        brightness, asymmetry = frame_statistics(grabbed.pixels)
        observation.frames.append(Frame(
            grabbed.block_id,
            grabbed.camera_tick if observation.uses_camera_clock else grabbed.host_arrival_ns,
            brightness, asymmetry, grabbed.sequencer_set))
        counter = tracker.labeler.counter(grabbed.block_id)
        if tracker.label(counter, grabbed.pixels).verified and counter % n == n - 1:
            observation.implied_offsets.append(tracker.labeler.offset)
    return observation


def report(observation: Observation, pattern: tuple[Phase, ...], offset: int,
           sequencer: bool) -> tuple[list[str], Verdict]:
    """The printed table and the verdict."""
    n, frames = len(pattern), observation.frames
    if sequencer:  # the labels come from the chunk's set index: set i fires pattern[i]
        offsets = [(f.sequencer_set - f.block_id) % n for f in frames
                   if f.sequencer_set is not None]
        offset = int(np.bincount(offsets).argmax()) if offsets else offset
    positions = [
        f.sequencer_set % n if sequencer and f.sequencer_set is not None
        else counter_label(f.block_id, pattern, offset).position_in_cycle
        for f in frames
    ]
    lines = [f"{'phase':8s}{'frames':>7s}{'brightness':>12s}{'asymmetry':>11s}  "
             f"{'expected':10s}observed"]
    brightness, asymmetry = np.zeros(n), np.zeros(n)
    counts = np.bincount(positions, minlength=n)
    if counts.min() == 0:
        return lines, Verdict(NOT_CONFIRMED, 'NOT CONFIRMED: not every phase was grabbed')
    for p in range(n):
        mine = [f for f, position in zip(frames, positions, strict=True) if position == p]
        brightness[p] = np.mean([f.brightness for f in mine])
        asymmetry[p] = np.mean([f.asymmetry for f in mine])
    observed = identify_phases(brightness, asymmetry, pattern)
    for p, phase in enumerate(pattern):
        seen = observed[p].label if observed[p] is not None else '?'
        lines.append(f'{phase.label:8s}{counts[p]:7d}{brightness[p]:12.1f}{asymmetry[p]:+11.3f}  '
                     f"{phase.label:10s}{seen:9s}{'' if observed[p] == phase else '<--'}".rstrip())
    cycles = len(frames) // n
    agree = sum(1 for implied in observation.implied_offsets if implied == offset)
    lines.append(f'image check: {len(observation.implied_offsets)} of {cycles} cycles decided, '
                 f'{agree} agree with phase offset {offset}')
    times = np.array([f.time_ns for f in frames], dtype=np.int64)
    ids = np.array([f.block_id for f in frames], dtype=np.int64)
    gaps = int(np.sum(np.diff(ids) - 1)) if len(ids) > 1 else 0
    if len(times) > 2:
        intervals = np.diff(times) / np.maximum(np.diff(ids), 1)
        p50, p99 = percentile_ms(intervals, 50), percentile_ms(intervals, 99)
        clock = 'camera clock' if observation.uses_camera_clock else 'host arrival times'
        lines.append(f'frame interval: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max '
                     f'{float(intervals.max()) / 1e6:.2f} ms; jitter (p99 - p50) '
                     f'{p99 - p50:.2f} ms ({clock})')
    failed = observation.statistics.failed
    lines.append(f'dropped frames: {gaps + failed} (BlockID gaps {gaps}, failed grabs {failed})')
    verdict = diagnose(pattern, observed, offset)
    disagree = len(observation.implied_offsets) - agree
    if verdict.status == CONFIRMED and disagree:
        verdict = Verdict(NOT_CONFIRMED,
                          f'NOT CONFIRMED: {disagree} cycles disagree with the pattern')
    return lines, verdict


def dry_run_plan(args: argparse.Namespace, pattern: tuple[Phase, ...]) -> list[wiring.Step]:
    """The wiring plan for ``args`` without a camera (documented set count of the family)."""
    line_outputs = wiring.parse_line_outputs(_comma_list(args.line_outputs))
    entries = [f'{line}:{source}' for line, source in line_outputs]
    if args.wiring == 'external':
        return wiring.external_controller_plan(entries)
    plan = wiring.line_output_plan(entries)
    if args.wiring == 'sequencer':
        plan += wiring.sequencer_plan(
            pattern, wiring.parse_flash_lines(_comma_list(args.flash_lines)),
            wiring.camera_family(args.camera_family))
    return plan


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(',') if item.strip())


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """Command line of the rig check."""
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.split('\n\n')[0])
    parser.add_argument('--serial', default='', help='camera serial number (default: any)')
    parser.add_argument('--user-id', default='', help='camera DeviceUserID (default: any)')
    parser.add_argument('--wiring', choices=wiring.WIRING_MODES, default='external',
                        help='flash wiring to apply (default: external)')
    parser.add_argument('--flash-lines', default='front:Line2,right:Line3,left:Line4',
                        help="sequencer wiring: output line(s) per flash phase, '+' joins lines")
    parser.add_argument('--line-outputs', default='',
                        help="strobe output(s) as Line:Source, e.g. 'Line2:ExposureActive' "
                             '(needed by the external wiring)')
    parser.add_argument('--pattern', default=','.join(p.label for p in DEFAULT_PATTERN),
                        help='flash phases of one cycle in firing order')
    parser.add_argument('--phase-offset', type=int, default=0,
                        help='frame-counter offset of the labels (external/none wiring)')
    parser.add_argument('--cycles', type=int, default=20, help='flash cycles to grab')
    parser.add_argument('--timeout-s', type=float, default=30.0, help='give up grabbing after')
    parser.add_argument('--exposure-us', type=float, default=2000.0)
    parser.add_argument('--frame-rate-hz', type=float, default=120.0)
    parser.add_argument('--width', type=int, default=1920)
    parser.add_argument('--height', type=int, default=1200)
    parser.add_argument('--emulated', type=int, default=0,
                        help="number of pylon emulated cameras (0: real cameras)")
    parser.add_argument('--image-dir', default='',
                        help='image folder the emulated camera replays (phase-coded frames)')
    parser.add_argument('--camera-family', choices=sorted(wiring.FAMILIES), default='ace_usb',
                        help='--dry-run: camera family whose sequencer the plan is for')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the wiring plan and exit; no camera needed')
    args = parser.parse_args(argv)
    if args.cycles < 1:
        parser.error('--cycles must be at least 1')
    return args


def run(args: argparse.Namespace) -> int:
    """The rig check itself; returns the exit status."""
    try:
        pattern = parse_pattern(_comma_list(args.pattern))
        if args.dry_run:
            plan = dry_run_plan(args, pattern)
            family = wiring.camera_family(args.camera_family)
            what = f' for {family.label}' if args.wiring == 'sequencer' else ''
            print(f"flash wiring '{args.wiring}'{what}: {len(plan)} steps")
            print(wiring.format_plan(plan) if plan else '  (nothing to write)')
            return CONFIRMED
        # the same checks before looking for a camera: bad input is no camera error
        dry_run_plan(args, pattern)
        tracker = PhaseTracker(FrameCounterLabeler(pattern, args.phase_offset),
                               dark_ratio=DARK_RATIO, min_side_contrast=MIN_SIDE_DIFFERENCE)
        settings = CameraSettings(
            serial_number=args.serial, user_id=args.user_id, width=args.width,
            height=args.height, exposure_us=args.exposure_us, frame_rate_hz=args.frame_rate_hz,
            line_outputs=_comma_list(args.line_outputs), emulated_cameras=args.emulated,
            emulator_image_dir=args.image_dir, flash_wiring=args.wiring,
            flash_lines=_comma_list(args.flash_lines), flash_pattern=pattern)
    except ValueError as error:  # WiringError included
        print(f'{PROGRAM}: error: {error}', file=sys.stderr)
        return BAD_INPUT
    try:
        camera = PylonCamera(settings)
        info = camera.open()
        try:
            camera.start()
            observation = grab(camera, tracker, args.cycles * len(pattern), args.timeout_s)
        finally:
            camera.close()
    except CameraError as error:
        print(f'{PROGRAM}: camera error: {error}', file=sys.stderr)
        return BAD_INPUT
    print(f"rig check: {info.model} serial {info.serial_number}"
          f"{' (emulated)' if info.is_emulator else ''}, flash wiring '{args.wiring}' "
          f'({len(info.wiring_plan)} features written), pattern '
          f"{','.join(p.label for p in pattern)}, {len(observation.frames)} frames")
    lines, verdict = report(observation, pattern, args.phase_offset, args.wiring == 'sequencer')
    print('\n'.join(lines))
    print(verdict.text)
    return verdict.status


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m antispoof_ros.camera.check``."""
    return run(parse_arguments(argv))


if __name__ == '__main__':
    sys.exit(main())
