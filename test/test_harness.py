"""The harness of tools and tests: child processes (on plain Python children), frame player."""

from __future__ import annotations

from pathlib import Path
import signal
import sys

from node_process import spin_until
import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.msg import EyeCorners, FlashFrame
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.messages import stamp_nanoseconds
from antispoof_ros.nodes.topics import EYE_CORNERS, flash_frame_topic
from antispoof_ros.tools.harness.frame_player import FramePlayer, Outgoing
from antispoof_ros.tools.harness.processes import NodeProcess, NodeProcessError, NodeProcesses

# prints, says it is ready, then waits for a signal (SIGINT ends it with a line and code 0)
SERVER = """
import signal, sys, time
def on_interrupt(*_):
    print('stopping'); sys.exit(0)
signal.signal(signal.SIGINT, on_interrupt)
print('starting'); print('ready to serve', flush=True)
buffer = bytearray(30_000_000)  # a peak the memory figures must show
while True:
    time.sleep(0.05)
"""
FAILING = "import sys; print('loading'); print('[ERROR] worker: no model', file=sys.stderr); " \
          "print('cleanup done'); sys.exit(3)"
IGNORES_SIGINT = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); " \
                 "print('up', flush=True); time.sleep(60)"


def python(code: str) -> list[str]:
    return [sys.executable, '-c', code]


def test_start_wait_ready_stats_and_stop(tmp_path: Path) -> None:
    log = tmp_path / 'server.log'
    with NodeProcess('server', python(SERVER), log_file=log) as server:
        assert server.wait_for_line(r'^ready to serve$', timeout=30), server.output
        assert server.running and server.exit_code is None and not server.crashed
        server.wait_ready(lambda: server.peak_memory_kib() > 25_000, timeout=30)
        assert server.rss_kib() > 25_000
        assert server.cpu_seconds() >= 0.0
        assert server.stop() == 0
    assert not server.running and not server.crashed
    assert server.lines == ['starting', 'ready to serve', 'stopping']
    assert log.read_text().splitlines() == server.lines


def test_early_exit_is_one_line_naming_process_code_error_and_log(tmp_path: Path) -> None:
    log = tmp_path / 'worker.log'
    worker = NodeProcess('worker', python(FAILING), log_file=log)
    with pytest.raises(NodeProcessError) as error:
        worker.wait_ready(lambda: False, timeout=60)
    assert str(error.value) == (
        f'worker exited with code 3: [ERROR] worker: no model (log: {log})')
    assert worker.crashed
    assert worker.last_error_line() == '[ERROR] worker: no model'


def test_timeout_names_the_process_and_its_last_line() -> None:
    with NodeProcess('quiet', python(IGNORES_SIGINT)) as quiet:
        assert quiet.wait_for_line('^up$', timeout=30)
        with pytest.raises(NodeProcessError, match=r'^quiet not subscribed after 0.2 s: up '
                                                   r'\(log: captured output\)$'):
            quiet.wait_ready(lambda: False, timeout=0.2, what='not subscribed')
        assert quiet.stop(timeout=0.5) == -signal.SIGKILL  # ignored SIGINT: killed
        assert not quiet.crashed


def test_wait_for_line_is_false_once_the_process_ended() -> None:
    worker = NodeProcess('worker', python(FAILING))
    assert worker.wait(timeout=30) == 3
    assert not worker.wait_for_line('never printed', timeout=30)
    assert worker.lines[0] == 'loading'


def test_group_stops_every_process_and_names_the_dead_one(tmp_path: Path) -> None:
    with NodeProcesses(tmp_path / 'logs') as group:
        server = group.start('server', python(SERVER))
        worker = group.start('worker', python(FAILING))
        assert worker.wait(timeout=30) == 3
        with pytest.raises(NodeProcessError, match=r'^worker exited with code 3: '):
            group.wait_ready(lambda: False, timeout=60, what='never ready')
        group.check(['server'])  # still running: no error
        assert server.wait_for_line('ready to serve', timeout=30)
    assert server.exit_code == 0 and server.lines[-1] == 'stopping'
    assert (tmp_path / 'logs' / 'worker.log').read_text().startswith('loading\n')


@pytest.mark.ros
def test_frame_player_labels_stamps_hooks_and_records_every_slot(ros_context: Context) -> None:
    node = rclpy.create_node('frame_player_test', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    received: list[FlashFrame] = []
    corners: list[EyeCorners] = []
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    played = (Phase.FRONT, Phase.RIGHT)
    for phase in played:
        node.create_subscription(FlashFrame, flash_frame_topic(phase), received.append, qos)
    node.create_subscription(EyeCorners, EYE_CORNERS, corners.append, qos)
    points = EyeCornerPoints((10.0, 20.0), (30.0, 20.0), (60.0, 20.0), (40.0, 20.0))
    images = {phase: [array_to_image(np.full((12, 16), int(phase), np.uint8), 'mono8')]
              for phase in played}

    def drop_second_right_frame(counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        return [] if counter == 6 else outgoing

    player = FramePlayer(node, images, corners=lambda _: points, qos=qos,
                         hook=drop_second_right_frame)
    try:
        assert spin_until(executor, lambda: all(
            p.get_subscription_count() for p in player.publishers.values()), timeout=30)
        while player.next_counter < 12:  # three cycles
            executor.spin_once(timeout_sec=player.play_due())
        assert spin_until(executor, lambda: len(received) >= 5 and len(corners) >= 3, timeout=30)
    finally:
        executor.shutdown()
        node.destroy_node()
    assert [slot.counter for slot in player.ledger] == [1, 2, 5, 6, 9, 10]
    assert player.ledger[3].topics == ()  # the hook dropped it
    assert sorted(frame.frame_counter for frame in received) == [1, 2, 5, 9, 10]
    for frame in received:
        assert Phase(frame.phase) == DEFAULT_PATTERN[frame.frame_counter % 4]
        assert frame.cycle_index == frame.frame_counter // 4
        assert stamp_nanoseconds(frame.header.stamp) == player.stamp_ns(frame.frame_counter)
    assert np.diff([slot.stamp_ns for slot in player.ledger]).min() == player.period_ns
    assert [answer.frame_counter for answer in corners] == [1, 5, 9]
    assert corners[0].right_eye_outer.x == 10.0
