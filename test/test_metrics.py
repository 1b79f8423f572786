"""Exact, hand-counted checks of the ISO/IEC 30107-3 metrics, plus properties over random data."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from antispoof_ros.offline.evaluation.metrics import (
    Presentations,
    attack_type,
    bpcer_at_apcer,
    candidate_thresholds,
    choose_threshold,
    det_curve,
    equal_error_rate,
    error_rates,
    evaluate_at_threshold,
    parse_threshold_target,
)

# Ten presentations whose errors can be counted by hand (threshold 0.5, >= means bona fide):
# live  0.9 0.8 0.7 | 0.45          -> 1 of 4 rejected: BPCER 1/4
# print 0.1 0.3     | 0.6           -> 1 of 3 accepted: APCER 1/3
# mask  0.2         | 0.5 0.55      -> 2 of 3 accepted (0.5 is a tie): APCER 2/3
SCORES = [0.9, 0.8, 0.7, 0.45, 0.1, 0.3, 0.6, 0.2, 0.5, 0.55]
LABELS = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
SPECIES = ['live'] * 4 + ['print'] * 3 + ['mask'] * 3


def test_hand_counted_rates_at_threshold():
    result = evaluate_at_threshold(SCORES, LABELS, SPECIES, 0.5)
    assert result.bona_fide_count == 4
    assert result.attack_counts == {'mask': 3, 'print': 3}
    assert result.apcer == {'mask': 2 / 3, 'print': 1 / 3}
    assert result.apcer_max == 2 / 3
    assert result.worst_species == 'mask'
    assert result.bpcer == 1 / 4
    assert result.acer == pytest.approx((2 / 3 + 1 / 4) / 2)
    assert result.accuracy == {'live': 3 / 4, 'print': 2 / 3, 'mask': 1 / 3, 'overall': 6 / 10}
    assert result.notes == ()


def test_hand_counted_det_curve():
    curve = det_curve(Presentations(SCORES, LABELS, SPECIES))
    expected_thresholds = [0.1, 0.15, 0.25, 0.375, 0.475, 0.525, 0.575, 0.65, 0.75, 0.85]
    assert curve.thresholds[:-1] == pytest.approx(expected_thresholds)
    assert curve.thresholds[-1] > 0.9
    assert list(curve.bpcer) == [0, 0, 0, 0, 1 / 4, 1 / 4, 1 / 4, 1 / 4, 2 / 4, 3 / 4, 1]
    assert list(curve.apcer_by_species['print']) == [1, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 1 / 3,
                                                     1 / 3, 0, 0, 0, 0]
    assert list(curve.apcer_by_species['mask']) == [1, 1, 2 / 3, 2 / 3, 2 / 3, 1 / 3, 0, 0,
                                                    0, 0, 0]
    assert list(curve.apcer_max) == [1, 1, 2 / 3, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0, 0, 0, 0]
    assert list(curve.apcer_pooled) == [1, 5 / 6, 4 / 6, 3 / 6, 3 / 6, 2 / 6, 1 / 6, 0, 0, 0, 0]


def test_hand_counted_bpcer20_bpcer100_and_eer():
    result = evaluate_at_threshold(SCORES, LABELS, SPECIES, 0.5)
    # the first threshold with max APCER <= 5 % (and <= 1 %) is 0.65, where 0.45 is rejected
    assert result.bpcer20 == 1 / 4
    assert result.bpcer100 == 1 / 4
    # |max APCER - BPCER| is smallest (1/12) first at 0.525: APCER 1/3, BPCER 1/4
    assert result.eer == pytest.approx((1 / 3 + 1 / 4) / 2)
    eer, point = equal_error_rate(det_curve(Presentations(SCORES, LABELS, SPECIES)))
    assert point.threshold == pytest.approx(0.525)
    assert (point.apcer_max, point.bpcer) == (1 / 3, 1 / 4)


def test_choose_threshold_targets():
    bpcer20 = choose_threshold(SCORES, LABELS, SPECIES, 'bpcer20')
    assert bpcer20.target == 'bpcer20'
    assert bpcer20.threshold == pytest.approx(0.65)
    assert (bpcer20.validation.apcer_max, bpcer20.validation.bpcer) == (0, 1 / 4)
    assert 'APCER <= 5%' in bpcer20.describe()
    eer = choose_threshold(SCORES, LABELS, SPECIES, 'eer')
    assert (eer.target, eer.threshold) == ('eer', pytest.approx(0.525))
    fixed = choose_threshold(SCORES, LABELS, SPECIES, 0.5)
    assert (fixed.target, fixed.threshold) == ('fixed', 0.5)
    assert (fixed.validation.apcer_max, fixed.validation.bpcer) == (2 / 3, 1 / 4)
    with pytest.raises(ValueError, match='unknown threshold target'):
        choose_threshold(SCORES, LABELS, SPECIES, 'bpcer50')


def test_centre100_is_the_logit_middle_of_the_band_meeting_both_limits():
    # attacks score at most 0.2, live at least 0.9: every threshold in (0.2, 0.9] meets both
    # limits; its middle on the logit scale: (log(1/4) + log(9)) / 2 = log(1.5) -> 0.6
    scores = [0.01, 0.1, 0.2, 0.9, 0.95, 0.99]
    labels = [0, 0, 0, 1, 1, 1]
    species = ['print', 'mask', 'print', 'live', 'live', 'live']
    choice = choose_threshold(scores, labels, species, 'centre100')
    assert choice.target == 'centre100'
    assert choice.threshold == pytest.approx(0.6)
    assert (choice.validation.apcer_max, choice.validation.bpcer) == (0, 0)
    assert 'middle (logit scale)' in choice.describe()
    # no threshold holds both rates <= 1 %: the BPCER100 point instead, and said so
    fallback = choose_threshold(SCORES, LABELS, SPECIES, 'centre100')
    assert fallback.target == 'bpcer100'
    assert fallback.threshold == pytest.approx(0.65)


def test_tie_at_threshold_is_bona_fide():
    result = evaluate_at_threshold([0.5, 0.5], [1, 0], ['live', 'print'], 0.5)
    assert (result.bpcer, result.apcer['print']) == (0, 1)


def test_finer_species_keep_their_apcer_and_pool_into_the_attack_type_accuracy():
    result = evaluate_at_threshold(
        [0.9, 0.6, 0.1, 0.2, 0.3], [1, 0, 0, 0, 0],
        ['live', 'print_nir', 'print_nir', 'print_paper', 'mask'], 0.5,
    )
    assert result.apcer == {'mask': 0, 'print_nir': 1 / 2, 'print_paper': 0}
    assert result.worst_species == 'print_nir'
    assert result.accuracy == {'live': 1, 'print': 2 / 3, 'mask': 1, 'overall': 4 / 5}
    assert attack_type('print_nir') == 'print'


def test_missing_species_is_nan_with_a_note_not_zero():
    result = evaluate_at_threshold([0.9, 0.2, 0.6], [1, 0, 0], ['live', 'print', 'print'], 0.5)
    assert math.isnan(result.apcer['mask']) and math.isnan(result.accuracy['mask'])
    assert result.attack_counts['mask'] == 0
    assert result.apcer_max == 1 / 2 and result.worst_species == 'print'
    assert any("'mask'" in note for note in result.notes)


def test_no_bona_fide_presentations_gives_nan_bpcer():
    result = evaluate_at_threshold([0.2, 0.6], [0, 0], ['print', 'mask'], 0.5)
    for value in (result.bpcer, result.acer, result.bpcer20, result.bpcer100, result.eer,
                  result.accuracy['live']):
        assert math.isnan(value)
    assert result.apcer_max == 1
    assert any('no bona fide' in note for note in result.notes)
    assert result.to_dict()['bpcer'] is None


def test_no_attack_presentations_gives_nan_apcer():
    result = evaluate_at_threshold([0.9, 0.4], [1, 1], ['live', 'live'], 0.5)
    assert math.isnan(result.apcer_max) and result.worst_species is None
    assert result.bpcer == 1 / 2
    assert any('no attack presentations:' in note for note in result.notes)


@pytest.mark.parametrize(
    ('scores', 'labels', 'species', 'message'),
    [
        ([0.1, 0.2], [0, 2], ['print', 'live'], 'labels must be 0'),
        ([0.1, 0.2], ['0', '1'], ['print', 'live'], 'labels must be 0'),
        ([0.1, 0.2], [0, 1], ['print', 'print'], "species must be 'live'"),
        ([0.1, 0.2], [0, 1], ['live', 'live'], "species must be 'live'"),
        ([0.1, math.nan], [0, 1], ['print', 'live'], 'NaN or infinite'),
        ([0.1], [0, 1], ['print', 'live'], 'differ in length'),
        ([], [], [], 'no presentations'),
        (['a', 'b'], [0, 1], ['print', 'live'], 'must be numbers'),
        ([0.1, 0.2], [0, 1], ['', 'live'], 'empty species'),
    ],
)
def test_bad_presentations_are_refused(scores, labels, species, message):
    with pytest.raises(ValueError, match=message):
        Presentations(scores, labels, species)


def test_threshold_must_be_finite():
    with pytest.raises(ValueError, match='not a finite number'):
        evaluate_at_threshold(SCORES, LABELS, SPECIES, math.nan)


def test_parse_threshold_target():
    assert parse_threshold_target('BPCER20') == 'bpcer20'
    assert parse_threshold_target(' eer ') == 'eer'
    assert parse_threshold_target('0.25') == 0.25
    for bad in ('1.5', 'fast', 'nan'):
        with pytest.raises(ValueError, match='neither'):
            parse_threshold_target(bad)


def test_candidate_thresholds_separate_neighbouring_floats():
    low = 0.5
    high = np.nextafter(low, 1.0)
    thresholds = candidate_thresholds(np.array([low, high]))
    assert list(thresholds[:2]) == [low, high]
    assert thresholds[2] > high


# ---------------------------------------------------------------- properties over random data

SCORE_VALUES = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),
                         st.floats(0.0, 1.0, allow_nan=False))


@st.composite
def presentations(draw) -> Presentations:
    """Random scored presentations with at least one bona fide and one attack presentation."""
    species = draw(st.lists(st.sampled_from(['live', 'print', 'mask', 'print_nir']),
                            min_size=0, max_size=30))
    species = ['live', draw(st.sampled_from(['print', 'mask'])), *species]
    scores = draw(st.lists(SCORE_VALUES, min_size=len(species), max_size=len(species)))
    labels = [int(name == 'live') for name in species]
    return Presentations(scores, labels, species)


def _brute_force(data: Presentations, threshold: float) -> tuple[float, float]:
    """Max APCER and BPCER counted one presentation at a time, independent of the module."""
    accepted = {}
    for score, name in zip(data.scores.tolist(), data.species.tolist(), strict=True):
        accepted.setdefault(name, []).append(score >= threshold)
    live = accepted.pop('live')
    bpcer = sum(not flag for flag in live) / len(live)
    return max(sum(flags) / len(flags) for flags in accepted.values()), bpcer


@settings(max_examples=60, deadline=None)
@given(presentations())
def test_det_curve_is_monotone_from_accept_all_to_reject_all(data):
    curve = det_curve(data)
    assert np.all(np.diff(curve.thresholds) > 0)
    assert np.all(np.diff(curve.bpcer) >= 0)
    for apcer in (*curve.apcer_by_species.values(), curve.apcer_pooled, curve.apcer_max):
        assert np.all(np.diff(apcer) <= 0)
        assert (apcer[0], apcer[-1]) == (1, 0)
    assert (curve.bpcer[0], curve.bpcer[-1]) == (0, 1)


@settings(max_examples=60, deadline=None)
@given(presentations())
def test_det_curve_matches_one_by_one_counting(data):
    curve = det_curve(data)
    for index, threshold in enumerate(curve.thresholds):
        assert _brute_force(data, threshold) == (curve.apcer_max[index], curve.bpcer[index])


@settings(max_examples=60, deadline=None)
@given(presentations(), st.sampled_from(['bpcer20', 'bpcer100']))
def test_chosen_threshold_meets_the_apcer_limit_with_the_lowest_bpcer(data, target):
    limit = {'bpcer20': 0.05, 'bpcer100': 0.01}[target]
    choice = choose_threshold(data.scores, data.labels, data.species, target)
    result = evaluate_at_threshold(data.scores, data.labels, data.species, choice.threshold)
    assert result.apcer_max <= limit
    assert result.bpcer == getattr(result, target) == choice.validation.bpcer
    for threshold in candidate_thresholds(data.scores):
        apcer_max, bpcer = _brute_force(data, threshold)
        if apcer_max <= limit:
            assert bpcer >= result.bpcer


@settings(max_examples=60, deadline=None)
@given(presentations())
def test_bpcer20_against_bpcer_at_the_eer(data):
    curve = det_curve(data)
    eer, point = equal_error_rate(curve)
    bpcer20 = bpcer_at_apcer(curve, 0.05).bpcer
    # above 5 % APCER at the EER, reaching 5 % needs a higher threshold: BPCER can only grow
    if point.apcer_max > 0.05:
        assert bpcer20 >= point.bpcer
    else:
        assert bpcer20 <= point.bpcer
    assert min(point.apcer_max, point.bpcer) <= eer <= max(point.apcer_max, point.bpcer)


@settings(max_examples=60, deadline=None)
@given(presentations(), SCORE_VALUES)
def test_summary_figures_are_consistent(data, threshold):
    result = evaluate_at_threshold(data.scores, data.labels, data.species, threshold)
    apcer_max, bpcer = _brute_force(data, threshold)
    assert (result.apcer_max, result.bpcer) == (apcer_max, bpcer)
    assert result.acer == (apcer_max + bpcer) / 2
    assert result.accuracy['live'] == pytest.approx(1 - bpcer)
    types = [attack_type(name) for name in data.species.tolist()]
    weights = {name: types.count(name) for name in result.accuracy.keys() - {'overall'}}
    pooled = sum(result.accuracy[name] * count for name, count in weights.items() if count)
    assert result.accuracy['overall'] == pytest.approx(pooled / len(data.scores))
    point = error_rates(data, np.array([threshold]))
    assert (point.apcer_max[0], point.bpcer[0]) == (apcer_max, bpcer)


@settings(max_examples=40, deadline=None)
@given(presentations())
def test_rates_depend_only_on_score_order(data):
    doubled = Presentations(data.scores * 2, data.labels, data.species)
    original, scaled = det_curve(data), det_curve(doubled)
    assert np.array_equal(original.apcer_max, scaled.apcer_max)
    assert np.array_equal(original.bpcer, scaled.bpcer)
