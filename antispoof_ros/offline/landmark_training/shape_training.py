"""Train dlib shape predictors for the four eye corners on frames with known corners.

dlib's public 5-point model is trained on photographs; on the renderer's mannequin-like faces
its corners land 15-25 px from the ground truth even where the face is found, and drawing
darker lid margins into the renderer did not change that (measured). The thesis used a
tracker made for its NIR faces; this is the open equivalent: dlib's own shape-predictor
trainer (regression-tree cascade, Kazemi & Sullivan 2014) fitted to frames whose corners are
known. Here the frames are the synthetic protocol's training split (subjects and masks of
the liveness model's training split only), rendered at full sensor resolution around the
face and boxed by the same HOG detection the tracker runs (the detector of
``detector_training``); on a rig, the same trainer takes annotated rig frames. The model's
four parts are the corners in ``EyeCornerPoints`` order, so ``DlibBackend(model_path)`` uses
it in place of the 5-point model. The optional second model refines: it learns the corners in
a box placed by the true corners (``REFINE_BOX``) and is fitted in the box the first model's
corners place (``DlibBackend(..., refine_path=...)``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
import sys
import time

import dlib
import numpy as np
from tqdm import tqdm

from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.landmarks.backend import FaceBox
from antispoof_ros.landmarks.dlib_backend import (
    BOX_SHIFTS,
    REFINE_BOX,
    SYNTHETIC_FACE_DETECTOR,
    DlibBackend,
    dlib_rectangle,
)
from antispoof_ros.landmarks.tracker import FaceTracker
from antispoof_ros.offline.atomic_file import write_atomically
from antispoof_ros.offline.synthetic.protocol import ProtocolConfig, build_protocol, iter_cycles
from antispoof_ros.offline.synthetic.scene import Pose, RenderMode, ScenarioSpec, Split

# Full sensor resolution around the face: the pixels the tracker fits at, 5x cheaper to
# render than the whole 1920x1200 frame.
LANDMARK_MODE = RenderMode('landmark', 768, 768, 1.0, False)
FRONT = DEFAULT_PATTERN.index(Phase.FRONT)
FRONTAL_POSES = (Pose.AHEAD, Pose.CAMERA, None)
# Box jitter of the refinement model's training copies (box sizes): about 8 px at the
# usual face size, several times the first fit's typical error.
REFINE_JITTER = 0.03


@dataclass(frozen=True)
class CornerSample:
    """One front frame (region around the face), its detector box and true corners."""

    image: np.ndarray  # 2-D uint8
    box: FaceBox
    corners: np.ndarray  # (4, 2) in EyeCornerPoints order, pixels of ``image``
    scenario: ScenarioSpec

    @property
    def group(self) -> str:
        """Species and pose (or print kind), the rows of the validation table."""
        return scenario_group(self.scenario)


def scenario_group(spec: ScenarioSpec) -> str:
    """Species and pose, or species and print kind (prints have no pose)."""
    detail = spec.print_kind.value if spec.print_kind else spec.pose.value
    return f'{spec.species.value} {detail}'


def pick_scenarios(split: Split, count: int, seed: int = 0,
                   poses: tuple[Pose | None, ...] = FRONTAL_POSES) -> list[ScenarioSpec]:
    """Up to ``count`` scenarios of one split of the default protocol, a seeded sample.

    By default only the poses the detector is made for (ahead, towards the camera; prints
    have no pose): a corner model is only ever fitted in a detector box, and the detector
    is trained to leave the 45 degree poses alone.
    """
    scenarios = [s for s in build_protocol(ProtocolConfig(seed=seed)).scenarios
                 if s.split is split and s.pose in poses]
    rng = np.random.default_rng([seed, 505])
    chosen = rng.choice(len(scenarios), min(count, len(scenarios)), replace=False)
    return [scenarios[i] for i in sorted(chosen)]


def detected_box(tracker: FaceTracker, frame: np.ndarray, corners: np.ndarray) -> FaceBox | None:
    """The tracker's full-detection box around the true face, or None where HOG misses it."""
    return next((box for box in tracker.detect_boxes(frame) if box.contains(corners).all()),
                None)


