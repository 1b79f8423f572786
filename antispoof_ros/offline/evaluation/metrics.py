"""Presentation-attack detection error rates in the ISO/IEC 30107-3 vocabulary.

A *bona fide presentation* is a live face (label 1, PAI species ``'live'``); an *attack
presentation* shows a presentation attack instrument (PAI) of some *PAI species*, such as
``'print'``, ``'mask'`` or a finer ``'print_nir'`` (label 0). A score is the model's probability
that the face is live. Decision rule: ``score >= threshold`` classifies a presentation as bona
fide, so a score exactly at the threshold counts as bona fide.

- APCER of a PAI species: proportion of the attack presentations of that species classified as
  bona fide. ISO/IEC 30107-3 reports it per species and takes the maximum (worst species) as
  the headline APCER; BPCER20/BPCER100 and the EER here use that maximum too.
- BPCER: proportion of bona fide presentations classified as attack presentations.
- ACER = (max APCER + BPCER) / 2. Reported because the project asks for it, but ISO/IEC
  30107-3:2023 deprecates it: it averages two errors whose costs differ.
- BPCER20 / BPCER100: the BPCER at the lowest threshold where max APCER <= 5 % / 1 %, i.e. the
  best BPCER the data allows at that attack security level.
- EER: the error rate where max APCER and BPCER meet.

Operating points for a shipped model are chosen on validation data and applied unchanged to test
data. ``centre100`` (the default) takes the middle, on the logit scale, of the band of thresholds
where every species' APCER <= 1 % and BPCER <= 1 % on validation: the BPCER100 point sits on the
edge of that band, right at the highest-scoring validation attack, so a new subject's attack that
scores a little higher already passes; the centre keeps the most room on both sides.

A rate with nothing to count (no presentations of a species, no bona fide presentations) is NaN
and the evaluation carries a note saying why, never a silent 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
import math
from typing import Any

import numpy as np

BONA_FIDE_LABEL = 1
ATTACK_LABEL = 0
BONA_FIDE_SPECIES = 'live'
DEFAULT_ATTACK_TYPES = ('print', 'mask')
APCER_LIMITS = {'bpcer20': 0.05, 'bpcer100': 0.01}
# Both error rates at most this in the band whose centre is the 'centre100' operating point.
BAND_LIMIT = 0.01
THRESHOLD_TARGETS = (*APCER_LIMITS, 'centre100', 'eer')
# The project's operating point: every PAI species APCER <= 1 % at BPCER <= 1 %, with the most
# room the validation data leaves on both sides.
DEFAULT_THRESHOLD_TARGET = 'centre100'
# Scores are clipped this far from 0 and 1 before taking logits (float32 sigmoids saturate).
_LOGIT_EPSILON = 1e-12


def attack_type(species: str) -> str:
    """Coarse attack type of a PAI species, ``'print_nir'`` -> ``'print'`` (thesis table 4.1)."""
    return species.split('_', 1)[0]


@dataclass(frozen=True, eq=False)
class Presentations:
    """Scored presentations, validated: scores finite, labels 0/1, species consistent with labels.

    ``species`` is ``'live'`` exactly for bona fide presentations (label 1) and names the PAI
    species of each attack presentation (label 0).
    """

    scores: np.ndarray
    labels: np.ndarray
    species: np.ndarray

    def __post_init__(self) -> None:
        try:
            scores = np.asarray(self.scores, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError('scores must be numbers') from None
        labels = np.asarray(self.labels)
        species = np.asarray(self.species).astype(str)
        if scores.ndim != 1 or labels.ndim != 1 or species.ndim != 1:
            raise ValueError('scores, labels and species must be 1-D')
        if not len(scores) == len(labels) == len(species):
            raise ValueError(f'scores, labels and species differ in length '
                             f'({len(scores)}, {len(labels)}, {len(species)})')
        if len(scores) == 0:
            raise ValueError('no presentations to evaluate')
        if not np.all(np.isfinite(scores)):
            raise ValueError(f'{int(np.sum(~np.isfinite(scores)))} scores are NaN or infinite')
        valid_label = (np.isin(labels, (ATTACK_LABEL, BONA_FIDE_LABEL))
                       if labels.dtype.kind in 'biuf' else np.zeros(len(labels), dtype=bool))
        if not np.all(valid_label):
            bad = sorted({str(v) for v in labels[~valid_label]})[:5]
            raise ValueError(f'labels must be 0 (attack) or 1 (bona fide), found {", ".join(bad)}')
        labels = labels.astype(np.int8)
        mismatch = (labels == BONA_FIDE_LABEL) != (species == BONA_FIDE_SPECIES)
        if np.any(mismatch):
            index = int(np.argmax(mismatch))
            raise ValueError(
                f"species must be '{BONA_FIDE_SPECIES}' exactly for label {BONA_FIDE_LABEL}: "
                f"row {index} has label {labels[index]} and species '{species[index]}'")
        if np.any(species == ''):
            raise ValueError(f'row {int(np.argmax(species == ""))} has an empty species')
        for name, value in (('scores', scores), ('labels', labels), ('species', species)):
            object.__setattr__(self, name, value)

    @property
    def bona_fide_scores(self) -> np.ndarray:
        """Scores of the bona fide presentations."""
        return self.scores[self.labels == BONA_FIDE_LABEL]

    @property
    def attack_species(self) -> tuple[str, ...]:
        """PAI species present, sorted."""
        return tuple(sorted(set(self.species[self.labels == ATTACK_LABEL].tolist())))

    def attack_scores(self, species: str) -> np.ndarray:
        """Scores of the attack presentations of one PAI species."""
        return self.scores[(self.labels == ATTACK_LABEL) & (self.species == species)]


def _share_classified(sorted_scores: np.ndarray, thresholds: np.ndarray,
                      as_bona_fide: bool) -> np.ndarray:
    """Share of scores classified bona fide (>= threshold) or attack (< threshold) at each one.

    Counted, then divided once, so rates are exact fractions; NaN when there are no scores.
    """
    if len(sorted_scores) == 0:
        return np.full(len(thresholds), np.nan)
    below = np.searchsorted(sorted_scores, thresholds, side='left')
    return (len(sorted_scores) - below if as_bona_fide else below) / len(sorted_scores)


def candidate_thresholds(scores: np.ndarray) -> np.ndarray:
    """Every threshold that splits ``scores`` differently, ascending.

    The first accepts everything, the last (just above the highest score) rejects everything,
    the others lie midway between neighbouring distinct scores, so a threshold chosen on
    validation data does not sit exactly on one validation sample's score.
    """
    distinct = np.unique(np.asarray(scores, dtype=np.float64))
    lower, upper = distinct[:-1], distinct[1:]
    midpoints = lower + (upper - lower) / 2
    midpoints = np.where(midpoints > lower, midpoints, upper)  # neighbouring floats
    return np.concatenate(([distinct[0]], midpoints, [np.nextafter(distinct[-1], np.inf)]))


@dataclass(frozen=True, eq=False)
class DetCurve:
    """APCER per PAI species and BPCER at each candidate threshold (ascending thresholds)."""

    thresholds: np.ndarray
    bpcer: np.ndarray
    apcer_by_species: dict[str, np.ndarray]
    apcer_pooled: np.ndarray

    @property
    def apcer_max(self) -> np.ndarray:
        """APCER of the worst PAI species at each threshold."""
        return np.max(np.stack(list(self.apcer_by_species.values())), axis=0)


def error_rates(presentations: Presentations, thresholds: np.ndarray) -> DetCurve:
    """APCER per PAI species, pooled APCER and BPCER at the given ascending thresholds.

    Needs bona fide and attack presentations: without both there is no curve to draw.
    """
    bona_fide = np.sort(presentations.bona_fide_scores)
    species = presentations.attack_species
    if len(bona_fide) == 0 or not species:
        raise ValueError('error rates need both bona fide and attack presentations')
    thresholds = np.asarray(thresholds, dtype=np.float64)
    attacks = np.sort(presentations.scores[presentations.labels == ATTACK_LABEL])
    return DetCurve(
        thresholds=thresholds,
        bpcer=_share_classified(bona_fide, thresholds, as_bona_fide=False),
        apcer_by_species={name: _share_classified(np.sort(presentations.attack_scores(name)),
                                                  thresholds, as_bona_fide=True)
                          for name in species},
        apcer_pooled=_share_classified(attacks, thresholds, as_bona_fide=True),
    )


def det_curve(presentations: Presentations) -> DetCurve:
    """APCER and BPCER at every threshold that splits the presentations differently."""
    return error_rates(presentations, candidate_thresholds(presentations.scores))


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold with the max APCER and BPCER it gives on the data it was read from."""

    threshold: float
    apcer_max: float
    bpcer: float


