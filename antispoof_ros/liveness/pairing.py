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

The synchronizer that proposes the sets is tuned by what the frames themselves show:
``FramePeriodEstimator`` measures the camera's real frame period from counters and stamps,
``sync_slop_periods`` says how many periods of stamp difference a set may span, and
``SyncWatch`` names, with numbers, why no set has been matched while frames keep coming.
No ROS import: ``FrameInfo.from_msg`` and ``CornerInfo.from_msg`` only read attributes.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from enum import Enum, IntEnum, StrEnum
import itertools
import math
import statistics
from typing import Any

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, PairConfig, Phase

# A counter more than this many frames below the newest pair seen means the camera
# restarted (BlockID counts from 0 again), not that frames were reordered in transport.
DEFAULT_RESTART_GAP_FRAMES = 1200
# Frame periods a camera can have: the range of liveness_node's frame_rate_hz (1 to 1000 Hz).
MIN_FRAME_PERIOD_NS = 1_000_000
MAX_FRAME_PERIOD_NS = 1_000_000_000
NS_PER_MS = 1_000_000


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


def sync_slop_periods(pattern: tuple[Phase, ...], phases: Iterable[Phase]) -> float:
    """Synchronizer slop, in frame periods, for inputs stamped like frames of ``phases``.

    One cycle's set spans the distance between its outermost phases; the tightest set that
    mixes two cycles spans the pattern length less the widest gap between the set's phases.
    The slop stays half a period short of the second (and at least half a period above the
    first): frames stamped late (an emulated camera stamps on arrival) still pair, while sets
    of two cycles stamped on time do not form. Even a wider slop cannot cause a mis-pair:
    ``PairValidator`` checks every set the synchronizer emits on its in-band counters; it
    only costs the sets that the check then drops.
    """
    positions = sorted(pattern.index(phase) for phase in phases)
    spread = positions[-1] - positions[0]
    widest_gap = max((b - a for a, b in itertools.pairwise(positions)), default=0)
    mixed_spread = len(pattern) - widest_gap
    return max(mixed_spread - 0.5, spread + 0.5)


@dataclass
class FramePeriodEstimator:
    """The camera's frame period as its frames show it, whatever rate it was configured for.

    Two frames of one stream give a sample: their stamp difference over their counter
    difference, so a lost frame makes a longer step, not a longer period. The estimate is the
    median of the newest ``samples`` samples of all streams, so one odd sample (a frame
    stamped late, the gap of a camera outage) does not move it. Duplicates, reordered frames,
    counter jumps beyond ``restart_gap_frames`` and periods outside 1 ms .. 1 s give none.
    """

    samples: int = 15
    restart_gap_frames: int = DEFAULT_RESTART_GAP_FRAMES
    _recent: deque[float] = field(init=False)
    _newest: dict[Hashable, tuple[int, int]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f'samples must be at least 1, not {self.samples}')
        self._recent = deque(maxlen=self.samples)

    def add(self, stream: Hashable, counter: int, stamp_ns: int) -> float | None:
        """Note one frame of ``stream``; the period estimate in ns (None before a sample)."""
        newest = self._newest.get(stream)
        steps = None if newest is None else counter - newest[0]
        if steps is None or steps > 0 or abs(steps) > self.restart_gap_frames:
            self._newest[stream] = (counter, stamp_ns)
        if steps is not None and 0 < steps <= self.restart_gap_frames:
            period_ns = (stamp_ns - newest[1]) / steps
            if MIN_FRAME_PERIOD_NS <= period_ns <= MAX_FRAME_PERIOD_NS:
                self._recent.append(period_ns)
        return self.period_ns

    @property
    def period_ns(self) -> float | None:
        """Median of the recent samples in ns; None before the first."""
        return statistics.median(self._recent) if self._recent else None


class SyncInput(Enum):
    """The synchronizer's inputs."""

    FRAME_A = 'frame A'
    FRAME_B = 'frame B'
    CORNERS = 'eye corners'


class NoPairsCause(StrEnum):
    """Why the synchronizer matches no set although frames arrive."""

    NO_FRAME_A = 'no_frame_a'  # frames B arrive, frames A do not
    NO_FRAME_B = 'no_frame_b'  # frames A arrive, frames B do not
    NO_CORNERS = 'no_corners'  # frames arrive, eye corners do not
    FRAMES_APART = 'frames_apart'  # A and B are stamped farther apart than the slop
    CORNERS_APART = 'corners_apart'  # corners are stamped farther from every A than the slop
    SPREAD = 'spread'  # pairwise close, but no A, B and corners together within the slop
    UNMATCHED = 'unmatched'  # all within the slop, yet no set: a synchronizer queue too short


@dataclass(frozen=True)
class NoPairs:
    """Why no set was matched: a cause to compare and a line with numbers to show."""

    cause: NoPairsCause
    text: str


