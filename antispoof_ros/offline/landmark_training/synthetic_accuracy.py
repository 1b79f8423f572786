"""Eye-corner accuracy on synthetic NIR front-flash frames, per pose and lighting.

Renders full 1920x1200 front-flash frames of the synthetic protocol's held-out test subjects
(and its test mask) for every pose and lighting, ``--cycles`` independent samples (head position,
angles, gaze) of each, locates the corners with a fresh tracker per
frame (the detection path: HOG on the 1/4 frame, shape fit at full resolution) and compares
them with the renderer's ground truth: faces found, median and 95th percentile corner error
in pixels. ``five-point`` is dlib's public model (made for photographs), ``synthetic`` the
corner model trained on the protocol's training subjects (``shape_training``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import sys

import numpy as np

from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.landmarks import FaceTracker, TrackerConfig
from antispoof_ros.landmarks.dlib_backend import SHAPE_MODELS, backend_for
from antispoof_ros.offline.landmark_training.evaluation import evaluate, summarise
from antispoof_ros.offline.synthetic.protocol import ProtocolConfig, assign_splits, iter_cycles
from antispoof_ros.offline.synthetic.scene import (
    FULL_MODE,
    Lighting,
    Pose,
    ScenarioSpec,
    Species,
    Split,
)


def held_out_test_members(seed: int = 0) -> tuple[list[int], list[int]]:
    """Subjects and masks the default protocol holds out for testing."""
    config = ProtocolConfig(seed=seed)
    plan = assign_splits(config.subjects, config.masks, seed, config.validation_fraction,
                         config.test_fraction)
    return plan.subjects_in(Split.TEST), sorted(
        mask for mask, split in plan.masks.items() if split is Split.TEST)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the accuracy table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--subjects', type=int, default=6, help='test subjects per cell')
    parser.add_argument('--cycles', type=int, default=4,
                        help='samples per subject and cell (4 corners each)')
    parser.add_argument('--workers', type=int, default=2, help='rendering processes')
    parser.add_argument('--species', default='live', choices=('live', 'mask'))
    parser.add_argument('--model', default='both', choices=(*SHAPE_MODELS, 'both'))
    args = parser.parse_args(argv)
    if min(args.subjects, args.cycles, args.workers) < 1:
        parser.error('--subjects, --cycles and --workers must be at least 1')
    models = list(SHAPE_MODELS) if args.model == 'both' else [args.model]
    trackers = {name: FaceTracker(backend_for(name), TrackerConfig()) for name in models}
    subjects, masks = held_out_test_members()
    subjects = subjects[:args.subjects]
    species = Species.parse(args.species)
    front = DEFAULT_PATTERN.index(Phase.FRONT)
    print(f'{args.species} faces of {len(subjects)} held-out test subjects x {args.cycles} '
          'samples per cell, 1920x1200 front-flash frames, fresh detection per frame')
    for pose in Pose:
        for lighting in Lighting:
            specs = [ScenarioSpec(
                f'accuracy-{pose.value}-{lighting.value}-{subject}', species, lighting, pose,
                args.cycles, subject_id=subject,
                mask_id=masks[0] if species is Species.MASK else None) for subject in subjects]
            cycles = list(iter_cycles(specs, FULL_MODE, workers=args.workers))
            for name, tracker in trackers.items():
                errors = []
                for cycle in cycles:
                    tracker.reset()  # each frame on its own: the detection path
                    errors.append(evaluate(tracker, [cycle.frames[front]],
                                           [cycle.truth[front].corners])[0])
                print(f'  {pose.value:<8} {lighting.value:<8} {name:<10} '
                      f'{summarise(np.array(errors))}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
