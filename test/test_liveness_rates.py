"""liveness_node pairs frames at whatever rate the camera runs, and says why when it cannot.

liveness_node runs as its own process with its default parameters (frame_rate_hz 120) and
a small constant test model; the frame player plays the camera's front and right frames and
the landmark node's corners at 30, 60, 100 and 120 Hz and as a 60 Hz stream whose stamps
jitter by up to a fifth of a period. Every stream gets pairs, and every scored pair is a
front frame and the right frame right after it, as the player sent them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import math
from pathlib import Path
import random
import re
import time

from node_process import start_node
import numpy as np
from onnx_models import constant_face_model
import pytest
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import Phase
from antispoof_ros.msg import LivenessResult
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.messages import frame_header, stamp_nanoseconds
from antispoof_ros.nodes.topics import EYE_CORNERS, LIVENESS_RESULT, flash_frame_topic
from antispoof_ros.tools.harness.frame_player import FramePlayer, Outgoing
from antispoof_ros.tools.harness.processes import NodeProcess

pytestmark = [pytest.mark.ros, pytest.mark.slow]

START_TIMEOUT_S = 60.0
PLAY_TIMEOUT_S = 120.0
PAIRS_WANTED = 12
# inside the 640x400 test frame, where the face crop fits (as in test_liveness_node)
CORNERS = EyeCornerPoints((250.0, 180.0), (295.0, 182.0), (390.0, 180.0), (345.0, 182.0))


class Stamps:
    """Slot hook: moves each slot's stamp by up to ``jitter`` periods, drops ``dropped`` topics.

    A frame and its corners keep one stamp (landmark_node copies the frame's header), and
    the stamp each slot went out with is kept, to check the pairs against.
    """

    def __init__(self, period_ns: int, jitter: float = 0.0) -> None:
        self.period_ns = period_ns
        self.jitter = jitter
        self.rng = random.Random(7)
        self.sent: dict[int, int] = {}  # counter -> stamp (ns) it was sent with
        self.dropped: set[str] = set()

    def __call__(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        shift_ns = round(self.rng.uniform(-self.jitter, self.jitter) * self.period_ns)
        kept = [item for item in outgoing if item.topic not in self.dropped]
        for item in kept:
            stamp_ns = stamp_nanoseconds(item.message.header.stamp) + shift_ns
            item.message.header = frame_header(stamp_ns)  # its own: the image's stays shared
            self.sent[counter] = stamp_ns
        return kept


class Rig:
    """liveness_node as a process, the frame player and a result listener in this process."""

    def __init__(self, context: Context, node: NodeProcess, rate_hz: float,
                 jitter: float = 0.0) -> None:
        self.node_process = node
        self.node = Node('rates_player', context=context)
        pixels = np.random.default_rng(0).integers(20, 200, (400, 640), dtype=np.uint8)
        images = {phase: [array_to_image(pixels, 'mono8', Header())]
                  for phase in (Phase.FRONT, Phase.RIGHT)}
        self.stamps = Stamps(round(1e9 / rate_hz), jitter)
        self.player = FramePlayer(self.node, images, rate_hz, corners=lambda counter: CORNERS,
                                  hook=self.stamps)
        self.results: list[LivenessResult] = []
        self.node.create_subscription(
            LivenessResult, LIVENESS_RESULT, self.results.append,
            QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        node.wait_ready(self._connected, START_TIMEOUT_S, 'did not subscribe')

    def _connected(self) -> bool:
        self.executor.spin_once(timeout_sec=0.05)
        return (all(p.get_subscription_count() > 0 for p in self.player.publishers.values())
                and self.node.count_publishers(f'/{LIVENESS_RESULT}') > 0)

    def play_until(self, done: Callable[[], bool], what: str) -> None:
        """Play and collect until ``done()``; fail naming ``what`` on the node's end or timeout."""
        deadline = time.monotonic() + PLAY_TIMEOUT_S
        while not done():
            assert self.node_process.running, self.node_process.problem()
            assert time.monotonic() < deadline, f'{what}: {self.node_process.output}'
            self.executor.spin_once(timeout_sec=min(max(self.player.play_due(), 0.0), 0.02))

    def scored(self) -> list[LivenessResult]:
        """Results of a scored pair (not timeout notices, not dropped sets)."""
        return [r for r in self.results if r.frame_counter_b and math.isfinite(r.score)]

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture
def rig(ros_context: Context, tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """Start liveness_node (defaults but the model) and a Rig playing at a rate."""
    model = constant_face_model(tmp_path / 'live.onnx', probability_logit=6.0)
    made: list[Rig] = []
    processes: list[NodeProcess] = []

    def make(rate_hz: float, jitter: float = 0.0) -> Rig:
        process = start_node('liveness_node', '--ros-args', '-p', f'model_path:={model}',
                             '-p', 'allow_unpinned_model:=true')
        processes.append(process)
        made.append(Rig(ros_context, process, rate_hz, jitter))
        return made[-1]

    yield make
    for item in made:
        item.close()
    for process in processes:
        process.stop()


@pytest.mark.parametrize(('rate_hz', 'jitter'), [(30.0, 0.0), (60.0, 0.0), (100.0, 0.0),
                                                 (120.0, 0.0), (60.0, 0.2)],
                         ids=['30Hz', '60Hz', '100Hz', '120Hz', '60Hz-jittered'])
def test_pairs_at_every_camera_rate_and_never_a_mispair(
    rig: Callable[..., Rig], rate_hz: float, jitter: float
) -> None:
    run = rig(rate_hz, jitter)
    run.play_until(lambda: len(run.scored()) >= PAIRS_WANTED, f'pairs at {rate_hz:g} Hz')
    sent = {slot.counter: slot.phase for slot in run.player.ledger}
    for result in run.scored():
        a, b = result.frame_counter_a, result.frame_counter_b
        assert b == a + 1 and (sent.get(a), sent.get(b)) == (Phase.FRONT, Phase.RIGHT)
        assert stamp_nanoseconds(result.stamp_a) == run.stamps.sent[a]
        assert stamp_nanoseconds(result.stamp_b) == run.stamps.sent[b]
        assert result.pair_decision == LivenessResult.DECISION_LIVE
    print(f'{rate_hz:g} Hz, jitter {jitter:.0%}: {len(run.scored())} pairs scored, '
          f'{len(sent)} frames sent, 0 mis-paired')
    if rate_hz != 120.0:  # the first guess, 120 Hz, is wrong: the node measures the period
        assert run.node_process.wait_for_line(r'frames show a period of', timeout=10)
        said = [line for line in run.node_process.lines if 'frames show a period of' in line]
        period_ms = float(re.search(r'period of ([\d.]+) ms', said[-1]).group(1))
        assert period_ms == pytest.approx(1000 / rate_hz, rel=0.1), said


def test_no_pairs_is_explained_once_per_cause(rig: Callable[..., Rig]) -> None:
    run = rig(60.0)
    warning = 'no synchronized set'
    run.stamps.dropped = {EYE_CORNERS}  # landmark_node silent
    run.play_until(lambda: run.node_process.count_lines(warning) >= 1, 'first explanation')
    said = run.node_process.lines
    assert re.search(r'no synchronized set for 1 s: no eye corners for \d+ front frames$',
                     next(line for line in said if warning in line)), said
    played = len(run.player.ledger)
    run.play_until(lambda: len(run.player.ledger) >= played + 180, 'three more seconds')
    assert run.node_process.count_lines(warning) == 1  # the same cause: said once
    run.stamps.dropped = {EYE_CORNERS, flash_frame_topic(Phase.RIGHT)}  # right frames gone too
    run.play_until(lambda: run.node_process.count_lines('no right frames for') >= 1,
                   'second explanation')
    played = len(run.player.ledger)
    run.play_until(lambda: len(run.player.ledger) >= played + 180, 'three more seconds')
    said = [line for line in run.node_process.lines if warning in line]
    assert len(said) == 2, said
    assert re.search(r'no right frames for \d+ front frames$', said[1]), said
