"""Per-pair and fused decisions: fail closed, vote, hysteresis, decay, timeout and recovery."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from antispoof_ros.liveness.decision import (
    REASON_FOR_DROP,
    Decision,
    DecisionFusion,
    FusionConfig,
    PairOutcome,
    Reason,
    logit,
    pair_decision,
)
from antispoof_ros.liveness.pairing import DropReason
from antispoof_ros.msg import LivenessResult

PERIOD_S = 1 / 30  # one pair per flash cycle at 120 Hz
CONFIG = FusionConfig(window_length=6, min_valid_pairs=4, enter_margin=1.0, exit_margin=0.0,
                      min_live_fraction=0.5, timeout_s=0.5)
THRESHOLD = 0.5  # margins are plain logits: 0.73 is +1


class Stream:
    """Feeds outcomes one flash cycle apart and records the fused decisions."""

    def __init__(self, config: FusionConfig = CONFIG) -> None:
        self.fusion = DecisionFusion(config, THRESHOLD)
        self.now_s = 100.0

    def feed(self, *outcomes: PairOutcome):
        results = []
        for outcome in outcomes:
            self.now_s += PERIOD_S
            results.append(self.fusion.update(outcome, self.now_s))
        return results

    def scores(self, *scores: float):
        return self.feed(*(PairOutcome.scored(s) for s in scores))


def decisions(results) -> list[Decision]:
    return [r.decision for r in results]


def test_codes_equal_the_message_constants() -> None:
    for decision in Decision:
        assert getattr(LivenessResult, f'DECISION_{decision.name}') == decision
    for reason in Reason:
        assert getattr(LivenessResult, f'REASON_{reason.name}') == reason
    assert set(REASON_FOR_DROP) == set(DropReason)


def test_pair_decision_uses_the_threshold_and_never_calls_nan_live() -> None:
    assert pair_decision(PairOutcome.scored(0.6), 0.6) == Decision.LIVE
    assert pair_decision(PairOutcome.scored(0.59), 0.6) == Decision.SPOOF
    for bad in (math.nan, math.inf, -math.inf, 1.5, -0.1):
        outcome = PairOutcome.scored(bad)
        assert outcome.reason == Reason.MODEL_ERROR
        assert pair_decision(outcome, 0.0) == Decision.UNKNOWN
    assert pair_decision(PairOutcome.dropped(DropReason.NO_FACE), 0.0) == Decision.UNKNOWN


def test_warms_up_before_deciding() -> None:
    results = Stream().scores(0.9, 0.9, 0.9, 0.9)
    assert decisions(results) == [Decision.UNKNOWN] * 3 + [Decision.LIVE]
    assert {r.reason for r in results[:3]} == {Reason.WARMING_UP}
    assert results[3].reason == Reason.NONE and results[3].fused_score == pytest.approx(0.9)


@pytest.mark.parametrize(
    ('fault', 'reason'),
    [
        (PairOutcome.scored(math.nan), Reason.MODEL_ERROR),
        (PairOutcome.dropped(DropReason.CORNERS_MISSING), Reason.LANDMARKS_STALE),
        (PairOutcome.dropped(DropReason.CORNERS_STALE), Reason.LANDMARKS_STALE),
        (PairOutcome.dropped(DropReason.NO_FACE), Reason.NO_FACE),
        (PairOutcome.dropped(DropReason.BAD_INPUT), Reason.BAD_INPUT),
        (PairOutcome.dropped(DropReason.NOT_CONSECUTIVE), Reason.MISSING_PHASE),
    ],
)
def test_an_invalid_pair_is_never_live(fault: PairOutcome, reason: Reason) -> None:
    stream = Stream()
    assert decisions(stream.scores(*[0.99] * 6))[-1] == Decision.LIVE
    (result,) = stream.feed(fault)
    assert (result.decision, result.reason) == (Decision.UNKNOWN, reason)
    assert reason.name.lower() in result.reason_text


def test_degraded_stream_decays_to_unknown_and_never_says_live() -> None:
    stream = Stream()
    stream.scores(*[0.99] * 6)
    stale = PairOutcome.dropped(DropReason.CORNERS_STALE)
    # two invalid pairs for each valid one: at most 2 valid in a window of 6
    results = stream.feed(*[stale, stale, PairOutcome.scored(0.99)] * 8)
    # once the good pairs from before have left the window (3 steps), never LIVE again
    assert Decision.LIVE not in decisions(results[3:])
    assert {r.reason for r in results[3:]} == {Reason.LANDMARKS_STALE}


def test_all_live_scores_among_nan_outputs_stay_unknown() -> None:
    results = Stream().feed(*[PairOutcome.scored(1.0), PairOutcome.scored(math.nan)] * 10)
    assert set(decisions(results)) == {Decision.UNKNOWN}
    assert results[-2].reason == Reason.MODEL_ERROR  # the valid step explains the window


def test_hysteresis_holds_live_between_the_margins() -> None:
    stream = Stream()
    assert decisions(stream.scores(*[0.8] * 4))[-1] == Decision.LIVE
    # 0.6 (margin +0.41) lies between exit (0) and enter (+1): LIVE holds
    assert set(decisions(stream.scores(*[0.6] * 6))) == {Decision.LIVE}
    assert decisions(stream.scores(0.2, 0.2)) == [Decision.LIVE, Decision.SPOOF]
    # back in the band from SPOOF: uncertain, not LIVE
    results = stream.scores(*[0.6] * 6)
    assert decisions(results)[-1] == Decision.UNKNOWN
    assert results[-1].reason == Reason.UNCERTAIN


def test_live_needs_most_pairs_live_by_the_threshold() -> None:
    stream = Stream()
    assert decisions(stream.scores(*[0.99] * 6))[-1] == Decision.LIVE
    # pairs just below the threshold: the strong pairs before keep the mean margin positive,
    # but LIVE ends once fewer than half the window's pairs are LIVE
    results = stream.scores(*[0.45] * 6)
    assert decisions(results) == [Decision.LIVE] * 3 + [Decision.UNKNOWN] * 2 + [Decision.SPOOF]
    assert results[3].reason == Reason.UNCERTAIN and results[3].margin > 0
    assert (results[3].live_pairs, results[3].valid_pairs) == (2, 6)
    assert results[-1].margin == pytest.approx(logit(0.45))


def test_margins_are_relative_to_the_model_threshold() -> None:
    fusion = DecisionFusion(CONFIG, threshold=0.9)
    results = [fusion.update(PairOutcome.scored(0.95), i * PERIOD_S) for i in range(4)]
    assert results[-1].decision == Decision.UNKNOWN  # margin +0.75: LIVE, not by +1
    assert results[-1].margin == pytest.approx(logit(0.95) - logit(0.9))
    assert results[-1].reason == Reason.UNCERTAIN and 'margin +0.75' in results[-1].reason_text
    results = [fusion.update(PairOutcome.scored(0.85), 1 + i * PERIOD_S) for i in range(6)]
    assert results[-1].decision == Decision.SPOOF  # 0.85 would be LIVE for threshold 0.5


def test_saturated_probabilities_have_finite_margins() -> None:
    results = Stream().scores(1.0, 1.0, 0.0, 1.0, 1.0)
    assert all(math.isfinite(r.margin) for r in results)
    assert results[-1].decision == Decision.LIVE and results[-1].live_pairs == 4


def test_spoof_is_decided_and_recovers_to_live() -> None:
    stream = Stream()
    assert decisions(stream.scores(*[0.1] * 6))[3:] == [Decision.SPOOF] * 3
    results = stream.scores(*[0.95] * 6)
    assert decisions(results)[-1] == Decision.LIVE
    assert results[-1].fused_score == pytest.approx(0.95)


def test_recovers_after_a_degraded_stretch() -> None:
    stream = Stream()
    stream.feed(*[PairOutcome.dropped(DropReason.NO_FACE)] * 10)
    results = stream.scores(*[0.9] * 6)
    assert decisions(results) == [Decision.UNKNOWN] * 3 + [Decision.LIVE] * 3
    assert results[0].reason == Reason.NO_FACE  # the window still holds the faceless pairs


def test_timeout_expires_live_and_restarts_warm_up() -> None:
    stream = Stream()
    stream.scores(*[0.9] * 6)
    assert stream.fusion.expire(stream.now_s + 0.1) is None  # recent valid pairs
    expired = stream.fusion.expire(stream.now_s + CONFIG.timeout_s + 0.01)
    assert expired is not None
    assert (expired.decision, expired.reason) == (Decision.UNKNOWN, Reason.MISSING_PHASE)
    stream.now_s += 2.0
    results = stream.scores(0.9)
    assert (results[0].decision, results[0].reason) == (Decision.UNKNOWN, Reason.WARMING_UP)
    assert results[0].window_pairs == 1


def test_a_clock_going_back_starts_the_window_afresh() -> None:
    stream = Stream()
    stream.scores(*[0.9] * 6)
    stream.now_s -= 10.0  # a replayed bag started over
    results = stream.scores(0.9)
    assert (results[0].decision, results[0].reason) == (Decision.UNKNOWN, Reason.WARMING_UP)
    assert results[0].window_pairs == 1


def test_reset_forgets_everything() -> None:
    stream = Stream()
    stream.scores(*[0.9] * 6)
    stream.fusion.reset()
    assert decisions(stream.scores(0.9)) == [Decision.UNKNOWN]


@pytest.mark.parametrize(
    'kwargs',
    [
        {'window_length': 0},
        {'min_valid_pairs': 0},
        {'window_length': 3, 'min_valid_pairs': 4},
        {'enter_margin': 0.4, 'exit_margin': 0.5},
        {'enter_margin': math.inf},
        {'exit_margin': math.nan},
        {'min_live_fraction': 1.2},
        {'timeout_s': 0.0},
    ],
)
def test_inconsistent_configuration_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        FusionConfig(**kwargs)


def test_a_threshold_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match='threshold'):
        DecisionFusion(CONFIG, threshold=1.5)


def test_invalid_outcome_needs_a_reason() -> None:
    with pytest.raises(ValueError, match='reason'):
        PairOutcome.invalid(Reason.NONE)


OUTCOMES = st.one_of(
    st.floats(0.0, 1.0).map(PairOutcome.scored),
    st.floats(0.8, 1.0).map(PairOutcome.scored),  # runs of live-looking pairs
    st.sampled_from([math.nan, math.inf]).map(PairOutcome.scored),
    st.sampled_from(list(DropReason)).map(PairOutcome.dropped),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(OUTCOMES, st.floats(0.0, 0.2)), max_size=40))
def test_live_only_on_a_valid_pair_with_a_full_and_confident_window(steps) -> None:
    fusion, now_s, window = DecisionFusion(CONFIG, THRESHOLD), 0.0, []
    for outcome, gap_s in steps:
        now_s += gap_s
        result = fusion.update(outcome, now_s)
        window = [(t, o) for t, o in window if t >= now_s - CONFIG.timeout_s][-5:]
        window.append((now_s, outcome))
        valid = [o.score for _, o in window if o.valid]
        assert (result.reason == Reason.NONE) == (result.decision != Decision.UNKNOWN)
        if result.decision == Decision.LIVE:
            assert outcome.valid and len(valid) >= CONFIG.min_valid_pairs
            assert sum(s >= THRESHOLD for s in valid) >= CONFIG.min_live_fraction * len(valid)
            assert sum(map(logit, valid)) / len(valid) >= CONFIG.exit_margin - 1e-9
