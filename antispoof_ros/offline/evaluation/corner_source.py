"""A face model's test figures with ground-truth eye corners vs the corners landmark_node finds.

The shipped models were trained and tested on pairs aligned with the renderer's ground-truth
corners; on the rig the liveness node aligns with the corners landmark_node detects. This
measures what that costs. For ``--cycles`` cycles of every scenario of the protocol's test
split, each cycle is rendered twice from the same scene draw: at crop resolution (the pixels
the model was trained and tested on) and on the full 1920x1200 sensor (the frame
landmark_node sees). The node's landmark code (``LandmarkPipeline`` with the ``--shape-model``
backend, default ``synthetic``) finds the corners on the full front-flash frame, on the
detection path (a fresh tracker per cycle: protocol cycles are independent samples); they are
mapped into the crop (``(full - crop_origin) * scale``) and the same crop frames are aligned
with either set of corners by the node's alignment code and scored at the model's own
threshold. Cycles without detected corners (45-degree poses, which the detector leaves alone
on purpose) are counted and left out of both columns, so both score the same presentations.

Output (``--out DIR``): ``corner_source.md`` and ``corner_source.json`` (figures both ways,
differences in percentage points, coverage, corner error in full-resolution pixels) and
``corner_source.npz`` (per-cycle corners, both scores and labels).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
import json
import multiprocessing
import os
from pathlib import Path
import sys

import cv2
import numpy as np
from tqdm import tqdm

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, Phase, pair_config
from antispoof_ros.landmarks import FaceTracker, TrackerConfig
from antispoof_ros.landmarks.dlib_backend import SHAPE_MODELS, backend_for
from antispoof_ros.landmarks.pipeline import LandmarkPipeline
from antispoof_ros.liveness.alignment import align_pair, region_by_name
from antispoof_ros.liveness.model_metadata import ModelMetadata
from antispoof_ros.offline.atomic_file import write_atomically
from antispoof_ros.offline.evaluation.metrics import Evaluation, evaluate_at_threshold
from antispoof_ros.offline.evaluation.report import file_sha256
from antispoof_ros.offline.synthetic.protocol import (
    ProtocolConfig,
    build_protocol,
    restrict_to_splits,
)
from antispoof_ros.offline.synthetic.render import render_cycle
from antispoof_ros.offline.synthetic.scene import (
    CROP_MODE,
    FULL_MODE,
    ScenarioSpec,
    Species,
    Split,
)
from antispoof_ros.offline.training.reproduce import onnx_scores
from antispoof_ros.paths import SHIPPED_MODELS

PROGRAM = 'antispoof_ros.offline.evaluation.corner_source'
FRONT = DEFAULT_PATTERN.index(Phase.FRONT)
#: A metric that loses more than this (percentage points) with detected corners asks for a
#: model trained on what the node sees.
TOLERANCE_PP = 0.5
FIGURES = ('apcer_max', 'bpcer', 'acer')

_tracker: FaceTracker | None = None


@dataclass(frozen=True)
class CornerCycle:
    """One test cycle: crop frames, both corner sets (crop pixels) and what it shows."""

    frames: np.ndarray  # (phases, H, W) crop-resolution frames
    truth: np.ndarray  # (4, 2) ground-truth corners in crop pixels
    detected: np.ndarray  # (4, 2) detected corners in crop pixels, NaN without a face
    species: str  # PAI species as the evaluation names it ('live', 'print_nir', 'mask', ...)
    label: int
    pose: str  # 'none' for prints


def pai_species(spec: ScenarioSpec) -> str:
    """Evaluation species of a scenario: prints by kind, as in the training caches."""
    if spec.species is Species.PRINT:
        return f'print_{spec.print_kind.value}'
    return spec.species.value


def _init_worker(shape_model: str) -> None:
    global _tracker
    cv2.setNumThreads(1)
    _tracker = FaceTracker(backend_for(shape_model), TrackerConfig())


def _corner_task(task: tuple[ScenarioSpec, int, int]) -> CornerCycle:
    """Render one cycle both ways and find its corners as landmark_node would."""
    spec, index, seed = task
    crop = render_cycle(spec, index, CROP_MODE, seed)
    full = render_cycle(spec, index, FULL_MODE, seed)
    _tracker.reset()  # each protocol cycle is an independent sample: the detection path
    result = LandmarkPipeline(_tracker).answer(full.frames[FRONT])
    detected = np.full((4, 2), np.nan)
    if result.ok:
        detected = (result.corners.as_array() - np.asarray(crop.crop_origin)) * CROP_MODE.scale
    return CornerCycle(crop.frames, crop.truth[FRONT].corners.as_array(), detected,
                       pai_species(spec), int(spec.is_live),
                       spec.pose.value if spec.pose else 'none')


def _indices(spec: ScenarioSpec, cycles: int, first: int) -> range:
    return range(first, min(first + cycles, spec.n_cycles))


def iter_corner_cycles(scenarios: Sequence[ScenarioSpec], cycles: int, seed: int,
                       shape_model: str, workers: int, first: int = 0) -> Iterator[CornerCycle]:
    """Cycles ``first`` to ``first + cycles - 1`` of every scenario, rendered and located.

    Cycles are independent samples: another ``first`` adds presentations to an earlier run.
    """
    tasks = [(spec, i, seed) for spec in scenarios for i in _indices(spec, cycles, first)]
    if workers <= 1:
        _init_worker(shape_model)
        yield from map(_corner_task, tasks)
        return
    context = multiprocessing.get_context('spawn')  # forked OpenCV pools can deadlock
    with context.Pool(workers, initializer=_init_worker, initargs=(shape_model,)) as pool:
        yield from pool.imap(_corner_task, tasks, chunksize=4)


def aligned_crops(cycles: Sequence[CornerCycle], corners: str,
                  metadata: ModelMetadata) -> np.ndarray:
    """The model's input pairs, aligned with each cycle's ``truth`` or ``detected`` corners."""
    config = pair_config(metadata.pair)
    target = region_by_name(metadata.region)
    a, b = (DEFAULT_PATTERN.index(phase) for phase in (config.phase_a, config.phase_b))
    return np.stack([
        align_pair(c.frames[a], c.frames[b],
                   EyeCornerPoints.from_array(getattr(c, corners)), target, metadata.eye)
        for c in cycles])


def _pp(evaluation: Evaluation) -> dict[str, float]:
    figures = {name: 100.0 * getattr(evaluation, name) for name in FIGURES}
    figures.update({f'apcer_{k}': 100.0 * v for k, v in evaluation.apcer.items()})
    return figures


def model_metadata(model: Path) -> ModelMetadata:
    """The metadata an exported model carries (threshold, region, eye), as the node reads it."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=['CPUExecutionProvider'])
    return ModelMetadata.from_onnx_properties(session.get_modelmeta().custom_metadata_map)


