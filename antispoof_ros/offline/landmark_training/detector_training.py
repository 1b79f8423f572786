"""Train a dlib HOG face detector on synthetic front-flash frames, ahead and camera poses.

dlib's built-in detector is made for frontal photographs: on the 'ahead' pose (the driver
looks at the road, about 35 deg above the camera's axis) it finds a third to two thirds of
the faces. This trains dlib's own HOG + linear SVM trainer (the method of the built-in
detector, Felzenszwalb HOG with a structural SVM) on the frames the detector actually
sees: the synthetic protocol's training split at every frontal-ish pose (ahead, camera,
prints, masks), full 1920x1200 front-flash frames reduced exactly as the tracker reduces
them for a full detection. The box it learns is defined by the true eye corners
(``face_box_around``), so its boxes are consistent by construction; the corner model is then
trained on this detector's boxes (``shape_training``). On a rig, the same trainer takes
annotated rig frames.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
import sys
import time

import dlib
import numpy as np
from tqdm import tqdm

from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.landmarks.backend import FaceBox
from antispoof_ros.landmarks.dlib_backend import HOG_WINDOW_PX, DlibBackend, dlib_rectangle
from antispoof_ros.landmarks.tracker import FaceTracker, TrackerConfig
from antispoof_ros.offline.landmark_training.shape_training import (
    FRONTAL_POSES,
    add_common_arguments,
    check_common_arguments,
    pick_scenarios,
    save_model,
    scenario_group,
)
from antispoof_ros.offline.synthetic.protocol import iter_cycles
from antispoof_ros.offline.synthetic.scene import FULL_MODE, Pose, ScenarioSpec, Split

FRONT = DEFAULT_PATTERN.index(Phase.FRONT)
# Box side and height of the eye line, in outer-corner distances and box sides. The side
# is set by the tracker's smallest face (TrackerConfig.min_face_px = 320 px, which the
# detection downscale maps onto the 80 px HOG window) and the smallest outer-corner distance
# the renderer makes (about 150 px at 80 cm): 2.2 x 150 = 330 px.
BOX_PER_OUTER_DISTANCE = 2.2
EYE_LINE_FROM_TOP = 0.42
TURNED_POSES = (Pose.LEFT45, Pose.RIGHT45)


def face_box_around(corners: np.ndarray) -> FaceBox:
    """The square training box of a face with these true eye corners (EyeCornerPoints order)."""
    return FaceBox.around_eyes(corners, BOX_PER_OUTER_DISTANCE, EYE_LINE_FROM_TOP)


@dataclass(frozen=True)
class DetectorSample:
    """A front frame as the full detection sees it (downscaled) and the face box in it.

    A turned face (45 degree poses) has no box: the detector must leave it alone, since the
    corner model cannot fit its half-hidden far eye.
    """

    image: np.ndarray
    box: FaceBox | None
    corners: np.ndarray  # (4, 2) true eye corners, pixels of ``image``
    scenario: ScenarioSpec


def render_detection_inputs(scenarios: Sequence[ScenarioSpec], cycles: int, workers: int,
                            seed: int = 0, progress: bool = True) -> list[DetectorSample]:
    """Front frames reduced as ``FaceTracker.detect_boxes`` reduces them, with true boxes."""
    tracker = FaceTracker(DlibBackend(), TrackerConfig())
    factor = tracker.detection_scale
    samples = []
    total = sum(min(cycles, spec.n_cycles) for spec in scenarios)
    rendered = iter_cycles(scenarios, FULL_MODE, seed, workers, cycles_per_scenario=cycles)
    for cycle in tqdm(rendered, total=total, unit='frame', disable=not progress,
                      desc='rendering'):
        corners = cycle.truth[FRONT].corners.as_array()
        box = (face_box_around(corners).scaled(factor)
               if cycle.scenario.pose in FRONTAL_POSES else None)
        samples.append(DetectorSample(tracker.downscaled_for_detection(cycle.frames[FRONT]),
                                      box, corners * factor, cycle.scenario))
    return samples


def training_options(threads: int, c: float) -> dlib.simple_object_detector_training_options:
    """Square 80 px window, mirrored copies, no upsampling (the tracker never upsamples)."""
    options = dlib.simple_object_detector_training_options()
    options.detection_window_size = HOG_WINDOW_PX * HOG_WINDOW_PX
    options.add_left_right_image_flips = True
    options.upsample_limit = 0
    options.C = c
    options.num_threads = threads
    return options


def train_detector(samples: Sequence[DetectorSample],
                   options: dlib.simple_object_detector_training_options
                   ) -> dlib.simple_object_detector:
    """Fit the HOG filter; boxes leaving the image are dropped by dlib's own checks."""
    if not samples:
        raise ValueError('no training sample')
    return dlib.train_simple_object_detector(
        [s.image for s in samples],
        [[dlib_rectangle(s.box)] if s.box else [] for s in samples], options)