@dataclass
class SyncWatch:
    """Names the cause when no set has been matched for ``quiet_s`` although frames arrive.

    Fed with every input's header stamp as it arrives and with each matched set; keeps the
    ``history`` newest stamps per input, as many as the synchronizer's queues hold, and
    compares them with the slop the way the synchronizer does. ``single``: frame A is frame B.
    """

    label_a: str
    label_b: str
    single: bool = False
    quiet_s: float = 1.0
    history: int = 10
    _stamps: dict[SyncInput, deque[int]] = field(init=False)
    _arrivals: Counter[SyncInput] = field(default_factory=Counter, init=False)
    _last_arrival_s: dict[SyncInput, float] = field(default_factory=dict, init=False)
    _arrivals_then: dict[SyncInput, Counter[SyncInput]] = field(default_factory=dict,
                                                               init=False)
    _quiet_since_s: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.history < 1:
            raise ValueError(f'history must be at least 1, not {self.history}')
        self._stamps = {which: deque(maxlen=self.history) for which in SyncInput}

    def arrived(self, which: SyncInput, stamp_ns: int, now_s: float) -> None:
        """Note one message of input ``which``."""
        if self._quiet_since_s is None:
            self._quiet_since_s = now_s
        self._stamps[which].append(stamp_ns)
        self._arrivals[which] += 1
        self._last_arrival_s[which] = now_s
        self._arrivals_then[which] = self._arrivals.copy()

    def matched(self, now_s: float) -> None:
        """The synchronizer emitted a set."""
        self._quiet_since_s = now_s

    def why(self, now_s: float, slop_ns: float) -> NoPairs | None:
        """The cause while no set has been matched for ``quiet_s`` and frames arrive, else None."""
        if self._quiet_since_s is None or now_s - self._quiet_since_s < self.quiet_s:
            return None
        frames = (SyncInput.FRAME_A,) if self.single else (SyncInput.FRAME_A, SyncInput.FRAME_B)
        recent = {which for which, last in self._last_arrival_s.items()
                  if now_s - last < self.quiet_s}
        if not recent & set(frames):
            return None  # nothing arrives: nothing to pair, nothing to explain
        labels = {SyncInput.FRAME_A: self.label_a, SyncInput.FRAME_B: self.label_b}
        if not self.single:
            a, b = frames
            for missing, present in ((a, b), (b, a)):
                if missing not in recent:
                    return NoPairs(
                        NoPairsCause.NO_FRAME_A if missing is SyncInput.FRAME_A
                        else NoPairsCause.NO_FRAME_B,
                        f'no {labels[missing]} frames for {self._since(present, missing)} '
                        f'{labels[present]} frames')
        if SyncInput.CORNERS not in recent:
            return NoPairs(NoPairsCause.NO_CORNERS, f'no eye corners for '
                           f'{self._since(SyncInput.FRAME_A, SyncInput.CORNERS)} '
                           f'{self.label_a} frames')
        return self._stamp_cause(frames, slop_ns)

    def _since(self, counted: SyncInput, last_of: SyncInput) -> int:
        """Arrivals of ``counted`` since the last arrival of ``last_of`` (or since the start)."""
        then = self._arrivals_then.get(last_of, Counter())
        return self._arrivals[counted] - then[counted]

    def _stamp_cause(self, frames: tuple[SyncInput, ...], slop_ns: float) -> NoPairs:
        a, b = self.label_a, self.label_b
        slop = f'slop {slop_ns / NS_PER_MS:.1f} ms'
        stamps_a, corners = self._stamps[SyncInput.FRAME_A], self._stamps[SyncInput.CORNERS]
        if not self.single:
            gap = _nearest(stamps_a, self._stamps[SyncInput.FRAME_B])
            if gap >= slop_ns:
                return NoPairs(NoPairsCause.FRAMES_APART,
                               f'{a} and {b} frames are {gap / NS_PER_MS:.1f} ms apart, {slop}')
        gap = _nearest(stamps_a, corners)
        if gap >= slop_ns:
            return NoPairs(NoPairsCause.CORNERS_APART, f'eye corners are {gap / NS_PER_MS:.1f} '
                           f'ms from the {a} frames, {slop}')
        spread = min(max(s) - min(s) for s in itertools.product(
            *(self._stamps[which] for which in (*frames, SyncInput.CORNERS))))
        inputs = f'{a} frames and eye corners' if self.single else \
            f'{a} and {b} frames and eye corners'
        if spread >= slop_ns:
            return NoPairs(NoPairsCause.SPREAD,
                           f'{inputs} span {spread / NS_PER_MS:.1f} ms, {slop}')
        return NoPairs(NoPairsCause.UNMATCHED, f'{inputs} lie within {spread / NS_PER_MS:.1f} '
                       f'ms ({slop}) but form no set: they may arrive more than '
                       f'{self.history} messages apart')


def _nearest(first: Iterable[int], second: Iterable[int]) -> float:
    """Smallest distance between a stamp of ``first`` and one of ``second``."""
    return min((abs(x - y) for x, y in itertools.product(first, second)), default=math.inf)
