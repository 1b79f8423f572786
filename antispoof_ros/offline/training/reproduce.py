"""Reproduce the shipped liveness models: synthetic data -> aligned pairs -> training -> report.

Stages, each written atomically and skipped when its output exists, so a killed run goes on
where it stopped (a training run resumes from its last epoch checkpoint):

1. ``data/``: the synthetic recording protocol (thesis 3.2) at crop resolution, with
   ground-truth corners and subject- and mask-disjoint splits (antispoof_ros.offline.synthetic).
2. ``caches/<input>.npz``: aligned pairs per input type, made by the alignment code the
   liveness node uses (antispoof_ros.offline.training.dataset).
3. ``runs/<input>/``: training with the thesis recipe, ONNX export with metadata, model card,
   history, and ``scores.npz`` (validation and test scores of the exported ONNX model).
4. ``reports/``: ISO/IEC 30107-3 reports from the score files (antispoof_ros.offline.evaluation):
   P2 face and P2 eye, each with the ablation table over the other input types (P1, P3,
   single frames; eye region by default, which trains in minutes on a CPU). Every model's
   threshold and every report use one operating point chosen on validation
   (``--threshold-target``, default ``centre100``: the middle of the validation band where every
   species' APCER and the BPCER are <= 1 %; see antispoof_ros.offline.evaluation.metrics).

``--ship`` copies the P2 face and P2 eye models, cards and reports into the package.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
import json
from pathlib import Path
import shutil
import sys
import time

import numpy as np

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.liveness.alignment import normalize_samplewise
from antispoof_ros.liveness.model_metadata import INPUT_NAME
from antispoof_ros.offline.atomic_file import write_atomically
from antispoof_ros.offline.evaluation.metrics import DEFAULT_THRESHOLD_TARGET, THRESHOLD_TARGETS
from antispoof_ros.offline.synthetic.protocol import ProtocolConfig, build_protocol, write_dataset
from antispoof_ros.offline.synthetic.scene import Lighting, Pose, PrintKind, Species, Split
from antispoof_ros.offline.training import train
from antispoof_ros.offline.training.dataset import (
    FrameCycle,
    build_pair_dataset,
    load_pair_dataset,
)
from antispoof_ros.offline.training.splits import splits_from_labels
from antispoof_ros.paths import SHIPPED_MODELS, SOURCE_TREE

PACKAGE_MODELS = SHIPPED_MODELS
PACKAGE_REPORTS = SOURCE_TREE / 'docs' / 'reports'
SCORES_FILE = 'scores.npz'


@dataclass(frozen=True)
class InputType:
    """One classifier input: a frame pair configuration and a region."""

    pair: str
    region: str

    @property
    def name(self) -> str:
        """File-system friendly name, e.g. ``p2_face`` (also the shipped model's name)."""
        return f'{self.pair.lower()}_{self.region}'

    @property
    def label(self) -> str:
        """Row name in the reports, e.g. ``P2 face``."""
        return f'{self.pair} {self.region}'


MAIN = InputType('P2', 'face')
EYE = InputType('P2', 'eye')
ABLATION_PAIRS = ('P1', 'P3', 'single_front', 'single_right', 'single_left')


def ablation_types(region: str) -> tuple[InputType, ...]:
    """The other frame pairs of thesis table 3.1, in one region."""
    return tuple(InputType(pair, region) for pair in ABLATION_PAIRS)


def _names(enum: type, codes: np.ndarray) -> list[str]:
    members = list(enum)
    return [members[code].value if code >= 0 else '' for code in codes.tolist()]


def load_cycles(data_dir: Path) -> list[FrameCycle]:
    """Every rendered cycle of a protocol dataset, with its labels, as FrameCycles.

    Print attacks are told apart by kind (``print_nir``, ``print_bw``, ``print_colour``):
    each is its own presentation-attack-instrument species in the ISO/IEC 30107-3 sense.
    """
    manifest = json.loads((data_dir / 'manifest.json').read_text())
    front = DEFAULT_PATTERN.index(Phase.FRONT)
    cycles = []
    for shard in manifest['shards']:
        with np.load(data_dir / shard['file']) as arrays:
            data = {name: arrays[name] for name in arrays.files}
        species = _names(Species, data['species'])
        kinds = _names(PrintKind, data['print_kind'])
        lighting, pose = _names(Lighting, data['lighting']), _names(Pose, data['pose'])
        splits = _names(Split, data['split'])
        for i in range(len(data['label'])):
            pai = f'{species[i]}_{kinds[i]}' if species[i] == 'print' else species[i]
            mask = int(data['mask_id'][i])
            cycles.append(FrameCycle(
                frames={phase: data['frames'][i, k] for k, phase in enumerate(DEFAULT_PATTERN)},
                corners=EyeCornerPoints.from_array(data['corners'][i, front]),
                label=int(data['label'][i]), species=pai,
                subject_id=f"s{int(data['subject_id'][i]):03d}",
                mask_id=f'm{mask:02d}' if mask >= 0 else '',
                lighting=lighting[i], pose=pose[i],
                source_id=f"{int(data['scenario_index'][i])}:{int(data['cycle_index'][i])}",
                split=splits[i],
            ))
    return cycles


def onnx_scores(model_path: Path, crops: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Live probabilities of the exported model itself (what ships is what is scored)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=['CPUExecutionProvider'])
    scores = []
    for start in range(0, len(crops), batch_size):
        batch = normalize_samplewise(crops[start:start + batch_size].astype(np.float32))
        tensor = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        scores.append(session.run(None, {INPUT_NAME: tensor})[0].reshape(-1))
    return np.concatenate(scores)


def write_scores(cache: Path, run: Path) -> Path:
    """Validation and test scores of ``run``'s ONNX model, as an evaluation score file."""
    dataset = load_pair_dataset(cache)
    plan = splits_from_labels(dataset.info['split'], dataset.info['subject_id'],
                              dataset.info['mask_id'])
    rows = np.concatenate([plan.indices['validation'], plan.indices['test']])
    columns = {
        'score': onnx_scores(run / train.MODEL_FILE, dataset.crops[rows]),
        'label': dataset.labels[rows].astype(np.int64),
        'species': dataset.info['species'][rows],
        'split': dataset.info['split'][rows],
        'subject': dataset.info['subject_id'][rows],
    }
    return write_atomically(run / SCORES_FILE, lambda handle: np.savez(handle, **columns))


class Reproduction:
    """The stages of one reproduction run in ``out``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out: Path = args.out
        self.data = self.out / 'data'

    def log(self, text: str) -> None:
        """Progress line with the time since the start."""
        print(f'[reproduce {time.monotonic() - self.started:7.1f} s] {text}', flush=True)

    def run(self) -> None:
        """All stages in order of importance: the shipped P2 face model first."""
        self.started = time.monotonic()
        self.generate_data()
        cycles = None
        ablation = ablation_types(self.args.ablation_region)
        for input_type, epochs in ((MAIN, self.args.epochs), (EYE, self.args.epochs),
                                   *((t, self.args.ablation_epochs) for t in ablation)):
            cache = self.out / 'caches' / f'{input_type.name}.npz'
            if not cache.is_file():
                cache.parent.mkdir(parents=True, exist_ok=True)
                if cycles is None:
                    cycles = load_cycles(self.data)
                    self.log(f'loaded {len(cycles)} cycles')
                build_pair_dataset(cycles, input_type.pair, input_type.region).save(cache)
                self.log(f'cached {input_type.label} pairs in {cache}')
            self.train(input_type, cache, epochs)
        self.reports()
        if self.args.ship:
            self.ship()
        self.log('done')

    def generate_data(self) -> None:
        """Stage 1: the synthetic protocol (skipped if the dataset exists)."""
        if (self.data / 'manifest.json').is_file():
            return
        config = (ProtocolConfig(subjects=8, masks=3, cycles_live=2, cycles_mask=2,
                                 cycles_print=2, prints_nir=1, prints_bw=1, prints_colour=1)
                  if self.args.tiny else ProtocolConfig())
        manifest = write_dataset(build_protocol(config), self.data, pylon_scenarios=0,
                                 workers=self.args.workers, progress=self.args.progress)
        self.log(f'generated {manifest["n_cycles"]} cycles')

    def train(self, input_type: InputType, cache: Path, epochs: int) -> None:
        """Stage 3 for one input type: train (or resume), then score the ONNX model."""
        run = self.out / 'runs' / input_type.name
        if not (run / train.CARD_FILE).is_file():
            argv = ['--data', str(cache), '--out', str(run), '--epochs', str(epochs),
                    '--seed', str(self.args.seed), '--batch-size', str(self.args.batch_size),
                    '--device', self.args.device, '--threads', str(self.args.threads),
                    '--name', f'mobilenetv2_a0.1_{input_type.name}',
                    '--threshold-target', self.args.threshold_target]
            if (run / train.CHECKPOINT_FILE).is_file():
                argv.append('--resume')
            if self.args.max_steps:
                argv += ['--max-steps', str(self.args.max_steps)]
            if train.main(argv) != 0:
                raise RuntimeError(f'training {input_type.label} failed')
            self.log(f'trained {input_type.label}')
        scores, model = run / SCORES_FILE, run / train.MODEL_FILE
        if not scores.is_file() or scores.stat().st_mtime < model.stat().st_mtime:
            write_scores(cache, run)  # a model trained further since it was last scored
            self.log(f'scored {input_type.label}')

    def reports(self) -> None:
        """Stage 4: ISO/IEC 30107-3 reports from the score files."""
        from antispoof_ros.offline.evaluation.__main__ import main as evaluation_main

        runs = self.out / 'runs'
        ablation = ablation_types(self.args.ablation_region)
        for input_type, compare in ((MAIN, (EYE, *ablation)), (EYE, (MAIN, *ablation))):
            run = runs / input_type.name
            argv = ['--scores', str(run / SCORES_FILE),
                    '--out', str(self.out / 'reports' / input_type.name),
                    '--model', str(run / train.MODEL_FILE), '--input-type', input_type.label,
                    '--model-name', f'mobilenetv2_a0.1_{input_type.name}',
                    '--history', str(run / train.HISTORY_FILE),
                    '--threshold', self.args.threshold_target]
            for other in compare:
                argv += ['--compare', f'{other.label}={runs / other.name / SCORES_FILE}']
            if evaluation_main(argv) != 0:
                raise RuntimeError(f'report for {input_type.label} failed')
        self.log(f'reports in {self.out / "reports"}')

    def ship(self) -> None:
        """Copy the P2 face and eye models, their cards and reports into the package."""
        PACKAGE_MODELS.mkdir(exist_ok=True)
        for input_type in (MAIN, EYE):
            run = self.out / 'runs' / input_type.name
            shutil.copyfile(run / train.MODEL_FILE, PACKAGE_MODELS / f'{input_type.name}.onnx')
            shutil.copyfile(run / train.CARD_FILE,
                            PACKAGE_MODELS / f'{input_type.name}.model_card.json')
            target = PACKAGE_REPORTS / input_type.name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(self.out / 'reports' / input_type.name, target)
        self.log(f'shipped models to {PACKAGE_MODELS} and reports to {PACKAGE_REPORTS}')


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line of the reproduction."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, required=True, help='run folder')
    parser.add_argument('--epochs', type=int, default=30, help='P2 face and eye models')
    parser.add_argument('--ablation-epochs', type=int, default=10, help='other input types')
    parser.add_argument('--ablation-region', choices=('eye', 'face'), default='eye',
                        help='region of the ablation over P1/P3/single frames (eye: about 12 s '
                             'per epoch on 2 CPU cores; face: ~25x dearer, for a GPU)')
    parser.add_argument('--threshold-target', default=DEFAULT_THRESHOLD_TARGET,
                        choices=THRESHOLD_TARGETS,
                        help='operating point chosen on validation, exported with each model '
                             'and applied in the reports (default %(default)s)')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workers', type=int, default=2, help='data generation processes')
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto')
    parser.add_argument('--max-steps', type=int, default=0,
                        help='cap on training steps per epoch (smoke runs)')
    parser.add_argument('--tiny', action='store_true', help='a tiny protocol (smoke runs)')
    parser.add_argument('--ship', action='store_true', help='copy results into the package')
    parser.add_argument('--no-progress', dest='progress', action='store_false')
    args = parser.parse_args(argv)
    for name in ('epochs', 'ablation_epochs', 'batch_size', 'workers', 'threads'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1')
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the reproduction; one error line and exit 2 if a stage fails."""
    args = parse_args(argv)
    try:
        Reproduction(args).run()
    except (OSError, ValueError, RuntimeError) as error:
        print(f'antispoof_ros.offline.training.reproduce: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
