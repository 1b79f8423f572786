"""Markdown + JSON report of one liveness model on one split, with its PNG figures.

The report states what an ISO/IEC 30107-3 evaluation must: which model (name, sha256) on
which data, the decision threshold and how it was chosen, APCER per PAI species with the
maximum, BPCER, the BPCER20/BPCER100 and EER of the split, plus the thesis table 4.1
accuracies (live / print / mask / overall) for one or several input types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import csv
from dataclasses import dataclass
from datetime import UTC, datetime
import hashlib
import json
import math
import os
from pathlib import Path
import shutil
import tempfile
from typing import Any

import numpy as np

from antispoof_ros.offline.evaluation.metrics import (
    APCER_LIMITS,
    BONA_FIDE_SPECIES,
    Evaluation,
    Presentations,
    ThresholdChoice,
    evaluate_at_threshold,
)
from antispoof_ros.offline.evaluation.plots import (
    plot_det,
    plot_score_histograms,
    plot_training_history,
)

SCORE_COLUMNS = ('score', 'label', 'species', 'split', 'subject')
REPORT_NAME = 'report.md'
METRICS_NAME = 'metrics.json'
DET_NAME = 'det.png'
SCORES_NAME = 'scores.png'
TRAINING_NAME = 'training.png'
FIGURE_CAPTIONS = {
    DET_NAME: 'DET curve per PAI species, operating point marked',
    SCORES_NAME: 'Score histograms per PAI species, threshold marked',
    TRAINING_NAME: 'Training history: loss, accuracy, learning rate',
}


class ScoreFileError(ValueError):
    """A score file that cannot be evaluated; the message names the file and the problem."""


@dataclass(frozen=True, eq=False)
class ScoreTable:
    """Per-presentation scores with their split and subject, as saved by the training pipeline."""

    presentations: Presentations
    split: np.ndarray
    subject: np.ndarray

    def __post_init__(self) -> None:
        split = np.asarray(self.split).astype(str)
        subject = np.asarray(self.subject).astype(str)
        if split.shape != subject.shape or len(split) != len(self.presentations.scores):
            raise ValueError('split and subject must have one entry per presentation')
        object.__setattr__(self, 'split', split)
        object.__setattr__(self, 'subject', subject)

    def select_split(self, split: str) -> ScoreTable:
        """Rows of one split; ValueError naming the splits present when it has none."""
        keep = self.split == split
        if not np.any(keep):
            present = ', '.join(sorted(set(self.split.tolist())))
            raise ValueError(f"no rows of split '{split}' (splits present: {present})")
        data = self.presentations
        return ScoreTable(
            Presentations(data.scores[keep], data.labels[keep], data.species[keep]),
            self.split[keep],
            self.subject[keep],
        )

    def subject_counts(self) -> dict[str, int]:
        """Distinct subjects per species (``'live'`` for bona fide): ISO asks to report them."""
        species = self.presentations.species
        return {name: len(set(self.subject[species == name].tolist()))
                for name in sorted(set(species.tolist()))}


def _csv_columns(path: Path) -> dict[str, list[str]]:
    with path.open(newline='', encoding='utf-8') as stream:
        reader = csv.DictReader(stream)
        if not reader.fieldnames:
            raise ScoreFileError(f'{path}: empty file')
        missing = [name for name in SCORE_COLUMNS if name not in reader.fieldnames]
        if missing:
            raise ScoreFileError(f'{path}: missing columns {", ".join(missing)}')
        rows = list(reader)
    return {name: [row[name] or '' for row in rows] for name in SCORE_COLUMNS}


def _npz_columns(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in SCORE_COLUMNS if name not in archive.files]
            if missing:
                raise ScoreFileError(f'{path}: missing columns {", ".join(missing)}')
            return {name: archive[name] for name in SCORE_COLUMNS}
    except ValueError as error:
        if isinstance(error, ScoreFileError):
            raise
        raise ScoreFileError(
            f'{path}: not a readable .npz of plain arrays (strings must be saved as numpy '
            f'unicode arrays, not Python objects): {error}'
        ) from None


def _parse_numbers(path: Path, name: str, values: Sequence[Any]) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except ValueError:
        bad = next(value for value in values if not _is_number(value))
        raise ScoreFileError(f"{path}: column {name} holds '{bad}', not a number") from None


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def load_score_table(path: Path) -> ScoreTable:
    """Read a ``.npz`` or ``.csv`` score file with columns score, label, species, split, subject.

    Labels must be 0 (attack presentation) or 1 (bona fide presentation); species ``'live'``
    exactly for label 1. Raises ScoreFileError with one line naming the file and problem.
    """
    path = Path(path)
    if not path.is_file():
        raise ScoreFileError(f'{path}: no such file')
    if path.suffix == '.npz':
        columns = _npz_columns(path)
    elif path.suffix == '.csv':
        columns = _csv_columns(path)
    else:
        raise ScoreFileError(f'{path}: unknown score file type (use .npz or .csv)')
    if len(columns['score']) == 0:
        raise ScoreFileError(f'{path}: no presentations (empty file)')
    labels = _parse_numbers(path, 'label', columns['label'])
    if np.all(labels == np.round(labels)):  # '1' and '1.0' alike; errors then show 7, not 7.0
        labels = labels.astype(np.int64)
    try:
        presentations = Presentations(
            _parse_numbers(path, 'score', columns['score']), labels, columns['species'])
        return ScoreTable(presentations, columns['split'], columns['subject'])
    except ValueError as error:
        raise ScoreFileError(f'{path}: {error}') from None


@dataclass(frozen=True)
class ModelIdentity:
    """Which model was evaluated: a name and the sha256 of the exact model file."""

    name: str
    sha256: str = ''

    @classmethod
    def from_file(cls, path: Path, name: str | None = None) -> ModelIdentity:
        """Hash the model file; the name defaults to the file name without suffix."""
        return cls(name or Path(path).stem, file_sha256(path))


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large files need little memory."""
    digest = hashlib.sha256()
    with Path(path).open('rb') as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _percent(value: float, decimals: int = 2) -> str:
    return 'n/a' if math.isnan(value) else f'{100 * value:.{decimals}f} %'