def _point(curve: DetCurve, index: int) -> OperatingPoint:
    return OperatingPoint(float(curve.thresholds[index]), float(curve.apcer_max[index]),
                          float(curve.bpcer[index]))


def bpcer_at_apcer(curve: DetCurve, apcer_limit: float) -> OperatingPoint:
    """Lowest threshold whose max APCER <= ``apcer_limit``: there BPCER is the lowest it can be.

    Max APCER never rises and BPCER never falls as the threshold rises, so the first
    threshold meeting the limit is the best one. The last threshold rejects every
    presentation, so the limit can always be met.
    """
    if not 0.0 <= apcer_limit <= 1.0:
        raise ValueError(f'APCER limit {apcer_limit} outside [0, 1]')
    return _point(curve, int(np.argmax(curve.apcer_max <= apcer_limit)))


def _logit(probability: float) -> float:
    clipped = min(max(probability, _LOGIT_EPSILON), 1.0 - _LOGIT_EPSILON)
    return math.log(clipped / (1.0 - clipped))


def band_centre(presentations: Presentations, limit: float = BAND_LIMIT) -> OperatingPoint | None:
    """Middle (logit scale) of the thresholds where max APCER <= limit and BPCER <= limit.

    Max APCER falls and BPCER rises with the threshold, so those thresholds form one band,
    from just above the highest attack score it must reject up to the lowest bona fide score
    it must accept; None when there is no band (the data cannot meet both limits at once).
    """
    curve = det_curve(presentations)
    inside = np.flatnonzero((curve.apcer_max <= limit) & (curve.bpcer <= limit))
    if len(inside) == 0:
        return None
    first, last = curve.thresholds[inside[0]], curve.thresholds[inside[-1]]
    distinct = np.unique(presentations.scores)
    below, above = distinct[distinct < first], distinct[distinct >= last]
    low = below[-1] if len(below) else first  # band open below it: every score rejected
    high = above[0] if len(above) else last
    centre = 1.0 / (1.0 + math.exp(-(_logit(float(low)) + _logit(float(high))) / 2))
    return _point(error_rates(presentations, np.array([centre])), 0)


