"""A bag replayed with ``/clock`` to nodes on ``use_sim_time``: the same verdicts at any speed.

The fused decision keeps pairs for ``timeout_s`` and times out a silent stream: measured on
the wall clock, a replay at a quarter of the speed would hold fewer pairs in the window than
the recording did and end up with other verdicts. On the bag's clock it cannot.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from antispoof_ros.msg import LivenessResult
from antispoof_ros.offline.bagtools.synthetic_bag import write_synthetic_bag
from antispoof_ros.offline.synthetic.protocol import (
    ProtocolConfig,
    build_protocol,
)
from antispoof_ros.offline.synthetic.scene import Species, Split
from antispoof_ros.paths import SHIPPED_MODELS
from antispoof_ros.tools.harness.node_replay import replay_through_liveness_node

pytestmark = [pytest.mark.ros, pytest.mark.slow]
SPEEDS = (0.25, 1.0, 4.0)
CYCLES = 10


@pytest.fixture(scope='module')
def live_and_print_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    protocol = build_protocol(ProtocolConfig(subjects=8, masks=3))
    test_split = [s for s in protocol.scenarios if s.split == Split.TEST]
    live = next(s for s in test_split if s.species == Species.LIVE)
    printed = next(s for s in test_split if s.species == Species.PRINT)
    bag = tmp_path_factory.mktemp('sim_time') / 'live_then_print'
    write_synthetic_bag(bag, [live, printed], cycles=CYCLES, progress=False, continuous=True)
    return bag


def verdicts(bag: Path, rate: float) -> list[tuple[int, int, int]]:
    """(frame B counter, fused decision, reason) of every pair result, in counter order."""
    results: list[LivenessResult] = []
    replay_through_liveness_node(bag, SHIPPED_MODELS / 'p2_face.onnx', results.append,
                                 rate=rate, sim_time=True)
    return sorted((r.frame_counter_b, r.decision, r.reason) for r in results
                  if r.frame_counter_b or r.frame_counter_a)


def test_verdicts_do_not_depend_on_replay_speed(live_and_print_bag: Path) -> None:
    runs = {rate: verdicts(live_and_print_bag, rate) for rate in SPEEDS}
    for rate, run in runs.items():
        print(f'{rate:g}x: {len(run)} pair results, fused decisions '
              f'{dict(Counter(decision for _, decision, _ in run))}')
    assert len(runs[1.0]) == 2 * CYCLES  # one result per front+right pair
    assert runs[0.25] == runs[1.0] == runs[4.0]
    decided = {decision for _, decision, _ in runs[1.0]}
    assert {LivenessResult.DECISION_LIVE, LivenessResult.DECISION_SPOOF} <= decided
