"""Camera (pylon emulator) -> landmark -> liveness executables, each its own process.

The emulated camera replays one flash cycle of a real face photo; the liveness results must
name exactly the front/right frames the camera published and carry frame B's header.
"""

from __future__ import annotations

from pathlib import Path

from face_frames import write_face_cycle
from node_process import spin_until, start_node
from onnx_models import constant_face_model
import pytest
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Header

from antispoof_ros.flash import Phase
from antispoof_ros.msg import FlashFrame, LivenessResult
from antispoof_ros.nodes.topics import LIVENESS_RESULT, flash_frame_topic
from antispoof_ros.offline.landmark_training.samples import load_sample_faces

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_liveness_results_match_the_frames_the_camera_published(
    tmp_path: Path, ros_context: Context
) -> None:
    astronaut = next(face for face in load_sample_faces() if face.name == 'astronaut')
    write_face_cycle(tmp_path / 'frames', astronaut.cropped())
    model = constant_face_model(tmp_path / 'live.onnx', probability_logit=6.0)
    published: dict[tuple[int, int], Header] = {}
    results: list[LivenessResult] = []
    watcher = Node('pipeline_watcher', context=ros_context)
    for phase in (Phase.FRONT, Phase.RIGHT):
        watcher.create_subscription(
            FlashFrame, flash_frame_topic(phase),
            lambda f: published.__setitem__((f.phase, f.frame_counter), f.header), 20)
    watcher.create_subscription(LivenessResult, LIVENESS_RESULT, results.append, 100)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(watcher)

    def matched() -> list[LivenessResult]:
        return [r for r in results if (Phase.RIGHT, r.frame_counter_b) in published
                and (Phase.FRONT, r.frame_counter_a) in published]

    # a pair every 0.5 s or slower (a loaded machine) would empty the fusion window under the
    # default timeout_s: this test is about pairing and headers, not about the rate
    liveness = start_node('liveness_node', '--ros-args',
                          '-p', f'model_path:={model}', '-p', 'timeout_s:=10.0',
                          '-p', 'allow_unpinned_model:=true')
    landmarks = start_node('landmark_node')
    camera = start_node('camera_node', '--ros-args',
                        '-p', 'emulated_cameras:=1',
                        '-p', f'emulator_image_dir:={tmp_path / "frames"}')
    processes = (camera, landmarks, liveness)
    try:
        assert liveness.wait_for_line(r'\[liveness_node\]: synchronizing'), liveness.output
        assert spin_until(executor, lambda: len(matched()) >= 10 and any(
            r.decision == LivenessResult.DECISION_LIVE for r in matched()), timeout=60), (
            camera.output + landmarks.output + liveness.output)
        for process in processes:
            assert process.stop() == 0
    finally:
        for process in processes:
            process.stop()
        executor.shutdown()
        watcher.destroy_node()
    for result in matched():
        assert result.frame_counter_b == result.frame_counter_a + 1
        assert result.header == published[(Phase.RIGHT, result.frame_counter_b)]
        assert result.stamp_a == published[(Phase.FRONT, result.frame_counter_a)].stamp
        assert result.stamp_b == result.header.stamp
        assert result.pair_decision == LivenessResult.DECISION_LIVE  # valid pair, scored
    assert LivenessResult.DECISION_LIVE in {r.decision for r in matched()}
    assert all('Traceback' not in p.output for p in processes)
