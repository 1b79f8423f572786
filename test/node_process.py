"""Test helpers around the child-process harness: start a node or tool, spin, list sockets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import subprocess
import sys
import time

from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from antispoof_ros.flash import DEFAULT_PATTERN
from antispoof_ros.msg import FlashFrame
from antispoof_ros.nodes.topics import flash_frame_topic
from antispoof_ros.tools.harness.processes import NodeProcess

VENV_BIN = Path(__file__).resolve().parent.parent / '.venv' / 'bin'
REPO = Path(__file__).resolve().parent.parent
RELIABLE_DEEP = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                           reliability=ReliabilityPolicy.RELIABLE)


def start_node(executable: str, *arguments: str) -> NodeProcess:
    """Start a node executable of the venv, its output captured, named after it."""
    return NodeProcess(executable, [str(VENV_BIN / executable), *arguments], cwd=REPO)


def start_module(module: str, *arguments: str) -> NodeProcess:
    """Start ``python -m module``, its output captured, named after the module's last part."""
    return NodeProcess(module.rsplit('.', 1)[-1], [sys.executable, '-m', module, *arguments],
                       cwd=REPO)


def internet_sockets(pid: int) -> list[str]:
    """Every UDP or TCP socket line that ``ss`` attributes to ``pid`` (any state)."""
    lines = []
    for flag in ('-uapn', '-tapn'):
        listing = subprocess.run(['ss', flag], capture_output=True, text=True, check=True).stdout
        lines += [line for line in listing.splitlines() if f'pid={pid},' in line]
    return lines


def spin_until(executor: object, done: Callable[[], bool], timeout: float,
               step: float = 0.02) -> bool:
    """Spin ``executor`` until ``done()`` is true (True) or ``timeout`` s pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=step)
        if done():
            return True
    return False


def replayed_frames(context: Context, bag: Path, *replay_arguments: str,
                    wanted: int) -> tuple[list[FlashFrame], NodeProcess]:
    """The FlashFrames ``bagtools.replay`` publishes from ``bag`` (at least ``wanted``)."""
    node = Node('replay_listener', context=context)
    frames: list[FlashFrame] = []
    for phase in DEFAULT_PATTERN:
        node.create_subscription(FlashFrame, flash_frame_topic(phase), frames.append,
                                 RELIABLE_DEEP)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    replay = start_module('antispoof_ros.offline.bagtools.replay', str(bag),
                          *replay_arguments, '--wait-for-subscribers', '1')
    try:
        assert spin_until(executor, lambda: len(frames) >= wanted, timeout=30), replay.output
        assert replay.wait(timeout=15) == 0, replay.output
    finally:
        replay.stop()
        node.destroy_node()
    return frames, replay
