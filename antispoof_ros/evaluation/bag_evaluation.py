"""Evaluate a model on a bag twice: through the real liveness node, and directly.

    python -m antispoof_ros.evaluation.bag_evaluation --bag BAG --out DIR
        [--model antispoof_ros/models/p2_face.onnx] [--threshold-from-model]

Through the node: ``liveness_node`` runs as its own process (shared-memory DDS) with its
landmark input remapped to the bag's ground-truth eye corners, the bag is replayed without
loss (antispoof_ros.bagtools.replay), and every published LivenessResult's per-pair score
is collected. Directly: the same bag is read with rosbags, each cycle's pair is aligned with
the same code and scored by the same ONNX file in this process. Both score sets get the
same ISO/IEC 30107-3 report at the model's own threshold, and the per-pair scores are
compared (they should agree to float precision: same bytes in, same code, same model).
"""

from __future__ import annotations

import argparse
from bisect import bisect_right
from collections.abc import Sequence
import json
import math
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader

from antispoof_ros.alignment import align_pair, region_by_name, to_model_input
from antispoof_ros.bagtools.labels import read_label_segments
from antispoof_ros.evaluation.metrics import Presentations, evaluate_at_threshold
from antispoof_ros.flash import DEFAULT_PATTERN, Phase, pair_config
from antispoof_ros.image_conversion import image_to_array
from antispoof_ros.inference import LivenessModel
from antispoof_ros.local_dds import local_dds_environment
from antispoof_ros.msg import EyeCorners, FlashFrame, LivenessResult
from antispoof_ros.nodes.liveness_node import SHIPPED_MODELS
from antispoof_ros.nodes.topics import EYE_CORNERS, LIVENESS_RESULT, flash_frame_topic
from antispoof_ros.pairing import CornerInfo

GROUND_TRUTH_CORNERS = '/ground_truth/eye_corners'


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


def direct_scores(bag: Path, model: LivenessModel) -> dict[int, float]:
    """Score of every complete pair of the bag by frame B's counter, computed in-process."""
    config = pair_config(model.metadata.pair)
    region = region_by_name(model.metadata.region)
    topic_a, topic_b = (f'/{flash_frame_topic(p)}' for p in (config.phase_a, config.phase_b))
    frames: dict[tuple[str, int], FlashFrame] = {}
    corners: dict[int, CornerInfo] = {}
    with Reader(bag) as reader:
        wanted = [c for c in reader.connections
                  if c.topic in (topic_a, topic_b, GROUND_TRUTH_CORNERS)]
        for connection, _stamp, raw in reader.messages(connections=wanted):
            if connection.topic == GROUND_TRUTH_CORNERS:
                info = CornerInfo.from_msg(deserialize_message(raw, EyeCorners))
                corners[info.frame_counter] = info
            else:
                frame = deserialize_message(raw, FlashFrame)
                frames[(connection.topic, frame.frame_counter)] = frame
    scores = {}
    step = 0 if config.is_single else 1
    for (topic, counter), frame_a in frames.items():
        frame_b = frames.get((topic_b, counter + step))
        if topic != topic_a or frame_b is None:
            continue
        # corners of this cycle's front frame, as the node's pair validator requires
        front = counter - frame_a.position_in_cycle + DEFAULT_PATTERN.index(Phase.FRONT)
        if front not in corners:
            continue
        crop = align_pair(image_to_array(frame_a.image), image_to_array(frame_b.image),
                          corners[front].points, region, model.metadata.eye)
        scores[frame_b.frame_counter] = model.predict(to_model_input(crop))
    return scores


