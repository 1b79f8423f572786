"""Per-pair and fused liveness decisions, designed to fail closed.

Per pair: a valid probability >= the model's threshold is LIVE, below it SPOOF; a pair that
could not be evaluated (dropped by pairing, NaN from the model) is UNKNOWN with a reason.

Fused: a sliding window of the last ``window_length`` pairs, valid or not, newer than
``timeout_s``. Invalid pairs take a window slot like valid ones, so a degraded stream runs
out of valid pairs and decays to UNKNOWN. The fused output
- is UNKNOWN, with that pair's reason, whenever the current pair is invalid: LIVE is only
  ever said on a complete, valid pair with landmarks;
- is UNKNOWN while the window holds fewer than ``min_valid_pairs`` valid pairs (warming up,
  or the dominant invalid reason in the window);
- otherwise follows the mean probability of the valid pairs with hysteresis: LIVE from
  ``enter_live`` up, SPOOF below ``exit_live``; in between it stays LIVE only if the last
  output was LIVE, else it is UNKNOWN (uncertain). Any non-LIVE output therefore makes the
  stream earn ``enter_live`` again.

Decision and reason codes equal the DECISION_* and REASON_* constants of
``msg/LivenessResult.msg``.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from enum import IntEnum
import math

from antispoof_ros.liveness.pairing import DropReason


class Decision(IntEnum):
    """LivenessResult.DECISION_*."""

    UNKNOWN = 0
    LIVE = 1
    SPOOF = 2


class Reason(IntEnum):
    """LivenessResult.REASON_*: why a decision is UNKNOWN (NONE otherwise)."""

    NONE = 0
    NO_FACE = 1
    MISSING_PHASE = 2
    LANDMARKS_STALE = 3
    MODEL_ERROR = 4
    WARMING_UP = 5
    BAD_INPUT = 6
    UNCERTAIN = 7


REASON_FOR_DROP: dict[DropReason, Reason] = {
    DropReason.WRONG_PHASE: Reason.MISSING_PHASE,
    DropReason.NOT_CONSECUTIVE: Reason.MISSING_PHASE,
    DropReason.PHASE_UNVERIFIED: Reason.MISSING_PHASE,
    DropReason.DUPLICATE: Reason.MISSING_PHASE,
    DropReason.OUT_OF_ORDER: Reason.MISSING_PHASE,
    DropReason.COUNTER_RESTART: Reason.MISSING_PHASE,
    DropReason.CORNERS_MISSING: Reason.LANDMARKS_STALE,
    DropReason.CORNERS_STALE: Reason.LANDMARKS_STALE,
    DropReason.CORNERS_MISMATCH: Reason.LANDMARKS_STALE,
    DropReason.NO_FACE: Reason.NO_FACE,
    DropReason.BAD_INPUT: Reason.BAD_INPUT,
}


@dataclass(frozen=True)
class PairOutcome:
    """What one pair contributed: a probability, or the reason it has none."""

    score: float
    reason: Reason

    @classmethod
    def scored(cls, score: float) -> PairOutcome:
        """A pair the model evaluated; a score that is no probability is a model error."""
        if 0.0 <= score <= 1.0:  # False for NaN
            return cls(score, Reason.NONE)
        return cls(math.nan, Reason.MODEL_ERROR)

    @classmethod
    def invalid(cls, reason: Reason) -> PairOutcome:
        """A pair that could not be evaluated, for ``reason`` (not NONE)."""
        if reason == Reason.NONE:
            raise ValueError('an invalid pair needs a reason other than NONE')
        return cls(math.nan, reason)

    @classmethod
    def dropped(cls, drop: DropReason) -> PairOutcome:
        """A pair the PairValidator rejected."""
        return cls.invalid(REASON_FOR_DROP[drop])

    @property
    def valid(self) -> bool:
        """True when the pair has a usable probability."""
        return self.reason == Reason.NONE


def pair_decision(outcome: PairOutcome, threshold: float) -> Decision:
    """LIVE if the probability reaches ``threshold``, SPOOF below it, UNKNOWN if invalid."""
    if not outcome.valid:
        return Decision.UNKNOWN
    return Decision.LIVE if outcome.score >= threshold else Decision.SPOOF


@dataclass(frozen=True)
class FusionConfig:
    """Window and hysteresis settings; one pair per flash cycle arrives at 30 Hz."""

    window_length: int = 9
    min_valid_pairs: int = 6
    enter_live: float = 0.7
    exit_live: float = 0.5
    timeout_s: float = 0.5

    def __post_init__(self) -> None:
        if self.window_length < 1:
            raise ValueError(f'window_length must be at least 1, not {self.window_length}')
        if not 1 <= self.min_valid_pairs <= self.window_length:
            raise ValueError(
                f'min_valid_pairs must be in 1..window_length ({self.window_length}), '
                f'not {self.min_valid_pairs}'
            )
        if not 0.0 <= self.exit_live <= self.enter_live <= 1.0:
            raise ValueError(
                f'need 0 <= exit_live ({self.exit_live}) <= enter_live ({self.enter_live}) <= 1'
            )
        if not self.timeout_s > 0.0:
            raise ValueError(f'timeout_s must be positive, not {self.timeout_s}')


@dataclass(frozen=True)
class FusedDecision:
    """Output of the fusion for one step."""

    decision: Decision
    reason: Reason
    fused_score: float  # mean probability of the valid pairs in the window; NaN if none
    valid_pairs: int
    window_pairs: int

    @property
    def reason_text(self) -> str:
        """Short human-readable explanation for LivenessResult.reason_text."""
        counts = f'{self.valid_pairs}/{self.window_pairs} valid pairs'
        if self.reason == Reason.NONE:
            return f'{self.decision.name.lower()}: fused score {self.fused_score:.3f}, {counts}'
        return f'{self.reason.name.lower()}: {counts}'


class DecisionFusion:
    """Sliding-window fusion with hysteresis over per-pair outcomes (see module docstring)."""

    def __init__(self, config: FusionConfig | None = None) -> None:
        self.config = config or FusionConfig()
        self._window: deque[tuple[float, PairOutcome]] = deque(maxlen=self.config.window_length)
        self._last = Decision.UNKNOWN

    def reset(self) -> None:
        """Forget every pair: the next decisions warm up again."""
        self._window.clear()
        self._last = Decision.UNKNOWN

    def update(self, outcome: PairOutcome, now_s: float) -> FusedDecision:
        """Add the pair that arrived at ``now_s`` (monotonic seconds) and decide."""
        self._forget_older_than(now_s)
        self._window.append((now_s, outcome))
        return self._decide(outcome)

    def expire(self, now_s: float) -> FusedDecision | None:
        """Call periodically: UNKNOWN when no valid pair arrived for ``timeout_s``, else None.

        Without it, a stream that stops would leave the last published LIVE standing.
        """
        self._forget_older_than(now_s)
        if any(outcome.valid for _, outcome in self._window):
            return None
        self._last = Decision.UNKNOWN
        reason = self._dominant_invalid_reason() or Reason.MISSING_PHASE
        return FusedDecision(Decision.UNKNOWN, reason, math.nan, 0, len(self._window))

    def _forget_older_than(self, now_s: float) -> None:
        horizon = now_s - self.config.timeout_s
        while self._window and self._window[0][0] < horizon:
            self._window.popleft()

    def _dominant_invalid_reason(self) -> Reason | None:
        """Most frequent invalid reason in the window; ties go to the most recent."""
        reasons = [outcome.reason for _, outcome in self._window if not outcome.valid]
        if not reasons:
            return None
        counts = Counter(reasons)
        return max(reversed(reasons), key=counts.__getitem__)

    def _decide(self, current: PairOutcome) -> FusedDecision:
        scores = [outcome.score for _, outcome in self._window if outcome.valid]
        fused = sum(scores) / len(scores) if scores else math.nan
        if not current.valid:
            decision, reason = Decision.UNKNOWN, current.reason
        elif len(scores) < self.config.min_valid_pairs:
            decision = Decision.UNKNOWN
            reason = self._dominant_invalid_reason() or Reason.WARMING_UP
        elif fused >= self.config.enter_live:
            decision, reason = Decision.LIVE, Reason.NONE
        elif fused < self.config.exit_live:
            decision, reason = Decision.SPOOF, Reason.NONE
        elif self._last == Decision.LIVE:
            decision, reason = Decision.LIVE, Reason.NONE
        else:
            decision, reason = Decision.UNKNOWN, Reason.UNCERTAIN
        self._last = decision
        return FusedDecision(decision, reason, fused, len(scores), len(self._window))
