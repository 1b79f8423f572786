"""Build an evaluation report from saved score files.

Score files (.npz or .csv) hold the columns score, label, species, split, subject. The
threshold is chosen on the validation rows (``--val-split``, from ``--val-scores`` or the
same file) and applied unchanged to the evaluated split. Bad input: one error line, exit 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

from antispoof_ros.offline.evaluation.metrics import (
    DEFAULT_THRESHOLD_TARGET,
    THRESHOLD_TARGETS,
    Evaluation,
    ThresholdChoice,
    choose_threshold,
    evaluate_at_threshold,
    parse_threshold_target,
)
from antispoof_ros.offline.evaluation.report import (
    ModelIdentity,
    ReportRequest,
    ScoreTable,
    file_sha256,
    load_score_table,
    write_report,
)

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m antispoof_ros.offline.evaluation',
        description='ISO/IEC 30107-3 evaluation report (Markdown, JSON, PNG) from score files.',
    )
    parser.add_argument('--scores', type=Path, required=True,
                        help='score file (.npz or .csv): score, label, species, split, subject')
    parser.add_argument('--out', type=Path, required=True, help='report folder')
    parser.add_argument('--val-scores', type=Path,
                        help='score file holding the validation rows (default: --scores)')
    parser.add_argument('--split', default='test', help='split to evaluate (default: test)')
    parser.add_argument('--val-split', default='validation',
                        help='split the threshold is chosen on (default: validation, the name '
                             'the training pipeline writes)')
    parser.add_argument('--threshold', default=DEFAULT_THRESHOLD_TARGET,
                        help=f'{", ".join(THRESHOLD_TARGETS)} or a fixed number (default: '
                             f'{DEFAULT_THRESHOLD_TARGET})')
    parser.add_argument('--model', type=Path, help='model file, hashed with sha256')
    parser.add_argument('--model-name', help='model name (default: model file name)')
    parser.add_argument('--input-type', help='row name in the accuracy table, e.g. P2')
    parser.add_argument('--data-id', help='data set identity (default: score file + sha256)')
    parser.add_argument('--compare', action='append', default=[], metavar='NAME=FILE',
                        help='another input type\'s score file for the accuracy table '
                             '(threshold chosen the same way on its own validation rows)')
    parser.add_argument('--history', type=Path,
                        help='training history JSON: list of {epoch, loss, val_loss, '
                             'accuracy, val_accuracy, lr}')
    return parser


def _choose(table: ScoreTable, target: str | float, val_split: str) -> ThresholdChoice:
    if isinstance(target, float):
        if val_split not in set(table.split.tolist()):
            return ThresholdChoice(target, 'fixed')
    try:
        val = table.select_split(val_split).presentations
        return choose_threshold(val.scores, val.labels, val.species, target)
    except ValueError as error:
        raise ValueError(f"choosing the threshold on split '{val_split}': {error}") from None


def _evaluate(path: Path, target: str | float, args: argparse.Namespace) -> Evaluation:
    table = load_score_table(path)
    choice = _choose(table, target, args.val_split)
    test = table.select_split(args.split).presentations
    return evaluate_at_threshold(test.scores, test.labels, test.species, choice.threshold)


def _comparisons(args: argparse.Namespace, target: str | float) -> dict[str, Evaluation]:
    rows = {}
    for item in args.compare:
        name, separator, path = item.partition('=')
        if not separator or not name or not path:
            raise ValueError(f"--compare '{item}' is not NAME=FILE")
        rows[name] = _evaluate(Path(path), target, args)
    return rows


def _history(path: Path | None) -> list[dict[str, float]] | None:
    if path is None:
        return None
    try:
        history = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f'{path}: not JSON ({error})') from None
    if not isinstance(history, list) or not all(isinstance(entry, dict) for entry in history):
        raise ValueError(f'{path}: training history must be a JSON list of objects')
    return history


def run(args: argparse.Namespace) -> Path:
    """Build the report described by parsed arguments; returns the report path."""
    target = parse_threshold_target(args.threshold)
    table = load_score_table(args.scores)
    val_table = table if args.val_scores is None else load_score_table(args.val_scores)
    choice = _choose(val_table, target, args.val_split)
    model = (ModelIdentity.from_file(args.model, args.model_name) if args.model
             else ModelIdentity(args.model_name or args.scores.stem))
    request = ReportRequest(
        test=table.select_split(args.split),
        choice=choice,
        model=model,
        data_id=args.data_id or f'{args.scores.name} sha256:{file_sha256(args.scores)[:16]}',
        split=args.split,
        input_type=args.input_type or model.name,
        other_input_types=_comparisons(args, target),
        history=_history(args.history),
    )
    write_report(args.out, request)
    return args.out / 'report.md'


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 with the report path on stdout, or one error line and exit 2."""
    args = _parser().parse_args(argv)
    try:
        print(run(args))
    except (ValueError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == '__main__':
    sys.exit(main())
