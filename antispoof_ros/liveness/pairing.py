"""Checks that a time-matched set (frame A, frame B, eye corners) is the pair the model expects.

Time matching alone cannot tell a front frame of one cycle from that of the next, notice a
lost frame or a corners message that belongs to an older cycle. The camera stamps every
frame in-band (phase, frame counter, cycle index, position in cycle), so the validator
verifies, before any pixel is used:

1. A and B carry the phases of the PairConfig, consistent with their position in the cycle;
2. B is the frame right after A (``B.counter == A.counter + 1``) in the same cycle, or the
   very same frame for single_* configurations;
3. the pair is newer than every pair seen before (no duplicate, no reordering);
4. the corners come from the landmark-phase frame (front by default) of the same cycle as
   A, found by counter: ``A.counter - A.position_in_cycle + index of that phase``. Corners
   of an older frame are stale; any other frame is a mismatch. Their status is OK and
   every coordinate finite.

Any failure drops the set and counts it under one reason; the first failing check names it.
``StreamMonitor`` counts what never reaches the validator: a frame whose partner was lost
and a duplicate of a set already emitted are discarded by the synchronizer without a trace.
No ROS import: ``FrameInfo.from_msg`` and ``CornerInfo.from_msg`` only read attributes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, PairConfig, Phase

# A counter more than this many frames below the newest pair seen means the camera
# restarted (BlockID counts from 0 again), not that frames were reordered in transport.
DEFAULT_RESTART_GAP_FRAMES = 1200


class CornerStatus(IntEnum):
    """Outcome of the eye-corner search; codes equal EyeCorners.STATUS_*."""

    OK = 0
    NO_FACE = 1
    BAD_INPUT = 2


class DropReason(StrEnum):
    """Why a candidate pair was not passed to the model."""

    WRONG_PHASE = 'wrong_phase'  # a phase label differs from the config or its cycle position
    NOT_CONSECUTIVE = 'not_consecutive'  # B is not the frame right after A in the same cycle
    PHASE_UNVERIFIED = 'phase_unverified'  # image check did not confirm a phase (if required)
    DUPLICATE = 'duplicate'  # this pair was already seen
    OUT_OF_ORDER = 'out_of_order'  # older than a pair already seen
    COUNTER_RESTART = 'counter_restart'  # the camera counter jumped far back; history reset
    CORNERS_MISSING = 'corners_missing'  # no corners message with the pair
    CORNERS_STALE = 'corners_stale'  # corners from an earlier frame than this cycle's
    CORNERS_MISMATCH = 'corners_mismatch'  # corners from a frame that is not this cycle's
    NO_FACE = 'no_face'  # the landmark frame holds no face
    BAD_INPUT = 'bad_input'  # landmark search failed on the frame, or corners not finite


@dataclass(frozen=True)
class FrameInfo:
    """The in-band stamps of one FlashFrame (no pixels)."""

    phase: int
    frame_counter: int
    cycle_index: int
    position_in_cycle: int
    phase_verified: bool = False

    @classmethod
    def from_msg(cls, msg: Any) -> FrameInfo:
        """Read the fields of an ``antispoof_ros/FlashFrame`` message."""
        return cls(
            phase=int(msg.phase),
            frame_counter=int(msg.frame_counter),
            cycle_index=int(msg.cycle_index),
            position_in_cycle=int(msg.position_in_cycle),
            phase_verified=bool(msg.phase_verified),
        )


@dataclass(frozen=True)
class CornerInfo:
    """Result of the eye-corner search on one frame."""

    status: int
    frame_counter: int
    points: EyeCornerPoints

    @classmethod
    def from_msg(cls, msg: Any) -> CornerInfo:
        """Read the fields of an ``antispoof_ros/EyeCorners`` message."""
        names = ('right_eye_outer', 'right_eye_inner', 'left_eye_outer', 'left_eye_inner')
        points = [getattr(msg, name) for name in names]
        return cls(
            status=int(msg.status),
            frame_counter=int(msg.frame_counter),
            points=EyeCornerPoints(*[(float(p.x), float(p.y)) for p in points]),
        )


@dataclass(frozen=True)
class PairVerdict:
    """Whether a pair may be used; ``reason`` is None exactly when ``ok``."""

    ok: bool
    reason: DropReason | None = None


ACCEPTED = PairVerdict(True)


@dataclass
class PairValidator:
    """Accepts only (A, B, corners) sets that are the configured pair of one flash cycle.

    Stateful: remembers the newest pair seen, to reject duplicates and reordering. Keep one
    validator per stream and call ``check`` for every set the synchronizer emits, so every
    drop is counted.
    """

    config: PairConfig
    pattern: tuple[Phase, ...] = DEFAULT_PATTERN
    landmark_phase: Phase = Phase.FRONT
    require_verified_phase: bool = False
    restart_gap_frames: int = DEFAULT_RESTART_GAP_FRAMES
    accepted: int = field(default=0, init=False)
    drops: Counter[DropReason] = field(default_factory=Counter, init=False)
    _newest_counter: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        for phase in (self.config.phase_a, self.config.phase_b, self.landmark_phase):
            if phase not in self.pattern:
                raise ValueError(f'phase {phase.label} is not in the flash pattern')
        position_a = self.pattern.index(self.config.phase_a)
        position_b = self.pattern.index(self.config.phase_b)
        if position_b != position_a + int(not self.config.is_single):
            raise ValueError(
                f'pair {self.config.name}: {self.config.phase_b.label} does not follow '
                f'{self.config.phase_a.label} within one cycle of the flash pattern'
            )
        if self.restart_gap_frames < 1:
            raise ValueError('restart_gap_frames must be at least 1')

    def check(self, a: FrameInfo, b: FrameInfo, corners: CornerInfo | None) -> PairVerdict:
        """Verdict on one candidate set; a drop is counted under its reason."""
        reason = self._frames_problem(a, b) or self._order_problem(a)
        if reason is None:
            reason = self._corners_problem(a, corners)
        if reason is None:
            self.accepted += 1
            return ACCEPTED
        self.drops[reason] += 1
        return PairVerdict(False, reason)

    @property
    def dropped(self) -> int:
        """Number of sets dropped for any reason."""
        return sum(self.drops.values())

    def counts(self) -> dict[str, int]:
        """Accepted and dropped sets by reason (every reason listed), for diagnostics."""
        return {'accepted': self.accepted, **{r.value: self.drops[r] for r in DropReason}}

    def _phase_consistent(self, frame: FrameInfo, phase: Phase) -> bool:
        position = frame.position_in_cycle
        return (
            frame.phase == phase
            and 0 <= position < len(self.pattern)
            and self.pattern[position] == phase
        )

    def _frames_problem(self, a: FrameInfo, b: FrameInfo) -> DropReason | None:
        if not (
            self._phase_consistent(a, self.config.phase_a)
            and self._phase_consistent(b, self.config.phase_b)
        ):
            return DropReason.WRONG_PHASE
        step = 0 if self.config.is_single else 1
        if b.frame_counter != a.frame_counter + step or b.cycle_index != a.cycle_index:
            return DropReason.NOT_CONSECUTIVE
        if self.require_verified_phase and not (a.phase_verified and b.phase_verified):
            return DropReason.PHASE_UNVERIFIED
        return None

    def _order_problem(self, a: FrameInfo) -> DropReason | None:
        newest = self._newest_counter
        if newest is not None and a.frame_counter <= newest:
            if a.frame_counter == newest:
                return DropReason.DUPLICATE
            if newest - a.frame_counter <= self.restart_gap_frames:
                return DropReason.OUT_OF_ORDER
            # Fail closed across a restart: drop this pair, accept from the next one.
            self._newest_counter = a.frame_counter
            return DropReason.COUNTER_RESTART
        self._newest_counter = a.frame_counter
        return None

    def _corners_problem(self, a: FrameInfo, corners: CornerInfo | None) -> DropReason | None:
        if corners is None:
            return DropReason.CORNERS_MISSING
        expected = (
            a.frame_counter - a.position_in_cycle + self.pattern.index(self.landmark_phase)
        )
        if corners.frame_counter < expected:
            return DropReason.CORNERS_STALE
        if corners.frame_counter != expected:
            return DropReason.CORNERS_MISMATCH
        if corners.status == CornerStatus.NO_FACE:
            return DropReason.NO_FACE
        if corners.status != CornerStatus.OK or not corners.points.is_finite():
            return DropReason.BAD_INPUT
        return None


class StreamAnomaly(StrEnum):
    """What is wrong with a message's frame counter, seen against its own input stream."""

    MISSING = 'missing'  # counters were skipped: messages lost upstream or in transport
    DUPLICATE = 'duplicate'  # the newest counter again
    OUT_OF_ORDER = 'out_of_order'  # older than the newest counter seen
    COUNTER_JUMP = 'counter_jump'  # a jump of more than restart_gap_frames, either way