def accuracy_table(rows: Mapping[str, Evaluation]) -> str:
    """Markdown table like thesis table 4.1: one row per input type, accuracy per class.

    Columns are live, each attack type seen in any row, and overall (all presentations
    pooled, as in the thesis); a class a row did not measure reads n/a.
    """
    classes: list[str] = []
    for evaluation in rows.values():
        classes += [name for name in evaluation.accuracy if name not in classes]
    classes.remove('overall')
    classes.append('overall')
    lines = [
        '| Input type | ' + ' | '.join(f'{name.capitalize()} acc.' for name in classes) + ' |',
        '|---|' + '---:|' * len(classes),
    ]
    for input_type, evaluation in rows.items():
        cells = [_percent(evaluation.accuracy.get(name, math.nan), 1) for name in classes]
        lines.append(f'| {input_type} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def _iso_tables(evaluation: Evaluation, subjects: Mapping[str, int]) -> str:
    lines = [
        '| PAI species | Attack presentations | Subjects | APCER |',
        '|---|---:|---:|---:|',
    ]
    for name, apcer in evaluation.apcer.items():
        lines.append(f'| {name} | {evaluation.attack_counts[name]} | {subjects.get(name, 0)} '
                     f'| {_percent(apcer)} |')
    lines.append(f'| **max (worst species: {evaluation.worst_species or "n/a"})** | | '
                 f'| **{_percent(evaluation.apcer_max)}** |')
    limit20, limit100 = (_percent(APCER_LIMITS[key], 0) for key in ('bpcer20', 'bpcer100'))
    lines += [
        '',
        '| Figure | Value |',
        '|---|---:|',
        f'| BPCER ({evaluation.bona_fide_count} bona fide presentations, '
        f'{subjects.get(BONA_FIDE_SPECIES, 0)} subjects) | {_percent(evaluation.bpcer)} |',
        f'| ACER = (max APCER + BPCER) / 2, deprecated by ISO/IEC 30107-3:2023 '
        f'| {_percent(evaluation.acer)} |',
        f'| BPCER20: BPCER where max APCER <= {limit20} on this split '
        f'| {_percent(evaluation.bpcer20)} |',
        f'| BPCER100: BPCER where max APCER <= {limit100} on this split '
        f'| {_percent(evaluation.bpcer100)} |',
        f'| EER (max APCER = BPCER) on this split | {_percent(evaluation.eer)} |',
    ]
    return '\n'.join(lines)


GLOSSARY = """\
Terms (ISO/IEC 30107-3): a *bona fide presentation* is a live face; an *attack presentation*
shows a presentation attack instrument (PAI) of some *PAI species* (print, mask, ...).
APCER: proportion of attack presentations of one PAI species classified as bona fide
presentations; the headline figure is the maximum over species. BPCER: proportion of bona fide
presentations classified as attack presentations. Decision rule: score >= threshold is
classified bona fide (a tie counts as bona fide). APCER, BPCER and ACER hold at the threshold
chosen on the validation split; BPCER20, BPCER100 and EER come from this split's own DET curve
and show what the scores allow, not what the chosen threshold achieved."""


@dataclass(frozen=True)
class ReportRequest:
    """Everything one report shows; ``other_input_types`` adds rows to the accuracy table."""

    test: ScoreTable
    choice: ThresholdChoice
    model: ModelIdentity
    data_id: str
    split: str = 'test'
    input_type: str = 'model'
    other_input_types: Mapping[str, Evaluation] | None = None
    history: Sequence[Mapping[str, float]] | None = None


def _markdown(request: ReportRequest, evaluation: Evaluation, figures: Sequence[str]) -> str:
    data = request.test.presentations
    subjects = request.test.subject_counts()
    rows = {request.input_type: evaluation, **(request.other_input_types or {})}
    sha = f'`{request.model.sha256}`' if request.model.sha256 else 'not given'
    parts = [
        f'# Presentation attack detection report: {request.model.name}',
        '',
        f'- Model: **{request.model.name}**, sha256 {sha}',
        f'- Data: `{request.data_id}`, split **{request.split}**: {len(data.scores)} '
        f'presentations ({evaluation.bona_fide_count} bona fide, '
        f'{sum(evaluation.attack_counts.values())} attack) from '
        f'{len(set(request.test.subject.tolist()))} subjects',
        f'- Decision: score >= threshold is a bona fide presentation; '
        f'{request.choice.describe()}',
        f'- Generated {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}',
        '',
        '## Accuracy per input type (as thesis table 4.1)',
        '',
        accuracy_table(rows),
        '',
        '## ISO/IEC 30107-3 error rates',
        '',
        _iso_tables(evaluation, subjects),
        '',
    ]
    if evaluation.notes:
        parts += ['**Notes**', '', *(f'- {note}' for note in evaluation.notes), '']
    parts += ['## Figures', '', *(f'![{FIGURE_CAPTIONS[name]}]({name})' for name in figures)]
    parts += ['', GLOSSARY, '']
    return '\n'.join(parts)


def _metrics_json(request: ReportRequest, evaluation: Evaluation, figures: Sequence[str]) -> str:
    other = request.other_input_types or {}
    document = {
        'model': {'name': request.model.name, 'sha256': request.model.sha256},
        'data_id': request.data_id,
        'split': request.split,
        'input_type': request.input_type,
        'decision_rule': 'score >= threshold is bona fide',
        'threshold': {
            'value': request.choice.threshold,
            'target': request.choice.target,
            'description': request.choice.describe(),
            'validation': None if request.choice.validation is None else {
                'apcer_max': request.choice.validation.apcer_max,
                'bpcer': request.choice.validation.bpcer,
            },
        },
        'subjects': request.test.subject_counts(),
        'metrics': evaluation.to_dict(),
        'accuracy_by_input_type': {
            name: row.to_dict()['accuracy']
            for name, row in {request.input_type: evaluation, **other}.items()},
        'figures': list(figures),
    }
    return json.dumps(document, indent=2, allow_nan=False) + '\n'


def write_report(out_dir: Path, request: ReportRequest) -> Evaluation:
    """Evaluate and write report.md, metrics.json and the PNGs into ``out_dir``.

    Everything is rendered in a temporary folder inside ``out_dir`` first and then renamed
    into place (report.md last), so a failure leaves no half-written report behind.
    """
    data = request.test.presentations
    evaluation = evaluate_at_threshold(
        data.scores, data.labels, data.species, request.choice.threshold)
    out_dir = Path(out_dir).absolute()
    created = next((folder for folder in (*reversed(out_dir.parents), out_dir)
                    if not folder.exists()), None)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix='.report-', dir=out_dir))
    try:
        figures = []
        title = request.model.name
        if request.input_type != request.model.name:
            title += f' ({request.input_type})'
        title += f', {request.split} split'
        if len(data.bona_fide_scores) and data.attack_species:
            plot_det(data, staging / DET_NAME, request.choice.threshold, f'DET curve: {title}')
            figures.append(DET_NAME)
        plot_score_histograms(data, staging / SCORES_NAME, request.choice.threshold,
                              f'Scores per PAI species: {title}')
        figures.append(SCORES_NAME)
        if request.history is not None:
            plot_training_history(request.history, staging / TRAINING_NAME,
                                  f'Training history: {request.model.name}')
            figures.append(TRAINING_NAME)
        (staging / METRICS_NAME).write_text(_metrics_json(request, evaluation, figures))
        (staging / REPORT_NAME).write_text(_markdown(request, evaluation, figures))
        for name in (*figures, METRICS_NAME, REPORT_NAME):
            os.replace(staging / name, out_dir / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    staging.rmdir()
    return evaluation
