"""Liveness benchmark: latency from frame B's arrival to the published result.

Runs liveness_node as its own process (face region, P2, 1 onnxruntime thread) with the
shipped model, or an untrained MobileNetV2 alpha 0.1 exported here when none is given
(inference cost does not depend on the weights). This process plays 1920x1200 front and
right FlashFrames with their EyeCorners at the camera's 30 Hz cycle rate
(``harness.frame_player``) over shared-memory DDS. Reported: the node's own latency (arrival
of B -> publish, measured in the node and carried in LivenessResult.latency_ms), the
end-to-end latency (B published here -> result received here), pairs/s and dropped pairs.
"""

from __future__ import annotations

from pathlib import Path
import sys
import time

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import pair_config
from antispoof_ros.liveness.inference import LivenessModel
from antispoof_ros.msg import LivenessResult
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.topics import EYE_CORNERS, LIVENESS_RESULT, flash_frame_topic
from antispoof_ros.offline.cli import EXIT_FAILED, OneLineArgumentParser, fail
from antispoof_ros.offline.synthetic.phase_coded_images import phase_coded_frame
from antispoof_ros.paths import SHIPPED_MODELS
from antispoof_ros.tools.harness.frame_player import FramePlayer
from antispoof_ros.tools.harness.local_dds import apply_local_dds_environment
from antispoof_ros.tools.harness.processes import (
    NodeProcess,
    NodeProcessError,
    NodeProcesses,
    log_folder,
)

PROGRAM = 'antispoof_ros.tools.benchmarks.liveness_node'
PAIR = pair_config('P2')
# where landmark_node would find the eyes of the benchmark's frames
CORNERS = EyeCornerPoints(right_outer=(860.0, 500.0), right_inner=(920.0, 503.0),
                          left_outer=(1060.0, 500.0), left_inner=(1000.0, 503.0))
STARTUP_TIMEOUT_S = 60.0
WARMUP_S = 2.0
DRAIN_S = 1.0


def untrained_model(path: Path) -> Path:
    """Export a randomly initialised MobileNetV2 (alpha 0.1) with P2 face metadata."""
    import torch

    from antispoof_ros.liveness.alignment import FACE_REGION
    from antispoof_ros.liveness.model_metadata import ModelMetadata
    from antispoof_ros.offline.model.export import export_onnx
    from antispoof_ros.offline.model.mobilenetv2 import MobileNetV2Classifier

    torch.manual_seed(0)
    metadata = ModelMetadata(name='untrained_benchmark_model', region='face', pair='P2',
                             input_width=FACE_REGION.width, input_height=FACE_REGION.height)
    return export_onnx(MobileNetV2Classifier().eval(), metadata, path)