def equal_error_rate(curve: DetCurve) -> tuple[float, OperatingPoint]:
    """EER and its threshold: where max APCER and BPCER are closest (lowest threshold on ties).

    With finitely many presentations the two rates seldom meet exactly; the EER is their
    mean at the closest threshold, so it is a rate the data really shows, not an interpolation.
    """
    point = _point(curve, int(np.argmin(np.abs(curve.apcer_max - curve.bpcer))))
    return (point.apcer_max + point.bpcer) / 2, point


@dataclass(frozen=True)
class ThresholdChoice:
    """A decision threshold and how it was chosen.

    ``target`` is ``'bpcer20'``, ``'bpcer100'``, ``'centre100'``, ``'eer'`` (chosen on
    validation data) or ``'fixed'``; ``validation`` holds the rates the threshold gave on that
    validation data.
    """

    threshold: float
    target: str
    validation: OperatingPoint | None = None

    def describe(self) -> str:
        """One sentence for a report."""
        if self.target == 'fixed':
            how = 'fixed in advance'
        elif self.target == 'eer':
            how = 'at the equal error rate of the validation split'
        elif self.target == 'centre100':
            how = (f'in the middle (logit scale) of the band where max APCER <= {BAND_LIMIT:.0%}'
                   f' and BPCER <= {BAND_LIMIT:.0%} on the validation split')
        else:
            how = (f'as the lowest threshold with max APCER <= {APCER_LIMITS[self.target]:.0%} on '
                   f'the validation split ({self.target.upper()} operating point)')
        text = f'threshold {self.threshold:.6g} chosen {how}'
        if self.validation is not None:
            text += (f'; on validation: max APCER {self.validation.apcer_max:.2%}, '
                     f'BPCER {self.validation.bpcer:.2%}')
        return text


def parse_threshold_target(text: str) -> str | float:
    """Read a CLI threshold target: one of THRESHOLD_TARGETS or a number in [0, 1]."""
    name = text.strip().lower()
    if name in THRESHOLD_TARGETS:
        return name
    try:
        value = float(name)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"threshold target '{text}' is neither one of "
                         f"{', '.join(THRESHOLD_TARGETS)} nor a number in [0, 1]")
    return value


def choose_threshold(val_scores: Sequence[float] | np.ndarray,
                     val_labels: Sequence[int] | np.ndarray,
                     val_species: Sequence[str] | np.ndarray,
                     target: str | float = DEFAULT_THRESHOLD_TARGET) -> ThresholdChoice:
    """Choose the decision threshold on a validation split, to be applied unchanged to test.

    ``target``: ``'bpcer20'`` / ``'bpcer100'`` (lowest threshold with max APCER <= 5 % / 1 %
    on validation), ``'centre100'`` (see the module docstring; the BPCER100 point where
    validation cannot hold both rates <= 1 %), ``'eer'``, or a number used as a fixed threshold.
    """
    presentations = Presentations(val_scores, val_labels, val_species)
    if target == 'centre100':
        centre = band_centre(presentations)
        if centre is not None:
            return ThresholdChoice(centre.threshold, 'centre100', centre)
        target = 'bpcer100'
    if isinstance(target, str) and target in APCER_LIMITS:
        point = bpcer_at_apcer(det_curve(presentations), APCER_LIMITS[target])
        return ThresholdChoice(point.threshold, target, point)
    if target == 'eer':
        point = equal_error_rate(det_curve(presentations))[1]
        return ThresholdChoice(point.threshold, 'eer', point)
    if isinstance(target, int | float) and not isinstance(target, bool) and math.isfinite(target):
        point = _point(error_rates(presentations, np.array([float(target)])), 0)
        return ThresholdChoice(point.threshold, 'fixed', point)
    raise ValueError(
        f"unknown threshold target '{target}' (known: {', '.join(THRESHOLD_TARGETS)} or a number)")