@dataclass
class StreamMonitor:
    """Counts lost, duplicated and reordered messages of one input stream by frame counter.

    One stream carries one phase (or the corners of one phase), so its counters step by the
    pattern length. A jump beyond ``restart_gap_frames`` is a camera restart or a forged
    counter: it is counted once and the stream follows the new counter, so neither a
    restart nor one absurd counter turns into millions of "missing" frames. A message that
    arrives late is counted twice: as missing when its successor arrives, then out of order.
    """

    step: int
    restart_gap_frames: int = DEFAULT_RESTART_GAP_FRAMES
    counts: Counter[StreamAnomaly] = field(default_factory=Counter, init=False)
    _newest: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.step < 1:
            raise ValueError(f'step must be at least 1, not {self.step}')

    def add(self, counter: int) -> StreamAnomaly | None:
        """Note one arriving message; return its anomaly (counted), if any."""
        newest, self._newest = self._newest, counter
        if newest is None:
            return None
        gap = counter - newest
        if abs(gap) > self.restart_gap_frames:
            anomaly = StreamAnomaly.COUNTER_JUMP
        elif gap > 0:
            missing = (gap - 1) // self.step
            self.counts[StreamAnomaly.MISSING] += missing
            return StreamAnomaly.MISSING if missing else None
        else:
            self._newest = newest  # an old message does not move the stream back
            anomaly = StreamAnomaly.DUPLICATE if gap == 0 else StreamAnomaly.OUT_OF_ORDER
        self.counts[anomaly] += 1
        return anomaly
