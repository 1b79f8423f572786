"""Per-pair and fused liveness decisions, anchored to the model's threshold, failing closed.

Per pair: a valid probability >= the model's threshold is LIVE, below it SPOOF; a pair that
could not be evaluated (dropped by pairing, NaN from the model) is UNKNOWN with a reason.

Fused: a sliding window of the last ``window_length`` pairs, valid or not, newer than
``timeout_s``. Invalid pairs take a window slot like valid ones, so a degraded stream runs
out of valid pairs and decays to UNKNOWN. Each valid pair has a margin, its logit minus the
logit of the model's threshold (> 0: LIVE by the model, < 0: SPOOF); the window has the mean
margin of its valid pairs and a vote, the share of them that are LIVE. The fused output
- is UNKNOWN, with that pair's reason, whenever the current pair is invalid: LIVE is only
  ever said on a complete, valid pair with landmarks;
- is UNKNOWN while the window holds fewer than ``min_valid_pairs`` valid pairs (warming up,
  or the dominant invalid reason in the window);
- is LIVE only while at least ``min_live_fraction`` of the valid pairs are LIVE by the
  model's threshold, from a mean margin of ``enter_margin`` up; it stays LIVE down to
  ``exit_margin`` if the last output was LIVE; it is SPOOF below ``exit_margin``; anything
  else is UNKNOWN (uncertain). Any non-LIVE output makes the stream earn ``enter_margin``
  again.

A window whose valid pairs are all SPOOF by the model's threshold has no LIVE vote and a
negative mean margin, so it cannot be LIVE unless both ``min_live_fraction`` and
``exit_margin`` are zero or less: ``FusionConfig`` refuses that combination. Time is whatever
clock the caller passes (``now_s``): the liveness node passes its ROS clock, so a bag replayed
with simulated time decides alike at any rate.

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


#: Probabilities are held this far inside (0, 1) before their logit is taken: a float32
#: sigmoid saturates to exactly 0 or 1, whose logit is infinite.
PROBABILITY_EPSILON = 1e-6


def logit(probability: float) -> float:
    """Log-odds of ``probability``, clamped to ``PROBABILITY_EPSILON`` from 0 and 1."""
    clamped = min(max(probability, PROBABILITY_EPSILON), 1.0 - PROBABILITY_EPSILON)
    return math.log(clamped / (1.0 - clamped))


def sigmoid(value: float) -> float:
    """Inverse of ``logit`` within the clamped range."""
    return 1.0 / (1.0 + math.exp(-value))


@dataclass(frozen=True)
class FusionConfig:
    """Window, vote and hysteresis settings; one pair per flash cycle arrives at 30 Hz.

    Margins are in logits relative to the model's threshold: +1 is e.g. 0.75 for a
    threshold of 0.52 and 0.89 for one of 0.75.
    """

    window_length: int = 9
    min_valid_pairs: int = 6
    enter_margin: float = 1.0
    exit_margin: float = 0.0
    min_live_fraction: float = 0.5
    timeout_s: float = 0.5

    def __post_init__(self) -> None:
        if self.window_length < 1:
            raise ValueError(f'window_length must be at least 1, not {self.window_length}')
        if not 1 <= self.min_valid_pairs <= self.window_length:
            raise ValueError(
                f'min_valid_pairs must be in 1..window_length ({self.window_length}), '
                f'not {self.min_valid_pairs}'
            )
        if not -math.inf < self.exit_margin <= self.enter_margin < math.inf:
            raise ValueError(f'need finite exit_margin ({self.exit_margin}) <= '
                             f'enter_margin ({self.enter_margin})')
        if not 0.0 <= self.min_live_fraction <= 1.0:
            raise ValueError(f'min_live_fraction must be in [0, 1], not {self.min_live_fraction}')
        if self.min_live_fraction <= 0.0 and self.exit_margin <= 0.0:
            raise ValueError(
                f'min_live_fraction {self.min_live_fraction:g} with exit_margin '
                f'{self.exit_margin:g} lets pairs that are all SPOOF by the model\'s threshold '
                'fuse to LIVE: raise min_live_fraction or exit_margin above 0'
            )
        if not self.timeout_s > 0.0:
            raise ValueError(f'timeout_s must be positive, not {self.timeout_s}')


@dataclass(frozen=True)
class FusedDecision:
    """Output of the fusion for one step."""

    decision: Decision
    reason: Reason
    #: The probability at the valid pairs' mean logit (compare with the model's threshold);
    #: NaN if none.
    fused_score: float
    #: Mean margin of the valid pairs over the model's threshold, in logits; NaN if none.
    margin: float
    live_pairs: int  # valid pairs LIVE by the model's threshold
    valid_pairs: int
    window_pairs: int

    @property
    def reason_text(self) -> str:
        """Short human-readable explanation for LivenessResult.reason_text."""
        counts = f'{self.valid_pairs}/{self.window_pairs} valid pairs'
        name = (self.decision if self.reason == Reason.NONE else self.reason).name.lower()
        if self.reason not in (Reason.NONE, Reason.UNCERTAIN):
            return f'{name}: {counts}'
        return (f'{name}: fused score {self.fused_score:.3f} (margin {self.margin:+.2f}), '
                f'{counts}, {self.live_pairs} live')


class DecisionFusion:
    """Sliding-window vote with hysteresis over per-pair outcomes (see module docstring)."""

    def __init__(self, config: FusionConfig | None = None, threshold: float = 0.5) -> None:
        """Fuse pairs for a model whose per-pair ``threshold`` (its metadata's) says LIVE."""
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f'threshold {threshold} outside [0, 1]')
        self.config = config or FusionConfig()
        self.threshold = threshold
        self._threshold_logit = logit(threshold)
        self._window: deque[tuple[float, PairOutcome]] = deque(maxlen=self.config.window_length)
        self._last = Decision.UNKNOWN

    def reset(self) -> None:
        """Forget every pair: the next decisions warm up again."""
        self._window.clear()
        self._last = Decision.UNKNOWN

    def update(self, outcome: PairOutcome, now_s: float) -> FusedDecision:
        """Add the pair that arrived at ``now_s`` (seconds of the caller's clock) and decide."""
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
        return FusedDecision(Decision.UNKNOWN, reason, math.nan, math.nan, 0, 0,
                             len(self._window))

    def _forget_older_than(self, now_s: float) -> None:
        if self._window and now_s < self._window[-1][0]:
            self.reset()  # the clock went back (a replay restarted): its pairs are no evidence
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
        live = sum(score >= self.threshold for score in scores)
        # per pair first: the mean of margins that are all <= 0 is <= 0 even in floating point
        margins = [logit(score) - self._threshold_logit for score in scores]
        margin = sum(margins) / len(margins) if margins else math.nan
        fused = sigmoid(self._threshold_logit + margin) if margins else math.nan
        config = self.config
        voted_live = live >= config.min_live_fraction * len(scores)
        if not current.valid:
            decision, reason = Decision.UNKNOWN, current.reason
        elif len(scores) < config.min_valid_pairs:
            decision = Decision.UNKNOWN
            reason = self._dominant_invalid_reason() or Reason.WARMING_UP
        elif margin < config.exit_margin:
            decision, reason = Decision.SPOOF, Reason.NONE
        elif voted_live and (margin >= config.enter_margin or self._last == Decision.LIVE):
            decision, reason = Decision.LIVE, Reason.NONE
        else:
            decision, reason = Decision.UNKNOWN, Reason.UNCERTAIN
        self._last = decision
        return FusedDecision(decision, reason, fused, margin, live, len(scores),
                             len(self._window))
