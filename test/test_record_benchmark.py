"""Recorder benchmark: its argument errors, the frame source delivering every frame to a
subscriber that has just appeared, and a short run through the real recorder."""

from __future__ import annotations

from pathlib import Path
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from antispoof_ros.camera.phase_labels import counter_label
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.msg import FlashFrame
from antispoof_ros.nodes.image_conversion import own_array_to_image
from antispoof_ros.nodes.messages import flash_frame_message, frame_header
from antispoof_ros.nodes.topics import flash_frame_topic
from antispoof_ros.tools.benchmarks import record
from antispoof_ros.tools.benchmarks.system import frame_source


def test_argument_and_work_folder_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        record.main(['--seconds', '0'])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().count('\n') == 0
    assert record.main(['--work', str(tmp_path / 'missing')]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'{record.PROGRAM}: error: --work:')


def _one_cycle() -> list[FlashFrame]:
    """One flash cycle of 16x12 frames."""
    return [flash_frame_message(counter_label(counter), frame_header(counter),
                                own_array_to_image(np.full((12, 16), counter, np.uint8), 'mono8'))
            for counter in range(len(DEFAULT_PATTERN))]


@pytest.mark.ros
def test_frame_source_delivers_every_frame_to_a_new_subscriber(ros_context: Context) -> None:
    listener = rclpy.create_node('record_benchmark_listener', context=ros_context)
    received: list[int] = []
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50,
                     reliability=ReliabilityPolicy.RELIABLE)
    for phase in Phase:
        listener.create_subscription(FlashFrame, flash_frame_topic(phase),
                                     lambda frame: received.append(frame.frame_counter), qos)
    node = rclpy.create_node('record_benchmark_source', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(listener)
    try:
        # started before the listener is discovered: it waits, then holds the first cycle
        # until acknowledged, and ends once the last frames are
        stats = frame_source.publish_loop(node, _one_cycle(), frame_source.StopRequest(),
                                          count=12, subscribers=1)
        sent = stats['counter'].tolist()
        deadline = time.monotonic() + 30.0
        while len(received) < len(sent) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown()
        node.destroy_node()
        listener.destroy_node()
    assert len(sent) >= 12  # more when a stall made it catch up past the end
    assert sent == list(range(len(sent))) and sorted(received) == sent
    assert stats['play_s'] > 0 and stats['cpu_s'] > 0


@pytest.mark.slow
@pytest.mark.ros
def test_short_run_at_30_hz_writes_every_frame() -> None:
    done = subprocess.run([sys.executable, '-m', record.PROGRAM, '--seconds', '3',
                           '--rate-hz', '30'], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    counts = re.search(r'frames sent (\d+), written (\d+), counter gaps (\d+)', done.stdout)
    assert counts is not None, done.stdout
    sent, written, gaps = map(int, counts.groups())
    assert sent >= 90 and written == sent and gaps == 0
    assert 'source CPU' in done.stdout and 'recorder CPU' in done.stdout