def node_scores(bag: Path, model_path: Path, timeout_s: float = 600.0) -> dict[int, float]:
    """Per-pair scores published by liveness_node while the bag is replayed to it."""
    env = {**os.environ, **local_dds_environment()}
    os.environ.update(env)
    node = subprocess.Popen(
        [sys.executable, '-m', 'antispoof_ros.nodes.liveness_node', '--ros-args',
         '-p', f'model_path:={model_path}', '-p', 'sync_queue_size:=50',
         '-r', f'{EYE_CORNERS}:={GROUND_TRUTH_CORNERS}'],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rclpy.init()
    listener = rclpy.create_node('bag_evaluation')
    results: dict[int, float] = {}
    listener.create_subscription(
        LivenessResult, LIVENESS_RESULT,
        lambda r: results.__setitem__(r.frame_counter_b, r.score) if r.frame_counter_b else None,
        QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    # The replay waits for a subscriber on every camera topic; the node takes only two.
    for phase in DEFAULT_PATTERN:
        listener.create_subscription(FlashFrame, flash_frame_topic(phase), lambda _: None, 1)
    replay = None
    try:
        deadline = time.monotonic() + 60
        while listener.count_publishers(f'/{LIVENESS_RESULT}') == 0:
            rclpy.spin_once(listener, timeout_sec=0.1)
            if time.monotonic() > deadline or node.poll() is not None:
                raise RuntimeError('liveness_node did not come up')
        settle = time.monotonic() + 1.0  # let the node's writer match this reader too
        while time.monotonic() < settle:
            rclpy.spin_once(listener, timeout_sec=0.05)
        replay = subprocess.Popen(
            [sys.executable, '-m', 'antispoof_ros.bagtools.replay', str(bag),
             '--as-fast-as-possible', '--wait-for-subscribers', '1'], env=env,
            stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while replay.poll() is None and time.monotonic() < deadline:
            rclpy.spin_once(listener, timeout_sec=0.05)
        if replay.returncode != 0:
            raise RuntimeError(f'replay failed with exit code {replay.returncode}')
        settle = time.monotonic() + 2.0
        while time.monotonic() < settle:
            rclpy.spin_once(listener, timeout_sec=0.05)
    finally:
        for process in (replay, node):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=30)
        listener.destroy_node()
        rclpy.try_shutdown()
    return results


def evaluate(scores: dict[int, float], bag_start: dict[int, int], lookup: SegmentLookup,
             threshold: float) -> dict:
    """ISO/IEC 30107-3 figures of per-pair scores at ``threshold``."""
    keys = sorted(k for k, v in scores.items() if math.isfinite(v))
    labels = [lookup.labels(bag_start[k]) for k in keys]
    presentations = Presentations(
        np.array([scores[k] for k in keys]),
        np.array([int(label['species'] == 'live') for label in labels]),
        np.array([species_of(label) for label in labels]),
    )
    return evaluate_at_threshold(presentations.scores, presentations.labels,
                                 presentations.species, threshold).to_dict()


def main(argv: Sequence[str] | None = None) -> int:
    """Run both evaluations and write ``comparison.json``; exit 2 on bad input."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--bag', type=Path, required=True)
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--model', type=Path, default=SHIPPED_MODELS / 'p2_face.onnx')
    args = parser.parse_args(argv)
    try:
        model = LivenessModel.load(args.model)
        lookup = SegmentLookup(args.bag)
    except (OSError, ValueError, RuntimeError) as error:
        print(f'bag_evaluation: error: {error}', file=sys.stderr)
        return 2
    bag_stamp = {}
    with Reader(args.bag) as reader:
        topic = f'/{flash_frame_topic(pair_config(model.metadata.pair).phase_b)}'
        for _connection, stamp, raw in reader.messages(
                connections=[c for c in reader.connections if c.topic == topic]):
            bag_stamp[deserialize_message(raw, FlashFrame).frame_counter] = stamp
    direct = direct_scores(args.bag, model)
    try:
        through_node = node_scores(args.bag, args.model)
    except RuntimeError as error:
        print(f'bag_evaluation: error: {error}', file=sys.stderr)
        return 1
    common = sorted(set(direct) & set(through_node))
    difference = max((abs(direct[k] - through_node[k]) for k in common), default=math.nan)
    comparison = {
        'bag': str(args.bag), 'model': str(args.model), 'model_sha256': model.sha256,
        'threshold': model.threshold, 'pairs_in_bag': len(bag_stamp),
        'pairs_scored_directly': len(direct), 'pairs_scored_by_node': len(through_node),
        'max_score_difference': difference,
        'direct': evaluate(direct, bag_stamp, lookup, model.threshold),
        'node': evaluate(through_node, bag_stamp, lookup, model.threshold),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'comparison.json').write_text(json.dumps(comparison, indent=1) + '\n')
    for name, count in (('direct', len(direct)), ('node', len(through_node))):
        figures = comparison[name]
        print(f'{name:>6}: {count} pairs, max APCER {figures["apcer_max"]:.4f}, '
              f'BPCER {figures["bpcer"]:.4f}, accuracy {figures["accuracy"]}')
    print(f'pairs in bag {len(bag_stamp)}, compared {len(common)}, '
          f'max |score difference| {difference:.2e}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
