"""Liveness benchmark: latency from frame B's arrival to the published result.

    python -m antispoof_ros.tools.benchmarks.liveness_node [--seconds 60] [--model M.onnx]

Runs liveness_node as its own process (face region, P2, 1 onnxruntime thread) with the
shipped model, or an untrained MobileNetV2 alpha 0.1 exported here when none is given
(inference cost does not depend on the weights). This process publishes 1920x1200 front
and right FlashFrames with their EyeCorners at the camera's 30 Hz cycle rate, over
shared-memory DDS. Reported: the node's own latency (arrival of B -> publish, measured in
the node and carried in LivenessResult.latency_ms), the end-to-end latency (B published
here -> result received here), pairs/s and dropped pairs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import signal
import subprocess
import sys
import tempfile
import time

from geometry_msgs.msg import Point32
import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from antispoof_ros.flash import Phase
from antispoof_ros.msg import EyeCorners, FlashFrame, LivenessResult
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.topics import EYE_CORNERS, LIVENESS_RESULT, flash_frame_topic
from antispoof_ros.offline.synthetic.phase_coded_images import phase_coded_frame
from antispoof_ros.paths import SHIPPED_MODELS
from antispoof_ros.tools.harness.local_dds import (
    apply_local_dds_environment,
    fast_dds_files,
    remove_fast_dds_files,
)

CYCLE_S = 4 / 120.0


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


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=float, default=60.0, help='measurement window')
    parser.add_argument('--model', type=Path, help='ONNX model (default: shipped P2 face)')
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error('--seconds must be positive')
    apply_local_dds_environment()  # before rclpy.init: shared memory only
    shared_memory_before = fast_dds_files()

    with tempfile.TemporaryDirectory(prefix='liveness_benchmark_') as tmp:
        model = args.model or SHIPPED_MODELS / 'p2_face.onnx'
        if args.model is None and not model.is_file():
            model = untrained_model(Path(tmp) / 'untrained.onnx')
        node = subprocess.Popen(
            [sys.executable, '-m', 'antispoof_ros.nodes.liveness_node', '--ros-args',
             '-p', f'model_path:={model}', '-p', 'ort_threads:=1'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        rclpy.init()
        feeder = rclpy.create_node('liveness_benchmark')
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        front = feeder.create_publisher(FlashFrame, flash_frame_topic(Phase.FRONT), qos)
        right = feeder.create_publisher(FlashFrame, flash_frame_topic(Phase.RIGHT), qos)
        corners = feeder.create_publisher(EyeCorners, EYE_CORNERS, qos)
        sent_b: dict[int, float] = {}
        results: list[tuple[float, float, int]] = []  # (node latency, end to end, counter)

        def on_result(msg: LivenessResult) -> None:
            sent = sent_b.pop(msg.frame_counter_b, None)
            if sent is not None:
                results.append((msg.latency_ms, 1000 * (time.perf_counter() - sent),
                                msg.frame_counter_b))

        feeder.create_subscription(LivenessResult, LIVENESS_RESULT, on_result, qos)
        pixels = {phase: phase_coded_frame(phase, 1920, 1200) for phase in (Phase.FRONT,
                                                                            Phase.RIGHT)}
        deadline = time.monotonic() + 60
        while right.get_subscription_count() == 0 or corners.get_subscription_count() == 0:
            rclpy.spin_once(feeder, timeout_sec=0.1)
            if time.monotonic() > deadline or node.poll() is not None:
                print('error: liveness_node did not come up', file=sys.stderr)
                return 1

        def header(counter: int) -> Header:
            ns = time.time_ns()
            h = Header(frame_id='nir_camera_optical_frame')
            h.stamp.sec, h.stamp.nanosec = divmod(ns, 1_000_000_000)
            return h

        def frame(phase: Phase, counter: int, h: Header) -> FlashFrame:
            return FlashFrame(header=h, phase=int(phase), frame_counter=counter,
                              cycle_index=counter // 4, position_in_cycle=counter % 4,
                              image=array_to_image(pixels[phase], 'mono8', h))

        start, cycle, pairs_sent = time.monotonic(), 0, 0
        try:
            while time.monotonic() - start < args.seconds + 2.0:
                tick = start + cycle * CYCLE_S
                counter_front = 4 * cycle + 1
                h_front = header(counter_front)
                front.publish(frame(Phase.FRONT, counter_front, h_front))
                corners.publish(EyeCorners(
                    header=h_front, status=EyeCorners.STATUS_OK, frame_counter=counter_front,
                    right_eye_outer=Point32(x=860.0, y=500.0),
                    right_eye_inner=Point32(x=920.0, y=503.0),
                    left_eye_outer=Point32(x=1060.0, y=500.0),
                    left_eye_inner=Point32(x=1000.0, y=503.0), confidence=1.0, face_count=1,
                ))
                while time.monotonic() < tick + CYCLE_S / 4:  # B comes one frame later
                    rclpy.spin_once(feeder, timeout_sec=0.001)
                if time.monotonic() - start > 2.0:  # after warm-up
                    sent_b[counter_front + 1] = time.perf_counter()
                    pairs_sent += 1
                right.publish(frame(Phase.RIGHT, counter_front + 1, header(counter_front + 1)))
                while time.monotonic() < tick + CYCLE_S:
                    rclpy.spin_once(feeder, timeout_sec=0.002)
                cycle += 1
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                rclpy.spin_once(feeder, timeout_sec=0.01)
        finally:
            node.send_signal(signal.SIGINT)
            node.wait(timeout=30)
            feeder.destroy_node()
            rclpy.try_shutdown()
            remove_fast_dds_files(shared_memory_before)

    if not results:
        print('error: no LivenessResult received', file=sys.stderr)
        return 1
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


if __name__ == '__main__':
    sys.exit(main())
