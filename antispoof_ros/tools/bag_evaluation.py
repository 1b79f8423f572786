"""Evaluate a model on a bag twice: through the real liveness node, and directly.

    python -m antispoof_ros.tools.bag_evaluation --bag BAG --out DIR
        [--model antispoof_ros/models/p2_face.onnx] [--pair P] [--region R] [--eye E]
        [--corners ground-truth|landmark-node] [--shape-model synthetic]

Through the nodes: ``liveness_node`` runs as its own process (shared-memory DDS), the bag
is replayed without loss (antispoof_ros.offline.bagtools.replay), and every published
LivenessResult's per-pair score is collected. Its corners are the bag's ground truth, or
(``--corners landmark-node``, the only choice for a recording from the rig) those a
``landmark_node`` process finds on the replayed front frames (the replay then runs at the
recorded speed). Directly: the same bag is read with rosbags, the corners are the ground
truth or those the node's landmark pipeline (antispoof_ros.landmarks.pipeline) finds on the
front frames in order, and each cycle's set goes through the node's liveness pipeline
(antispoof_ros.liveness.pipeline) in this process.

Each pair is labelled by the label segment its frame B falls in. Both score sets get the
ISO/IEC 30107-3 figures at the model's own threshold (``comparison.json``; the node's scores
also as a full report in ``DIR/report``), and the per-pair scores are compared (they should
agree to float precision: same bytes, same code, same model, the tracker seeing the same
frames in the same order). Both use the pair, region and eye the model was trained for; a
--pair, --region or --eye that contradicts the model is one error line (exit 2) before any
node starts, and a node that ends early is named with its last error line and its log.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from functools import partial
import json
import math
from pathlib import Path
import sys

import numpy as np
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader
from rosbags.rosbag2.errors import ReaderError

from antispoof_ros.flash import Phase, pair_config
from antispoof_ros.landmarks.dlib_backend import backend_for
from antispoof_ros.landmarks.pipeline import LandmarkPipeline
from antispoof_ros.landmarks.tracker import FaceTracker, TrackerConfig
from antispoof_ros.liveness.inference import LivenessModel
from antispoof_ros.liveness.pairing import CornerInfo, CornerStatus, FrameInfo, PairValidator
from antispoof_ros.liveness.pipeline import LivenessPipeline
from antispoof_ros.msg import EyeCorners, FlashFrame, LivenessResult
from antispoof_ros.nodes.image_conversion import image_to_array
from antispoof_ros.nodes.topics import flash_frame_topic
from antispoof_ros.offline.bagtools import BagToolError
from antispoof_ros.offline.bagtools.labels import read_label_segments
from antispoof_ros.offline.cli import EXIT_BAD_INPUT, EXIT_FAILED, OneLineArgumentParser, fail
from antispoof_ros.offline.evaluation.metrics import (
    Presentations,
    ThresholdChoice,
    evaluate_at_threshold,
)
from antispoof_ros.offline.evaluation.report import (
    ModelIdentity,
    ReportRequest,
    ScoreTable,
    write_report,
)
from antispoof_ros.tools.harness.node_replay import (
    GROUND_TRUTH_CORNERS,
    NodeReplayError,
    add_model_arguments,
    liveness_parameters,
    replay_through_liveness_node,
)

PROGRAM = 'antispoof_ros.tools.bag_evaluation'


def species_of(labels: dict) -> str:
    """PAI species name of a label segment, as the training data names it."""
    if labels['species'] == 'print' and labels.get('print_kind'):
        return f"print_{labels['print_kind']}"
    return str(labels['species'])


class SegmentLookup:
    """Which label segment (scenario) a bag time belongs to."""

    def __init__(self, bag: Path) -> None:
        self.segments = read_label_segments(bag)
        self.starts = [segment.start_ns for segment in self.segments]

    def labels(self, stamp_ns: int) -> dict:
        """Labels of the segment holding ``stamp_ns``."""
        return self.segments[max(bisect_right(self.starts, stamp_ns) - 1, 0)].labels


def tracked_corners(frames: Sequence[FlashFrame], shape_model: str) -> dict[int, CornerInfo]:
    """Corners the landmark node's pipeline finds on these frames, by frame counter.

    ``frames`` go in the order the node would receive them; frames without a face are left
    out, so their pairs drop as the node's do.
    """
    pipeline = LandmarkPipeline(FaceTracker(backend_for(shape_model), TrackerConfig()))
    corners = {}
    for frame in frames:
        result = pipeline.answer(partial(image_to_array, frame.image))
        if result.ok:
            corners[frame.frame_counter] = CornerInfo(CornerStatus.OK, frame.frame_counter,
                                                      result.corners)
        pipeline.refresh_if_due()
    return corners


# Frames of a bag by (phase, cycle index).
CycleFrames = Mapping[tuple[Phase, int], FlashFrame]


def score_pairs(pipeline: LivenessPipeline, frames: CycleFrames,
                corners: Mapping[int, CornerInfo]) -> dict[int, float]:
    """Score of every cycle's pair by frame B's counter (NaN where the pipeline gave none).

    Each cycle's set is frame A and frame B of the pipeline's pair and the corners of the
    cycle's landmark-phase frame, as the node's synchronizer matches them; cycles go in
    order, as the camera sends them.
    """
    validator = pipeline.validator
    phase_a, phase_b = validator.config.phase_a, validator.config.phase_b
    scores = {}
    for phase, cycle in sorted(frames):
        frame_a, frame_b = frames[(phase, cycle)], frames.get((phase_b, cycle))
        if phase != phase_a or frame_b is None:
            continue
        landmark_frame = frames.get((validator.landmark_phase, cycle))
        result = pipeline.score(
            FrameInfo.from_msg(frame_a), FrameInfo.from_msg(frame_b),
            corners.get(landmark_frame.frame_counter) if landmark_frame is not None else None,
            partial(image_to_array, frame_a.image), partial(image_to_array, frame_b.image),
        )
        scores[frame_b.frame_counter] = result.outcome.score
    return scores


def direct_scores(bag: Path, model: LivenessModel,
                  shape_model: str | None = None) -> dict[int, float]:
    """Score of every complete pair of the bag by frame B's counter, computed in-process.

    Pairs are checked as the node checks them with its default flash pattern and landmark
    phase. Corners: the bag's ground truth, or (``shape_model``) the landmark pipeline's on
    the landmark-phase frames.
    """
    pipeline = LivenessPipeline(model, PairValidator(pair_config(model.metadata.pair)))
    validator = pipeline.validator
    phases = {validator.config.phase_a, validator.config.phase_b, validator.landmark_phase}
    topics = {f'/{flash_frame_topic(phase)}': phase for phase in phases}
    frames: dict[tuple[Phase, int], FlashFrame] = {}
    corners: dict[int, CornerInfo] = {}
    with Reader(bag) as reader:
        wanted = [c for c in reader.connections
                  if c.topic in topics or c.topic == GROUND_TRUTH_CORNERS]
        for connection, _stamp, raw in reader.messages(connections=wanted):
            if connection.topic == GROUND_TRUTH_CORNERS:
                info = CornerInfo.from_msg(deserialize_message(raw, EyeCorners))
                corners[info.frame_counter] = info
            else:
                frame = deserialize_message(raw, FlashFrame)
                frames[(topics[connection.topic], frame.cycle_index)] = frame
    if shape_model is not None:
        corners = tracked_corners([frames[key] for key in sorted(frames)
                                   if key[0] == validator.landmark_phase], shape_model)
    return score_pairs(pipeline, frames, corners)


def node_scores(bag: Path, model_path: Path, shape_model: str | None = None,
                **choices: str | None) -> dict[int, float]:
    """Per-pair scores published by liveness_node while the bag is replayed to it.

    ``choices``: the node's ``pair``, ``region``, ``eye`` where given (else the model's).
    """
    results: dict[int, float] = {}

    def keep(result: LivenessResult) -> None:
        if result.frame_counter_b:  # not a timeout notice
            results[result.frame_counter_b] = result.score

    replay_through_liveness_node(bag, model_path, keep, rate=None if shape_model is None else 1.0,
                                 shape_model=shape_model, **choices)
    return results


def score_table(scores: Mapping[int, float], bag_stamp: Mapping[int, int],
                lookup: SegmentLookup) -> ScoreTable:
    """Finite per-pair scores with the labels of their segment (one 'test' split)."""
    keys = sorted(k for k, v in scores.items() if math.isfinite(v))
    labels = [lookup.labels(bag_stamp[k]) for k in keys]
    presentations = Presentations(
        np.array([scores[k] for k in keys], dtype=np.float64),
        np.array([int(label['species'] == 'live') for label in labels], dtype=np.int64),
        np.array([species_of(label) for label in labels]),
    )
    return ScoreTable(presentations, np.full(len(keys), 'test'),
                      np.array([str(label.get('subject', '')) for label in labels]))


def evaluate(table: ScoreTable, threshold: float) -> dict:
    """ISO/IEC 30107-3 figures of a score table at ``threshold``."""
    data = table.presentations
    return evaluate_at_threshold(data.scores, data.labels, data.species, threshold).to_dict()


def frame_b_stamps(bag: Path, phase_b: Phase) -> dict[int, int]:
    """Bag time of every frame B by its frame counter (the time its label segment is found by)."""
    stamps = {}
    with Reader(bag) as reader:
        topic = f'/{flash_frame_topic(phase_b)}'
        for _connection, stamp, raw in reader.messages(
                connections=[c for c in reader.connections if c.topic == topic]):
            stamps[deserialize_message(raw, FlashFrame).frame_counter] = stamp
    return stamps


def main(argv: Sequence[str] | None = None) -> int:
    """Run both evaluations and write ``comparison.json``; exit 2 on bad input."""
    parser = OneLineArgumentParser(prog=PROGRAM, description=__doc__.split('\n')[0])
    parser.add_argument('--bag', type=Path, required=True)
    parser.add_argument('--out', type=Path, required=True)
    add_model_arguments(parser)
    parser.add_argument('--corners', choices=('ground-truth', 'landmark-node'),
                        default='ground-truth', help='where the eye corners come from')
    parser.add_argument('--shape-model', default='synthetic',
                        help="landmark_node's corner model with --corners landmark-node")
    args = parser.parse_args(argv)
    shape_model = args.shape_model if args.corners == 'landmark-node' else None
    choices = {'pair': args.pair, 'region': args.region, 'eye': args.eye}
    try:
        model = LivenessModel.load(args.model)
        liveness_parameters(args.model, **choices)
        lookup = SegmentLookup(args.bag)
        bag_stamp = frame_b_stamps(args.bag, pair_config(model.metadata.pair).phase_b)
    except (OSError, ValueError, RuntimeError, BagToolError, ReaderError) as error:
        return fail(PROGRAM, error, EXIT_BAD_INPUT)
    direct = direct_scores(args.bag, model, shape_model)
    try:
        through_node = node_scores(args.bag, args.model, shape_model, **choices)
    except NodeReplayError as error:
        return fail(PROGRAM, error, EXIT_FAILED)
    common = sorted(k for k in set(direct) & set(through_node)
                    if math.isfinite(direct[k]) and math.isfinite(through_node[k]))
    difference = max((abs(direct[k] - through_node[k]) for k in common), default=math.nan)
    node_table = score_table(through_node, bag_stamp, lookup)
    comparison = {
        'bag': str(args.bag), 'model': str(args.model), 'model_sha256': model.sha256,
        'corners': args.corners, 'shape_model': shape_model,
        'threshold': model.threshold, 'pairs_in_bag': len(bag_stamp),
        'pairs_scored_directly': sum(map(math.isfinite, direct.values())),
        'pairs_scored_by_node': sum(map(math.isfinite, through_node.values())),
        'max_score_difference': difference,
        'direct': evaluate(score_table(direct, bag_stamp, lookup), model.threshold),
        'node': evaluate(node_table, model.threshold),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'comparison.json').write_text(json.dumps(comparison, indent=1) + '\n')
    if len(node_table.presentations.scores):
        write_report(args.out / 'report', ReportRequest(
            test=node_table, choice=ThresholdChoice(model.threshold, 'fixed'),
            model=ModelIdentity.from_file(args.model, model.metadata.name),
            data_id=f'{args.bag.name} ({len(lookup.segments)} label segments), pairs scored '
                    'by liveness_node', input_type=model.metadata.pair))
    for name, count in (('direct', comparison['pairs_scored_directly']),
                        ('node', comparison['pairs_scored_by_node'])):
        figures = comparison[name]
        print(f'{name:>6}: {count} pairs, APCER {figures["apcer"]}, '
              f'BPCER {figures["bpcer"]}, accuracy {figures["accuracy"]}')
    print(f'pairs in bag {len(bag_stamp)}, compared {len(common)}, '
          f'max |score difference| {difference:.2e}')
    if len(node_table.presentations.scores):
        print(f'ISO/IEC 30107-3 report of the node\'s scores: {args.out / "report" / "report.md"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