def render_samples(scenarios: Sequence[ScenarioSpec], cycles: int = 1, workers: int = 1,
                   seed: int = 0, progress: bool = True,
                   detector_path: Path | None = SYNTHETIC_FACE_DETECTOR
                   ) -> tuple[list[CornerSample], int]:
    """Front frames with detector boxes, and how many frames had no detection.

    ``cycles`` front frames per scenario, each cycle with its own head motion and gaze;
    the boxes come from the HOG detector in ``detector_path`` (None: dlib's frontal one),
    the detector the corner model will be used with.
    """
    tracker = FaceTracker(DlibBackend(detector_path=detector_path))
    samples, missed = [], 0
    rendered = iter_cycles(scenarios, LANDMARK_MODE, seed, workers, cycles_per_scenario=cycles)
    total = sum(min(cycles, spec.n_cycles) for spec in scenarios)
    for cycle in tqdm(rendered, total=total, unit='frame', disable=not progress,
                      desc='rendering'):
        frame = cycle.frames[FRONT]
        corners = cycle.truth[FRONT].corners.as_array()
        box = detected_box(tracker, frame, corners)
        if box is None:
            missed += 1
            continue
        samples.append(CornerSample(frame, box, corners, cycle.scenario))
    return samples, missed


def training_options(threads: int, seed: int = 0,
                     jitter: float = 0.1) -> dlib.shape_predictor_training_options:
    """The trainer's settings: dlib's defaults, a deeper cascade and more oversampling.

    ``jitter``: random box moves (in box sizes) of the oversampled copies; 0.1 for detector
    boxes, ``REFINE_JITTER`` for the refinement boxes, whose place is off only by the first
    fit's error.
    """
    options = dlib.shape_predictor_training_options()
    options.cascade_depth = 12
    options.tree_depth = 4
    options.num_trees_per_cascade_level = 500
    options.oversampling_amount = 30
    options.oversampling_translation_jitter = jitter
    options.num_threads = threads
    options.random_seed = str(seed)
    return options


def train_predictor(samples: Sequence[CornerSample],
                    options: dlib.shape_predictor_training_options) -> dlib.shape_predictor:
    """Fit the regression-tree cascade to the samples' corners."""
    if not samples:
        raise ValueError('no training sample: the detector found no face')
    detections = [[dlib.full_object_detection(
        dlib_rectangle(s.box), [dlib.point(round(x), round(y)) for x, y in s.corners])]
        for s in samples]
    return dlib.train_shape_predictor([s.image for s in samples], detections, options)


def refinement_samples(samples: Sequence[CornerSample]) -> list[CornerSample]:
    """The samples boxed for the second-stage model: ``REFINE_BOX`` around the true corners."""
    return [replace(s, box=FaceBox.around_eyes(s.corners, *REFINE_BOX)) for s in samples]


def corner_errors(backend: DlibBackend, samples: Iterable[CornerSample]) -> np.ndarray:
    """Euclidean error (px) of every corner the backend fits in the samples' boxes."""
    errors = [np.hypot(*(backend.fit_corners(s.image, s.box)[0].as_array() - s.corners).T)
              for s in samples]
    return np.concatenate(errors) if errors else np.zeros(0)


