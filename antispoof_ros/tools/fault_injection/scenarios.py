"""The scenarios as data: which nodes run, what feeds them, the fault, what must show."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from antispoof_ros.nodes.topics import EYE_CORNERS
from antispoof_ros.tools.fault_injection.faults import Fault, Restart, Unplug, Window
from antispoof_ros.tools.fault_injection.injectors import (
    FAULT_CYCLES,
    DropFrames,
    DuplicateMessages,
    MalformedBurst,
    ReorderCycles,
)
from antispoof_ros.tools.fault_injection.limits import CAMERA_RATE_HZ, DIAGNOSTICS_PERIOD_S

UNPLUGS = 3
UNPLUG_SPACING_S = 0.3
# Where a remapped landmark_node answers while the source provides the corners itself.
SIDE_CORNERS_TOPIC = 'fault_injection/landmark_corners'

# Node executables and their arguments. The 640x400 frames hold a ~280 px face: landmark_node
# detects at 1/2 scale instead of the default 1/4.
LIVENESS_ARGUMENTS = ('-p', f'diagnostics_period_s:={DIAGNOSTICS_PERIOD_S}')
LANDMARK_ARGUMENTS = ('-p', 'min_face_px:=160', *LIVENESS_ARGUMENTS)
LIVENESS_ONLY = {'liveness_node': LIVENESS_ARGUMENTS}
WITH_LANDMARKS = {**LIVENESS_ONLY, 'landmark_node': LANDMARK_ARGUMENTS}
# pylon's emulator cannot reach 120 Hz (~90 Hz): the camera runs at a rate it keeps, and
# liveness_node's synchronizer is told that rate, as on a real rig.
WITH_LANDMARKS_AT_CAMERA_RATE = {
    **WITH_LANDMARKS,
    'liveness_node': (*LIVENESS_ARGUMENTS, '-p', f'frame_rate_hz:={CAMERA_RATE_HZ}'),
}
WITH_LANDMARKS_ASIDE = {
    **LIVENESS_ONLY,
    'landmark_node': (*LANDMARK_ARGUMENTS, '-r', f'{EYE_CORNERS}:={SIDE_CORNERS_TOPIC}'),
}


class Feed(Enum):
    """What plays camera during a scenario."""

    CAMERA = 'camera_node in this process on the emulated camera'
    FRAMES = 'the frame source; landmark_node answers with the corners'
    FRAMES_AND_CORNERS = 'the frame source, with the corners of every front frame'


@dataclass(frozen=True)
class Expectation:
    """What a scenario must show besides no crash, no mis-pairing and no bad decision."""

    counters: tuple[str, ...]  # 'node.counter' that must go up
    unknown: bool  # the fault starves the node of valid pairs longer than its timeout


@dataclass(frozen=True)
class Scenario:
    """One row of the report: set-up, fault and expectation."""

    name: str
    nodes: dict[str, tuple[str, ...]]  # node executable -> its ROS arguments
    feed: Feed
    fault: Fault
    expectation: Expectation


# In the order they run: node processes carry over from one scenario to the next where the
# set-up allows. Duplicates are absorbed by the synchronizer (the set was already emitted):
# nothing degrades.
SCENARIO_TABLE = (
    Scenario('camera_disconnect', WITH_LANDMARKS_AT_CAMERA_RATE, Feed.CAMERA,
             Unplug(UNPLUGS, UNPLUG_SPACING_S),
             Expectation(('camera_node.reconnects', 'camera_node.failed_grabs'),
                         unknown=False)),
    # landmark_node stays out as long as the window faults last (30 cycles/s)
    Scenario('landmark_kill', WITH_LANDMARKS, Feed.FRAMES,
             Restart('landmark_node', kill=True, outage_s=FAULT_CYCLES / 30),
             Expectation(('landmark_node.restarts', 'liveness_node.input_missing'),
                         unknown=True)),
    Scenario('liveness_restart', LIVENESS_ONLY, Feed.FRAMES_AND_CORNERS,
             Restart('liveness_node', kill=False, outage_s=0.0),
             Expectation(('liveness_node.restarts',), unknown=False)),
    Scenario('frames_dropped', LIVENESS_ONLY, Feed.FRAMES_AND_CORNERS,
             Window(DropFrames),
             Expectation(('liveness_node.input_missing',), unknown=True)),
    Scenario('frames_duplicated', LIVENESS_ONLY, Feed.FRAMES_AND_CORNERS,
             Window(DuplicateMessages),
             Expectation(('liveness_node.input_duplicate',), unknown=False)),
    Scenario('frames_reordered', LIVENESS_ONLY, Feed.FRAMES_AND_CORNERS,
             Window(ReorderCycles),
             Expectation(('liveness_node.input_out_of_order',
                          'liveness_node.pairs_out_of_order'), unknown=True)),
    Scenario('malformed_burst', WITH_LANDMARKS_ASIDE, Feed.FRAMES_AND_CORNERS,
             Window(MalformedBurst),
             Expectation(('liveness_node.pairs_bad_image',
                          'liveness_node.pairs_corners_outside_frame',
                          'liveness_node.pairs_bad_input',
                          'liveness_node.pairs_wrong_phase',
                          'landmark_node.bad_input_total'), unknown=True)),
)
SCENARIOS = tuple(scenario.name for scenario in SCENARIO_TABLE)
BY_NAME = {scenario.name: scenario for scenario in SCENARIO_TABLE}