def compare(cycles: Sequence[CornerCycle], model: Path) -> dict:
    """Score the cycles with both corner sets at the model's threshold; figures in %."""
    metadata = model_metadata(model)
    found = np.array([np.isfinite(c.detected).all() for c in cycles])
    used = [c for c, ok in zip(cycles, found, strict=True) if ok]
    if not used:
        raise ValueError('the landmark pipeline found no face in any cycle')
    labels = np.array([c.label for c in used])
    species = np.array([c.species for c in used])
    scores, evaluations = {}, {}
    for source in ('truth', 'detected'):
        crops = aligned_crops(used, source, metadata)
        scores[source] = onnx_scores(model, crops)
        evaluations[source] = evaluate_at_threshold(scores[source], labels, species,
                                                    metadata.threshold)
    truth_pp, detected_pp = _pp(evaluations['truth']), _pp(evaluations['detected'])
    loss = {name: detected_pp[name] - truth_pp[name] for name in truth_pp}
    scale = 1.0 / CROP_MODE.scale  # corner error in full-resolution (sensor) pixels
    error = np.linalg.norm([c.detected - c.truth for c in used], axis=2) * scale
    offsets = np.array([c.detected - c.truth for c in used]) * scale
    all_species = sorted({c.species for c in cycles})
    return {
        'model': {'file': str(model), 'sha256': file_sha256(model), 'name': metadata.name,
                  'threshold': metadata.threshold},
        'cycles': len(cycles),
        'scored': len(used),
        'coverage': {name: {'cycles': sum(c.species == name for c in cycles),
                            'with_corners': sum(c.species == name for c in used)}
                     for name in all_species},
        'missing_by_pose': {pose: int(sum(1 for c, ok in zip(cycles, found, strict=True)
                                          if not ok and c.pose == pose))
                            for pose in sorted({c.pose for c in cycles})},
        'counts': {'bona_fide': evaluations['truth'].bona_fide_count,
                   **evaluations['truth'].attack_counts},
        'percent': {'ground_truth': truth_pp, 'detected': detected_pp},
        'loss_pp': loss,
        'max_loss_pp': max(loss.values()),
        'over_tolerance': max(loss.values()) > TOLERANCE_PP,
        'tolerance_pp': TOLERANCE_PP,
        'corner_error_px': {
            'median': float(np.median(error)), 'p95': float(np.percentile(error, 95)),
            'max': float(error.max()),
            'offset_mean_xy': offsets.reshape(-1, 2).mean(0).tolist(),
            'offset_std_xy': offsets.reshape(-1, 2).std(0).tolist(),
            'per_corner_median': np.median(error, axis=0).tolist(),
        },
        'score_change': {'median_abs': float(np.median(np.abs(scores['detected']
                                                               - scores['truth']))),
                         'max_abs': float(np.max(np.abs(scores['detected'] - scores['truth'])))},
    }, {'score_truth': scores['truth'], 'score_detected': scores['detected'],
        'labels': labels, 'species': species}