def describe(errors: np.ndarray) -> str:
    """Median and 95th percentile in pixels."""
    if errors.size == 0:
        return 'no corners'
    return (f'median {np.median(errors):.2f} px, p95 {np.percentile(errors, 95):.2f} px '
            f'({errors.size} corners)')


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options this trainer shares with ``detector_training``."""
    parser.add_argument('--validation-scenarios', type=int, default=100)
    parser.add_argument('--workers', type=int, default=2, help='rendering processes')
    parser.add_argument('--threads', type=int, default=2, help='dlib training threads')
    parser.add_argument('--seed', type=int, default=0, help='protocol and sampling seed')
    parser.add_argument('--no-progress', dest='progress', action='store_false')


def check_common_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit 2 with one line on counts below 1 (the common ones, --scenarios and --cycles)."""
    if min(args.scenarios, args.cycles, args.validation_scenarios, args.workers,
           args.threads) < 1:
        parser.error('--scenarios, --cycles, --validation-scenarios, --workers and --threads '
                     'must be at least 1')


def main(argv: Sequence[str] | None = None) -> int:
    """Render, train, compare with the 5-point model on held-out subjects, save."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, required=True, help='model file to write (.dat)')
    parser.add_argument('--refine-out', type=Path,
                        help='also train the second-stage (refinement) model into this file')
    parser.add_argument('--scenarios', type=int, default=400,
                        help='training-split scenarios (all 384 frontal ones by default)')
    parser.add_argument('--cycles', type=int, default=4,
                        help='front frames per training scenario')
    parser.add_argument('--detector', type=Path, default=SYNTHETIC_FACE_DETECTOR,
                        help='HOG detector file whose boxes the model learns to fit in')
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    check_common_arguments(parser, args)
    for out in (args.out, args.refine_out):
        if out is not None and not out.parent.is_dir():
            parser.error(f'no such folder: {out.parent}')
    if not args.detector.is_file():
        parser.error(f'no such detector file: {args.detector}')
    started = time.monotonic()
    training, missed = render_samples(pick_scenarios(Split.TRAIN, args.scenarios, args.seed),
                                      args.cycles, args.workers, args.seed, args.progress,
                                      args.detector)
    print(f'training: {len(training)} faces found by the detector, {missed} frames without',
          flush=True)
    validation, missed_val = render_samples(
        pick_scenarios(Split.VALIDATION, args.validation_scenarios, args.seed),
        1, args.workers, args.seed, args.progress, args.detector)
    print(f'validation: {len(validation)} faces, {missed_val} frames without', flush=True)
    try:
        save_model(train_predictor(training, training_options(args.threads, args.seed)),
                   args.out)
        if args.refine_out:
            save_model(train_predictor(refinement_samples(training), training_options(
                args.threads, args.seed, REFINE_JITTER)), args.refine_out)
    except ValueError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(f'trained in {time.monotonic() - started:.0f} s (rendering included)')
    models = {'one fit': DlibBackend(args.out),
              'five fits': DlibBackend(args.out, box_shifts=BOX_SHIFTS)}
    if args.refine_out:
        models['five + refine'] = DlibBackend(args.out, box_shifts=BOX_SHIFTS,
                                              refine_path=args.refine_out)
    models['dlib 5-point'] = DlibBackend()
    print('  corner error, training subjects:')
    for name, backend in list(models.items())[:-1]:
        print(f'    {name:<14} {describe(corner_errors(backend, training))}')
    print('  validation subjects (never trained on):')
    for group in sorted({sample.group for sample in validation}) + ['all']:
        members = [s for s in validation if group in ('all', s.group)]
        for name, backend in models.items():
            print(f'    {group:<16} {name:<14} {describe(corner_errors(backend, members))}')
    return 0


def save_model(model: dlib.shape_predictor | dlib.simple_object_detector, path: Path) -> None:
    """Write a trained dlib model to ``path`` atomically.

    dlib saves only to a path: the model is saved aside, read back and written in one step.
    """
    scratch = path.with_name(f'.{path.name}.dlib-save')
    try:
        model.save(str(scratch))
        data = scratch.read_bytes()
    finally:
        scratch.unlink(missing_ok=True)
    write_atomically(path, lambda handle: handle.write(data))
    print(f'wrote {path}', flush=True)


if __name__ == '__main__':
    sys.exit(main())
