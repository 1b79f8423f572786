"""Eye-corner accuracy on synthetic NIR front-flash frames, per pose and lighting.

    python -m antispoof_ros.landmarks.synthetic_accuracy [--subjects 3] [--species live]

Renders full 1920x1200 front-flash frames of synthetic subjects (antispoof_ros.synthetic)
for every pose and lighting, locates the corners with a fresh tracker per frame (detection
path) and compares them with the renderer's ground truth: faces found, median and 95th
percentile corner error in pixels.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import sys

import numpy as np

from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.landmarks import FaceTracker, TrackerConfig
from antispoof_ros.landmarks.dlib_backend import DlibBackend
from antispoof_ros.landmarks.evaluation import evaluate, summarise
from antispoof_ros.synthetic.render import render_cycle
from antispoof_ros.synthetic.scene import FULL_MODE, Lighting, Pose, ScenarioSpec, Species


def main(argv: Sequence[str] | None = None) -> int:
    """Print the accuracy table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--subjects', type=int, default=3, help='synthetic subjects per cell')
    parser.add_argument('--species', default='live', choices=('live', 'mask'))
    args = parser.parse_args(argv)
    if args.subjects < 1:
        parser.error('--subjects must be at least 1')
    front = DEFAULT_PATTERN.index(Phase.FRONT)
    tracker = FaceTracker(DlibBackend(), TrackerConfig())
    species = Species.parse(args.species)
    print(f'{args.species} faces, 1920x1200 front-flash frames, {args.subjects} subjects per row')
    for pose in Pose:
        for lighting in Lighting:
            frames, truth = [], []
            for subject in range(args.subjects):
                spec = ScenarioSpec(f'accuracy-{pose.value}-{lighting.value}-{subject}',
                                    species, lighting, pose, 1, subject_id=subject,
                                    mask_id=0 if species == Species.MASK else None)
                cycle = render_cycle(spec, 0, mode=FULL_MODE)
                frames.append(cycle.frames[front])
                truth.append(cycle.truth[front].corners)
            errors = []
            for frame, expected in zip(frames, truth, strict=True):
                tracker.reset()  # each frame on its own: the detection path
                errors.append(evaluate(tracker, [frame], [expected])[0])
            print(f"  {pose.value:<8} {lighting.value:<8} {summarise(np.array(errors))}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
