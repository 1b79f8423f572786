"""A sealed test: a second protocol seed, scored once with a model and threshold frozen first.

The original test split (protocol seed 0) was looked at before the threshold rule was
fixed. The sealed set is the test split of another seed (``SEALED_PROTOCOL``): new subjects,
new masks (12 mask identities, so the mask-disjoint test split holds two masks none of the
seed-0 data shows), rendered with the same renderer. Three steps, in this order:

1. ``render --out DATA``: render the sealed set (nothing is scored).
2. ``freeze --model M --record R``: write down the model's sha256, its threshold and the rule
   that chose it, and the time. Refuses to overwrite a record.
3. ``score --record R --original DIR --sealed DATA --out DIR``: score both test splits with
   ground-truth corners at the frozen threshold and write ``sealed.md`` / ``sealed.json`` side
   by side. Refuses a model whose sha256 differs from the record, and refuses to run when
   the results exist: the sealed set is scored once.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
import json
from pathlib import Path
import sys

import numpy as np

from antispoof_ros.offline.evaluation.corner_source import model_metadata
from antispoof_ros.offline.evaluation.metrics import Evaluation, evaluate_at_threshold
from antispoof_ros.offline.evaluation.report import file_sha256
from antispoof_ros.offline.synthetic.protocol import (
    ProtocolConfig,
    build_protocol,
    restrict_to_splits,
    write_dataset,
)
from antispoof_ros.offline.synthetic.scene import Split
from antispoof_ros.offline.training.dataset import build_pair_dataset
from antispoof_ros.offline.training.reproduce import load_cycles, onnx_scores
from antispoof_ros.paths import SHIPPED_MODELS

PROGRAM = 'antispoof_ros.offline.evaluation.sealed'
#: Seed 1 draws new people and new masks; 12 masks put two of them into the test split.
SEALED_PROTOCOL = ProtocolConfig(seed=1, masks=12, cycles_live=6, cycles_print=5, cycles_mask=8)
RESULT_FILES = ('sealed.md', 'sealed.json')


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec='seconds')


def render(out: Path, workers: int, config: ProtocolConfig = SEALED_PROTOCOL) -> dict:
    """Render the test split of the sealed protocol into ``out``; returns the manifest."""
    protocol = restrict_to_splits(build_protocol(config), [Split.TEST])
    return write_dataset(protocol, out, pylon_scenarios=0, workers=workers, progress=False)


def freeze(model: Path, record: Path, card: Path | None = None) -> dict:
    """Write the frozen model identity, threshold and rule with the time; never overwrite."""
    if record.exists():
        raise OSError(f'{record} exists: the model was frozen already')
    metadata = model_metadata(model)
    card_path = card or model.with_name(f'{model.stem}.model_card.json')
    rule = (json.loads(card_path.read_text()).get('threshold', {})
            if card_path.is_file() else {})
    frozen = {
        'frozen_utc': _now(),
        'model': {'file': str(model), 'sha256': file_sha256(model), 'name': metadata.name,
                  'pair': metadata.pair, 'region': metadata.region},
        'threshold': metadata.threshold,
        'threshold_rule': rule.get('target', 'unknown'),
        'threshold_rule_description': rule.get('description', ''),
        'corners': 'ground_truth',
    }
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(frozen, indent=1))
    return frozen


def score_test_split(data: Path, model: Path, pair: str,
                     region: str) -> tuple[np.ndarray, ...]:
    """Scores, labels and species of a rendered protocol's test split (ground-truth corners)."""
    cycles = [c for c in load_cycles(data) if c.split == Split.TEST.value]
    if not cycles:
        raise ValueError(f'{data} holds no test-split cycle')
    dataset = build_pair_dataset(cycles, pair, region)
    return onnx_scores(model, dataset.crops), dataset.labels, dataset.info['species']


def _manifest(data: Path) -> dict:
    return json.loads((data / 'manifest.json').read_text())


def _describe(data: Path) -> dict:
    manifest = _manifest(data)
    test = Split.TEST.value
    return {
        'folder': str(data),
        'seed': manifest['config']['seed'],
        'masks_in_protocol': manifest['config']['masks'],
        'test_subjects': sorted(int(s) for s, split in manifest['subjects'].items()
                                if split == test),
        'test_masks': sorted(int(m) for m, entry in manifest['masks'].items()
                             if entry['split'] == test),
    }


def _figures(evaluation: Evaluation) -> dict:
    return {
        'bona_fide_count': evaluation.bona_fide_count,
        'attack_counts': evaluation.attack_counts,
        'apcer': evaluation.apcer,
        'apcer_max': evaluation.apcer_max,
        'bpcer': evaluation.bpcer,
        'acer': evaluation.acer,
        'eer': evaluation.eer,
    }


