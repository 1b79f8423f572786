"""PNG figures of an evaluation: DET curve, training history, score histograms.

Figures are drawn on ``matplotlib.figure.Figure`` objects rendered by the Agg backend, never
through pyplot, so plotting works headless and leaves no global figure state behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import NormalDist

from matplotlib.figure import Figure
import numpy as np

from antispoof_ros.offline.evaluation.metrics import (
    APCER_LIMITS,
    BONA_FIDE_SPECIES,
    DetCurve,
    Presentations,
    det_curve,
    error_rates,
)

DPI = 120
DET_TICKS = (0.0001, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6)
DET_LOWER_LIMITS = (0.0001, 0.001, 0.01)  # decades: finer steps crowd the tick labels
DET_UPPER = 0.6
HISTORY_KEYS = ('epoch', 'loss', 'val_loss', 'accuracy', 'val_accuracy', 'lr')
PER_CLASS_ACCURACY_PREFIX = 'val_accuracy_'
CLASS_COLOURS = {BONA_FIDE_SPECIES: 'tab:green', 'print': 'tab:purple', 'mask': 'tab:brown',
                 'screen': 'tab:cyan'}
OTHER_COLOURS = ('tab:blue', 'tab:orange', 'tab:red', 'tab:pink', 'tab:olive', 'gold', 'navy')
THRESHOLD_COLOUR = 'tab:red'
REFERENCE_COLOUR = '0.35'


def class_colours(names: Sequence[str]) -> dict[str, str]:
    """A distinct colour per class or PAI species, the same one in every figure of a report.

    ``live``, ``print``, ``mask`` and ``screen`` have fixed colours; finer species such as
    ``print_nir`` take the next free colour of a fixed list, so two prints stay apart.
    """
    spare = iter(OTHER_COLOURS)
    return {name: CLASS_COLOURS.get(name) or next(spare, 'black') for name in names}


def _probit(rates: np.ndarray, lower: float) -> np.ndarray:
    """Normal deviate of each rate; 0 and 1 go just past the axes so their lines run off-plot."""
    rates = np.asarray(rates, dtype=np.float64)
    inside = np.clip(rates, lower / 10, 1 - lower / 10)
    return np.array([NormalDist().inv_cdf(rate) for rate in inside])


def _det_lower_limit(presentations: Presentations) -> float:
    """Lowest axis rate: the decade at or below half the finest step the data can show."""
    counts = [len(presentations.attack_scores(name)) for name in presentations.attack_species]
    finest = 1 / max(len(presentations.bona_fide_scores), *counts)
    return max((limit for limit in DET_LOWER_LIMITS if limit <= finest / 2),
               default=DET_LOWER_LIMITS[0])


def _apcer_lines(curve: DetCurve) -> list[np.ndarray]:
    """APCER of each DET line: every species, then pooled, then worst species."""
    return [*curve.apcer_by_species.values(), curve.apcer_pooled, curve.apcer_max]


def plot_det(presentations: Presentations, path: Path, threshold: float | None = None,
             title: str = 'DET curve') -> None:
    """DET curve on normal-deviate axes (ISO/IEC 19795-1 style): APCER across, BPCER up.

    One line per PAI species, one for all attack presentations pooled and a dashed one for
    the worst species (max APCER, from which BPCER20/BPCER100 are read). ``threshold`` is
    marked on every line; a rate of 0 lies off the axes, so its marker sits on the edge.
    """
    curve = det_curve(presentations)
    lower = _det_lower_limit(presentations)
    colours = class_colours(list(curve.apcer_by_species))
    labels_and_styles = [
        *((f'{name} (n={len(presentations.attack_scores(name))})', {'color': colours[name]})
          for name in curve.apcer_by_species),
        ('all attacks pooled', {'color': 'tab:gray', 'linewidth': 1}),
        ('worst species (max APCER)', {'color': 'black', 'linestyle': '--', 'linewidth': 1.5}),
    ]
    figure = Figure(figsize=(9.5, 6.5))
    axes = figure.add_subplot()
    bpcer = _probit(curve.bpcer, lower)
    for (label, style), apcer in zip(labels_and_styles, _apcer_lines(curve), strict=True):
        axes.plot(_probit(apcer, lower), bpcer, label=label, **style)
    heading = title
    if threshold is not None:
        point = error_rates(presentations, np.array([threshold]))
        marked_bpcer = _probit(np.clip(point.bpcer, lower, DET_UPPER), lower)
        for line, apcer in zip(axes.get_lines(), _apcer_lines(point), strict=True):
            axes.plot(_probit(np.clip(apcer, lower, DET_UPPER), lower), marked_bpcer,
                      marker='o', markersize=8, color=line.get_color(),
                      markeredgecolor='black', linestyle='none')
        heading += (f'\n\u25cf threshold {threshold:.4g}: max APCER {point.apcer_max[0]:.2%}, '
                    f'BPCER {point.bpcer[0]:.2%}')
    for name, limit in APCER_LIMITS.items():
        if limit > lower:
            where = _probit([limit], lower)[0]
            axes.axvline(where, color=REFERENCE_COLOUR, linestyle=':', linewidth=1.2)
            axes.annotate(f'{name.upper()}', (where, 0), xycoords=('data', 'axes fraction'),
                          xytext=(3, 4), textcoords='offset points', fontsize=8,
                          color=REFERENCE_COLOUR)
    ticks = [tick for tick in DET_TICKS if lower <= tick <= DET_UPPER]
    for set_ticks, set_limits in ((axes.set_xticks, axes.set_xlim),
                                  (axes.set_yticks, axes.set_ylim)):
        set_ticks(_probit(ticks, lower), [f'{tick * 100:g}' for tick in ticks])
        set_limits(*_probit([lower, DET_UPPER], lower))
    axes.set_xlabel('APCER (%): attack presentations classified as bona fide')
    axes.set_ylabel('BPCER (%): bona fide presentations classified as attacks')
    axes.grid(True, color='0.85')
    axes.set_title(heading, fontsize=10)
    axes.set_aspect('equal')
    axes.legend(loc='upper left', bbox_to_anchor=(1.02, 1), fontsize=8,
                title=f'bona fide n={len(presentations.bona_fide_scores)}', title_fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)


def plot_training_history(history: Sequence[Mapping[str, float]], path: Path,
                          title: str = 'Training history') -> None:
    """Loss, accuracy and learning rate per epoch, like thesis figures 4.1-4.9.

    Each entry needs ``epoch, loss, val_loss, accuracy, val_accuracy, lr``; optional
    ``val_accuracy_<class>`` keys (``val_accuracy_live``, ``val_accuracy_mask``, ...) add the
    per-class validation accuracy the thesis figures show.
    """
    if not history:
        raise ValueError('training history is empty')
    for index, entry in enumerate(history):
        missing = [key for key in HISTORY_KEYS if key not in entry]
        if missing:
            raise ValueError(f'training history entry {index} lacks {", ".join(missing)}')
    column = {key: np.array([float(entry[key]) for entry in history]) for key in HISTORY_KEYS}
    per_class = sorted({key for entry in history for key in entry
                        if key.startswith(PER_CLASS_ACCURACY_PREFIX)})
    epochs = column['epoch']

    figure = Figure(figsize=(8, 8.5))
    loss_axes, accuracy_axes, lr_axes = figure.subplots(
        3, 1, sharex=True, gridspec_kw={'height_ratios': (3, 3, 1.4)})
    loss_axes.plot(epochs, column['loss'], label='training')
    loss_axes.plot(epochs, column['val_loss'], label='validation')
    loss_axes.set_ylabel('loss (binary cross-entropy)')
    accuracy_axes.plot(epochs, 100 * column['accuracy'], label='training', color='tab:blue')
    accuracy_axes.plot(epochs, 100 * column['val_accuracy'], label='validation, all',
                       color='tab:orange', linewidth=2)
    for key in per_class:
        values = np.array([float(entry.get(key, np.nan)) for entry in history])
        name = key.removeprefix(PER_CLASS_ACCURACY_PREFIX)
        accuracy_axes.plot(epochs, 100 * values, label=f'validation, {name}', linewidth=1,
                           linestyle='--', color=class_colours([name])[name])
    accuracy_axes.set_ylabel('accuracy (%)')
    lr_axes.semilogy(epochs, column['lr'], color='tab:gray')
    lr_axes.set_ylabel('learning rate')
    lr_axes.set_xlabel('epoch')
    for axes in (loss_axes, accuracy_axes, lr_axes):
        axes.grid(True, color='0.85')
    loss_axes.legend(fontsize=8)
    accuracy_axes.legend(fontsize=8, loc='lower right')
    loss_axes.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)


def plot_score_histograms(presentations: Presentations, path: Path,
                          threshold: float | None = None,
                          title: str = 'Scores per PAI species') -> None:
    """One histogram of scores per group (bona fide, then each PAI species), log counts.

    Log counts keep the few misclassified presentations visible beside the many correct ones.
    """
    groups = [(BONA_FIDE_SPECIES, presentations.bona_fide_scores)]
    groups += [(name, presentations.attack_scores(name)) for name in presentations.attack_species]
    groups = [(name, scores) for name, scores in groups if len(scores)]
    low = min(0.0, float(presentations.scores.min()))
    high = max(1.0, float(presentations.scores.max()))
    bins = np.linspace(low, high, 41)
    figure = Figure(figsize=(8, 1.2 + 1.5 * len(groups)))
    colours = class_colours([name for name, _ in groups])
    all_axes = np.atleast_1d(figure.subplots(len(groups), 1, sharex=True))
    for axes, (name, scores) in zip(all_axes, groups, strict=True):
        axes.hist(scores, bins=bins, color=colours[name], log=True)
        axes.set_ylabel('count')
        axes.set_title(f'{name} (n={len(scores)})', loc='left', fontsize=9, fontweight='bold')
        if threshold is not None:
            axes.axvline(threshold, color=THRESHOLD_COLOUR, linestyle='--', linewidth=1.2)
        axes.grid(True, axis='x', color='0.85')
    if threshold is not None:
        all_axes[0].set_title(f'threshold {threshold:.4g}: score >= threshold is bona fide',
                              loc='right', fontsize=8, color=THRESHOLD_COLOUR)
    all_axes[-1].set_xlabel('score (probability live)')
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