def markdown(result: dict, command: str) -> str:
    """The comparison as a Markdown table with its provenance."""
    truth, detected = result['percent']['ground_truth'], result['percent']['detected']
    rows = ['| figure | ground-truth corners | landmark_node corners | difference (pp) |',
            '|---|---:|---:|---:|']
    for name in truth:
        rows.append(f'| {name} | {truth[name]:.2f} % | {detected[name]:.2f} % | '
                    f'{result["loss_pp"][name]:+.2f} |')
    counts = ', '.join(f'{name} {n}' for name, n in result['counts'].items())
    coverage = ', '.join(f'{name} {c["with_corners"]}/{c["cycles"]}'
                         for name, c in result['coverage'].items())
    error = result['corner_error_px']
    verdict = ('exceeds' if result['over_tolerance'] else 'is within')
    change = result['score_change']
    return '\n'.join([
        '# Ground-truth vs detected eye corners (P2 face)',
        '',
        f'Command: `{command}`',
        '',
        f'Model `{result["model"]["name"]}` (sha256 `{result["model"]["sha256"]}`), its own '
        f'threshold {result["model"]["threshold"]:.4f}. {result["scored"]} of '
        f'{result["cycles"]} test cycles had detected corners and are scored both ways '
        f'({coverage}); cycles without corners by pose: {result["missing_by_pose"]}.',
        '',
        f'Presentations scored: {counts}.',
        '',
        *rows,
        '',
        f'Largest loss {result["max_loss_pp"]:+.2f} pp: {verdict} the '
        f'{result["tolerance_pp"]} pp tolerance. Scores changed by a median '
        f'{change["median_abs"]:.2g} (max {change["max_abs"]:.2g}).',
        '',
        f'Corner error (detected - ground truth, 1920x1200 sensor pixels): median '
        f'{error["median"]:.2f}, 95th percentile {error["p95"]:.2f}, max {error["max"]:.2f}; '
        f'mean offset x/y {error["offset_mean_xy"][0]:+.2f} / {error["offset_mean_xy"][1]:+.2f}, '
        f'standard deviation x/y {error["offset_std_xy"][0]:.2f} / '
        f'{error["offset_std_xy"][1]:.2f}.',
        '',
    ])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (see module docstring)."""
    parser = argparse.ArgumentParser(prog=f'python -m {PROGRAM}',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, required=True, help='report folder')
    parser.add_argument('--model', type=Path, default=SHIPPED_MODELS / 'p2_face.onnx')
    parser.add_argument('--seed', type=int, default=0, help='protocol seed (default 0)')
    parser.add_argument('--cycles', type=int, default=1, help='cycles per test scenario')
    parser.add_argument('--first-cycle', type=int, default=0,
                        help='index of the first cycle of each scenario (another batch)')
    parser.add_argument('--scenarios', type=int, default=0,
                        help='only the first N test scenarios of each species (0: all)')
    parser.add_argument('--shape-model', default='synthetic', choices=tuple(SHAPE_MODELS))
    parser.add_argument('--workers', type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    if min(args.cycles, args.workers) < 1 or min(args.scenarios, args.first_cycle) < 0:
        parser.error('--cycles and --workers must be at least 1, --scenarios and '
                     '--first-cycle at least 0')
    return args


def held_out_scenarios(seed: int, per_species: int = 0) -> list[ScenarioSpec]:
    """The default protocol's test split, optionally the first N scenarios per species."""
    scenarios = restrict_to_splits(build_protocol(ProtocolConfig(seed=seed)),
                                   [Split.TEST]).scenarios
    if not per_species:
        return scenarios
    taken: dict[str, int] = {}
    picked = []
    for spec in scenarios:
        if taken.get(pai_species(spec), 0) < per_species:
            taken[pai_species(spec)] = taken.get(pai_species(spec), 0) + 1
            picked.append(spec)
    return picked


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison and write the report; one error line and exit 2 on bad input."""
    args = parse_args(argv)
    try:
        scenarios = held_out_scenarios(args.seed, args.scenarios)
        total = sum(len(_indices(spec, args.cycles, args.first_cycle)) for spec in scenarios)
        cycles = list(tqdm(iter_corner_cycles(scenarios, args.cycles, args.seed,
                                              args.shape_model, args.workers, args.first_cycle),
                           total=total, desc='rendering and locating', unit='cycle',
                           mininterval=30))
        result, columns = compare(cycles, args.model)
        result['shape_model'] = args.shape_model
        result['seed'] = args.seed
        result['cycle_indices'] = [args.first_cycle, args.first_cycle + args.cycles - 1]
        args.out.mkdir(parents=True, exist_ok=True)
        corners = {'corners_truth': np.stack([c.truth for c in cycles]),
                   'corners_detected': np.stack([c.detected for c in cycles])}
        write_atomically(args.out / 'corner_source.npz',
                         lambda handle: np.savez(handle, **columns, **corners))
        command = f'python -m {PROGRAM} ' + ' '.join(sys.argv[1:] if argv is None else argv)
        (args.out / 'corner_source.json').write_text(json.dumps(result, indent=1))
        (args.out / 'corner_source.md').write_text(markdown(result, command))
    except (OSError, ValueError) as error:
        print(f'{PROGRAM}: error: {error}', file=sys.stderr)
        return 2
    print(args.out / 'corner_source.md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