@dataclass(frozen=True)
class DetectionScore:
    """Found faces and false detections of a detector on labelled frames."""

    frames: int
    found: int
    false_detections: int
    turned: int = 0  # frames of turned faces (no box)
    turned_detected: int = 0  # of them, those with a detection on the face

    def __str__(self) -> str:
        text = ''
        if self.frames:
            text = (f'{self.found}/{self.frames} faces found '
                    f'({100 * self.found / self.frames:.1f} %), ')
        if self.turned:
            text += f'{self.turned_detected}/{self.turned} turned faces detected, '
        return text + f'{self.false_detections} false detections'


def score_detector(backend: DlibBackend, samples: Sequence[DetectorSample]) -> DetectionScore:
    """A face is found by a box around its four eye corners; a box around none is false.

    Box containment, not overlap with the training box, so that detectors with other box
    conventions (dlib's frontal one) are scored fairly.
    """
    found = false = turned_detected = 0
    for sample in samples:
        boxes = backend.detect_faces(sample.image)
        on_face = [box.contains(sample.corners).any() for box in boxes]
        false += on_face.count(False)
        if sample.box is None:
            turned_detected += any(on_face)
        else:
            found += any(box.contains(sample.corners).all() for box in boxes)
    turned = sum(sample.box is None for sample in samples)
    return DetectionScore(len(samples) - turned, found, false, turned, turned_detected)


def main(argv: Sequence[str] | None = None) -> int:
    """Render, train, compare with dlib's frontal detector on held-out subjects, save."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, required=True, help='detector file to write (.svm)')
    parser.add_argument('--scenarios', type=int, default=400,
                        help='training-split scenarios (all 384 frontal ones by default)')
    parser.add_argument('--turned-scenarios', type=int, default=150,
                        help='training-split scenarios at 45 degrees, the faces to leave alone')
    parser.add_argument('--cycles', type=int, default=2, help='front frames per scenario')
    parser.add_argument('--c', type=float, default=20.0,
                        help='SVM regularisation C (20 and 50 tied on validation, 2 and 5 worse)')
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    check_common_arguments(parser, args)
    if args.c <= 0 or args.turned_scenarios < 0:
        parser.error('--c must be positive, --turned-scenarios at least 0')
    if not args.out.parent.is_dir():
        parser.error(f'no such folder: {args.out.parent}')
    started = time.monotonic()
    training = render_detection_inputs(
        pick_scenarios(Split.TRAIN, args.scenarios, args.seed)
        + pick_scenarios(Split.TRAIN, args.turned_scenarios, args.seed, TURNED_POSES),
        args.cycles, args.workers, args.seed, args.progress)
    validation = render_detection_inputs(
        pick_scenarios(Split.VALIDATION, args.validation_scenarios, args.seed)
        + pick_scenarios(Split.VALIDATION, args.validation_scenarios // 2, args.seed,
                         TURNED_POSES), 1, args.workers, args.seed, args.progress)
    print(f'{len(training)} training frames, {len(validation)} validation frames', flush=True)
    detector = train_detector(training, training_options(args.threads, args.c))
    save_model(detector, args.out)
    print(f'trained in {time.monotonic() - started:.0f} s (rendering included) -> {args.out}')
    trained, frontal = DlibBackend(detector_path=args.out), DlibBackend()
    print(f'  training frames: trained {score_detector(trained, training)}')
    print('  validation subjects (never trained on):')
    groups = sorted({scenario_group(s.scenario) for s in validation})
    for group in [*groups, 'all']:
        members = [s for s in validation if group in ('all', scenario_group(s.scenario))]
        print(f'    {group:<16} trained {score_detector(trained, members)}; '
              f'dlib frontal {score_detector(frontal, members)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