def score(record: Path, original: Path, sealed: Path, out: Path, model: Path,
          protocol: ProtocolConfig = SEALED_PROTOCOL) -> dict:
    """Score the original and the sealed test split once at the frozen threshold.

    ``sealed`` must have been rendered from ``protocol``.
    """
    if any((out / name).exists() for name in RESULT_FILES):
        raise OSError(f'{out} already holds the sealed results: the set is scored once')
    frozen = json.loads(record.read_text())
    if file_sha256(model) != frozen['model']['sha256']:
        raise ValueError(f'{model} is not the frozen model (sha256 differs from {record})')
    config = _manifest(sealed)['config']
    expected = asdict(protocol)
    expected['species'] = [s.value for s in protocol.species]
    if config != expected:
        raise ValueError(f'{sealed} was not rendered from the sealed protocol {protocol}')
    started = _now()
    columns = {}
    for name, data in (('original', original), ('sealed', sealed)):
        scores, labels, species = score_test_split(data, model, frozen['model']['pair'],
                                                    frozen['model']['region'])
        evaluation = evaluate_at_threshold(scores, labels, species, frozen['threshold'])
        columns[name] = {**_describe(data), **_figures(evaluation)}
    result = {'frozen': frozen, 'scored_utc': started, 'columns': columns}
    out.mkdir(parents=True, exist_ok=True)
    (out / 'sealed.json').write_text(json.dumps(result, indent=1))
    (out / 'sealed.md').write_text(markdown(result))
    return result


def markdown(result: dict) -> str:
    """Side-by-side table of the original and the sealed test split."""
    original, sealed = result['columns']['original'], result['columns']['sealed']
    frozen = result['frozen']

    def percent(value: float) -> str:
        return 'n/a' if value != value else f'{100 * value:.2f} %'

    rows = ['| figure | original test split | sealed test set |', '|---|---:|---:|']
    for key in sorted(set(original['apcer']) | set(sealed['apcer'])):
        counts = [c['attack_counts'].get(key, 0) for c in (original, sealed)]
        values = [percent(c['apcer'].get(key, float('nan'))) for c in (original, sealed)]
        rows.append(f'| APCER {key} | {values[0]} (n={counts[0]}) | '
                    f'{values[1]} (n={counts[1]}) |')
    rows.append(f'| BPCER | {percent(original["bpcer"])} (n={original["bona_fide_count"]}) | '
                f'{percent(sealed["bpcer"])} (n={sealed["bona_fide_count"]}) |')
    for key, label in (('apcer_max', 'max APCER'), ('acer', 'ACER'), ('eer', 'EER (own DET)')):
        rows.append(f'| {label} | {percent(original[key])} | {percent(sealed[key])} |')
    rows += [f'| protocol seed / masks in protocol | {original["seed"]} / '
             f'{original["masks_in_protocol"]} | {sealed["seed"]} / '
             f'{sealed["masks_in_protocol"]} |',
             f'| test subjects | {original["test_subjects"]} | {sealed["test_subjects"]} |',
             f'| test masks | {original["test_masks"]} | {sealed["test_masks"]} |']
    return '\n'.join([
        '# Sealed test set (P2 face)',
        '',
        f'Frozen {frozen["frozen_utc"]}: model `{frozen["model"]["name"]}` sha256 '
        f'`{frozen["model"]["sha256"]}`, threshold {frozen["threshold"]:.4f} '
        f'(rule `{frozen["threshold_rule"]}`: {frozen["threshold_rule_description"]}), '
        f'ground-truth corners. Scored once, {result["scored_utc"]}.',
        '',
        *rows,
        '',
    ])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line: render, freeze, score (see module docstring)."""
    parser = argparse.ArgumentParser(prog=f'python -m {PROGRAM}',
                                     description=__doc__.split('\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    rendering = commands.add_parser('render', help='render the sealed set')
    rendering.add_argument('--out', type=Path, required=True)
    rendering.add_argument('--workers', type=int, default=2)
    freezing = commands.add_parser('freeze', help='record the frozen model and threshold')
    freezing.add_argument('--model', type=Path, default=SHIPPED_MODELS / 'p2_face.onnx')
    freezing.add_argument('--record', type=Path, required=True)
    scoring = commands.add_parser('score', help='score both test splits once')
    scoring.add_argument('--model', type=Path, default=SHIPPED_MODELS / 'p2_face.onnx')
    scoring.add_argument('--record', type=Path, required=True)
    scoring.add_argument('--original', type=Path, required=True,
                         help='rendered seed-0 protocol (its test split is scored)')
    scoring.add_argument('--sealed', type=Path, required=True, help='rendered sealed set')
    scoring.add_argument('--out', type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one step; one error line and exit 2 on bad input or a refused step."""
    args = parse_args(argv)
    try:
        if args.command == 'render':
            manifest = render(args.out, max(args.workers, 1))
            print(f'rendered {manifest["n_cycles"]} cycles to {args.out}')
        elif args.command == 'freeze':
            frozen = freeze(args.model, args.record)
            print(f'frozen {frozen["model"]["sha256"]} at {frozen["frozen_utc"]}')
        else:
            score(args.record, args.original, args.sealed, args.out, args.model)
            print(args.out / 'sealed.md')
    except (OSError, ValueError, KeyError) as error:
        print(f'{PROGRAM}: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