@dataclass(frozen=True)
class Evaluation:
    """ISO/IEC 30107-3 figures and thesis-style accuracies of one model on one split.

    ``apcer`` and ``attack_counts`` are keyed by PAI species (an expected attack type with no
    presentations appears with NaN and 0, plus a note); ``apcer_max``/``worst_species``,
    ``bpcer`` and ``acer`` hold at ``threshold``; ``bpcer20``, ``bpcer100`` and ``eer`` are
    read off this split's own DET curve, whatever the threshold. ``accuracy`` is keyed
    ``'live'``, then each attack type, then ``'overall'`` (all presentations pooled).
    """

    threshold: float
    bona_fide_count: int
    attack_counts: dict[str, int]
    apcer: dict[str, float]
    apcer_max: float
    worst_species: str | None
    bpcer: float
    acer: float
    bpcer20: float
    bpcer100: float
    eer: float
    accuracy: dict[str, float]
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy: NaN becomes None, since JSON has no NaN."""
        return _json_ready(asdict(self))


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    return value


def _fraction(flags: np.ndarray) -> float:
    """Share of true flags; NaN for no flags at all (nothing to count is not a 0 % error)."""
    return float(np.mean(flags)) if len(flags) else math.nan


def _ordered_types(present: Iterable[str], expected: Sequence[str]) -> list[str]:
    present = set(present)
    return [*expected, *sorted(present - set(expected))]


def evaluate_at_threshold(scores: Sequence[float] | np.ndarray,
                          labels: Sequence[int] | np.ndarray,
                          species: Sequence[str] | np.ndarray, threshold: float,
                          expected_attack_types: Sequence[str] = DEFAULT_ATTACK_TYPES,
                          ) -> Evaluation:
    """Classify with ``score >= threshold`` -> bona fide and compute every figure.

    ``expected_attack_types`` are reported even when this split has none of them, as NaN
    with a note, so a missing mask column reads as "not measured" rather than "0 % errors".
    """
    if not math.isfinite(threshold):
        raise ValueError(f'threshold {threshold} is not a finite number')
    data = Presentations(scores, labels, species)
    accepted = data.scores >= threshold
    is_attack = data.labels == ATTACK_LABEL
    notes = []

    bpcer = _fraction(~accepted[~is_attack])
    if math.isnan(bpcer):
        notes.append('no bona fide presentations: BPCER, ACER, BPCER20, BPCER100 and EER are NaN')

    apcer = {name: _fraction(accepted[is_attack & (data.species == name)])
             for name in data.attack_species}
    attack_counts = {name: int(np.sum(is_attack & (data.species == name)))
                     for name in data.attack_species}
    types = np.array([attack_type(name) for name in data.species])
    present_types = set(types[is_attack].tolist())
    for missing in (name for name in expected_attack_types if name not in present_types):
        apcer[missing] = math.nan
        attack_counts[missing] = 0
        notes.append(f"no attack presentations of type '{missing}': its APCER and accuracy are "
                     'NaN, and max APCER covers only the species present')
    if not present_types:
        notes.append('no attack presentations: APCER, ACER, BPCER20, BPCER100 and EER are NaN')
        apcer_max, worst_species = math.nan, None
    else:
        worst_species = max(data.attack_species, key=lambda name: apcer[name])
        apcer_max = apcer[worst_species]

    if present_types and not math.isnan(bpcer):
        curve = det_curve(data)
        bpcer20 = bpcer_at_apcer(curve, APCER_LIMITS['bpcer20']).bpcer
        bpcer100 = bpcer_at_apcer(curve, APCER_LIMITS['bpcer100']).bpcer
        eer = equal_error_rate(curve)[0]
    else:
        bpcer20 = bpcer100 = eer = math.nan

    accuracy = {'live': _fraction(accepted[~is_attack])}
    for name in _ordered_types(present_types, expected_attack_types):
        accuracy[name] = _fraction(~accepted[is_attack & (types == name)])
    accuracy['overall'] = _fraction(accepted == ~is_attack)

    return Evaluation(float(threshold), int(np.sum(~is_attack)), attack_counts, apcer,
                      apcer_max, worst_species, bpcer, (apcer_max + bpcer) / 2, bpcer20,
                      bpcer100, eer, accuracy, tuple(notes))