class ResultTimer:
    """Times each frame B the player sent after the warm-up to its LivenessResult."""

    def __init__(self, player: FramePlayer, warmup_s: float) -> None:
        self.player = player
        self.results: list[tuple[float, float, int]] = []  # (node latency, end to end, counter)
        self._measured_from_ns = time.monotonic_ns() + round(warmup_s * 1e9)
        self._sent_b_ns: dict[int, int] = {}  # frame B counter -> when it went out
        self._ledger_read = 0

    def on_result(self, message: LivenessResult) -> None:
        """Record the node's and the end-to-end latency of one result."""
        self._read_ledger()
        sent_ns = self._sent_b_ns.pop(message.frame_counter_b, None)
        if sent_ns is not None:
            self.results.append((message.latency_ms, (time.monotonic_ns() - sent_ns) / 1e6,
                                 message.frame_counter_b))

    @property
    def pairs_sent(self) -> int:
        """Frames B sent after the warm-up."""
        return sum(slot.phase == PAIR.phase_b and slot.sent_ns >= self._measured_from_ns
                   for slot in self.player.ledger)

    def _read_ledger(self) -> None:
        for slot in self.player.ledger[self._ledger_read:]:
            if slot.phase == PAIR.phase_b and slot.sent_ns >= self._measured_from_ns:
                self._sent_b_ns[slot.counter] = slot.sent_ns
        self._ledger_read = len(self.player.ledger)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = OneLineArgumentParser(prog=PROGRAM, description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=float, default=60.0, help='measurement window')
    parser.add_argument('--model', type=Path, help='ONNX model (default: shipped P2 face)')
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error('--seconds must be positive')
    apply_local_dds_environment()  # before rclpy.init: shared memory only
    try:
        with log_folder('liveness_benchmark_') as folder, NodeProcesses(folder) as processes:
            model = args.model or SHIPPED_MODELS / 'p2_face.onnx'
            if args.model is None and not model.is_file():
                model = untrained_model(folder / 'untrained.onnx')
            unpinned = not LivenessModel.load(model).pinned  # the untrained fallback, a run's
            process = processes.start('liveness_node', [
                sys.executable, '-m', 'antispoof_ros.nodes.liveness_node', '--ros-args',
                '-p', f'model_path:={model}', '-p', 'ort_threads:=1',
                '-p', f'allow_unpinned_model:={str(unpinned).lower()}'])
            timer, pairs_sent = _measure(process, args.seconds)
    except NodeProcessError as error:
        return fail(PROGRAM, error, EXIT_FAILED)
    results = timer.results
    if not results:
        return fail(PROGRAM, 'no LivenessResult received', EXIT_FAILED)
    node_ms = np.array([r[0] for r in results])
    e2e_ms = np.array([r[1] for r in results])
    print(f'model: {model.name}, face region 200x250, P2, 1 onnxruntime thread, '
          f'1920x1200 mono8 frames, {args.seconds:.0f} s')
    print(f'pairs sent {pairs_sent}, results {len(results)} '
          f'({len(results) / args.seconds:.1f} pairs/s), missing {pairs_sent - len(results)}')
    print(f'node latency (B arrival -> publish): p50 {np.percentile(node_ms, 50):.2f} ms, '
          f'p99 {np.percentile(node_ms, 99):.2f} ms, max {node_ms.max():.2f} ms')
    print(f'end to end (B publish -> result):     p50 {np.percentile(e2e_ms, 50):.2f} ms, '
          f'p99 {np.percentile(e2e_ms, 99):.2f} ms, max {e2e_ms.max():.2f} ms')
    return 0


def _measure(process: NodeProcess, seconds: float) -> tuple[ResultTimer, int]:
    """Play pairs with their corners for the warm-up and ``seconds``, then drain."""
    rclpy.init()
    feeder = rclpy.create_node('liveness_benchmark')
    try:
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        images = {phase: [array_to_image(phase_coded_frame(phase, 1920, 1200), 'mono8')]
                  for phase in (PAIR.phase_a, PAIR.phase_b)}
        player = FramePlayer(feeder, images, corners=lambda _: CORNERS,
                             corners_phase=PAIR.phase_a, qos=qos)
        frames_b = player.publishers[flash_frame_topic(PAIR.phase_b)]
        corners = player.publishers[EYE_CORNERS]

        def subscribed() -> bool:
            rclpy.spin_once(feeder, timeout_sec=0.1)
            return frames_b.get_subscription_count() > 0 and corners.get_subscription_count() > 0

        process.wait_ready(subscribed, STARTUP_TIMEOUT_S, 'did not come up')
        timer = ResultTimer(player, WARMUP_S)
        feeder.create_subscription(LivenessResult, LIVENESS_RESULT, timer.on_result, qos)
        end = time.monotonic() + WARMUP_S + seconds
        while time.monotonic() < end:
            if problem := process.problem():
                raise NodeProcessError(problem)
            rclpy.spin_once(feeder, timeout_sec=player.play_due())
        pairs_sent = timer.pairs_sent
        drain = time.monotonic() + DRAIN_S
        while time.monotonic() < drain:
            rclpy.spin_once(feeder, timeout_sec=0.01)
        return timer, pairs_sent
    finally:
        feeder.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
