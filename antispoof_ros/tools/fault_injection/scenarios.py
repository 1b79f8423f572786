"""The scenarios as data (which nodes run, what feeds them, the fault, what must show).

Every fault returns a ``FaultWindow`` whose ``end`` is where recovery is timed from: the end
of the injected window, the last reconnect of the camera, or for a restarted node the first
LivenessResult that rests on its answers. The restarted node's start-up (spawn,
initialisation, discovery, first answer) depends on the machine's load and is reported apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
import time
from typing import TYPE_CHECKING

from antispoof_ros.nodes.topics import EYE_CORNERS
from antispoof_ros.tools.fault_injection.scene import (
    FAULT_CYCLES,
    PATTERN,
    DropFrames,
    DuplicateMessages,
    MalformedBurst,
    ReorderCycles,
    WindowInjector,
)

if TYPE_CHECKING:
    from antispoof_ros.tools.fault_injection.runner import ScenarioRunner

RECOVERY_LIMIT_S = 1.0  # end of the fault -> first LIVE/SPOOF on a valid pair
RECOVERY_WAIT_S = 3.0
START_TIMEOUT_S = 30.0
DIAGNOSTICS_PERIOD_S = 0.25
CAMERA_RATE_HZ = 60.0  # emulated camera: a rate pylon's emulator keeps under load
UNPLUGS = 3
UNPLUG_SPACING_S = 0.3
# Where a remapped landmark_node answers while the source provides the corners itself.
SIDE_CORNERS_TOPIC = 'fault_injection/landmark_corners'


class FaultInjectionError(RuntimeError):
    """The harness itself could not run a scenario (not a failed expectation)."""


@dataclass(frozen=True)
class FaultWindow:
    """An injected fault: how much, when it began and when recovery is timed from."""

    injected: int
    unit: str
    start: float  # monotonic seconds
    end: float
    counter_after: int  # recovery counts pairs from this frame counter on
    startup_s: float | None = None  # spawn -> first result resting on the restarted node


@dataclass(frozen=True)
class Unplug:
    """The emulated camera is unplugged ``count`` times (its own device-removal event)."""

    count: int
    spacing_s: float

    def inject(self, run: ScenarioRunner) -> FaultWindow:
        """Unplug, wait for camera_node to reconnect, again; the window ends at the last."""
        statistics = run.camera.stream.statistics
        start = time.monotonic()
        for unplug in range(self.count):
            time.sleep(self.spacing_s if unplug else 0.0)
            reconnects = statistics.reconnects
            run.camera.stream.camera.camera.FirePnPCallback.Execute()
            deadline = time.monotonic() + START_TIMEOUT_S
            while statistics.reconnects == reconnects:
                if time.monotonic() > deadline:
                    raise FaultInjectionError('the emulated camera did not reconnect')
                time.sleep(0.005)
        return FaultWindow(self.count, 'unplugs', start, time.monotonic(),
                           run.ledger.newest_counter + 1)


@dataclass(frozen=True)
class Restart:
    """A node process ends (SIGKILL, or SIGTERM and a clean exit), is out, and is restarted."""

    node: str
    kill: bool
    outage_s: float

    def inject(self, run: ScenarioRunner) -> FaultWindow:
        """End the node, wait the outage, start it; the window ends when its answers count."""
        start = time.monotonic()
        process = run.retire(self.node)
        (process.kill if self.kill else process.terminate)()
        time.sleep(self.outage_s)
        first_counter = run.source.next_counter  # the old process never saw this frame
        spawned = time.monotonic()
        run.start([self.node])
        answered, counter = run.await_first_result(first_counter, self.node)
        return FaultWindow(1, 'SIGKILL' if self.kill else 'restart', start, answered, counter,
                           startup_s=answered - spawned)


@dataclass(frozen=True)
class Window:
    """The frame source rewrites a window of whole cycles, starting two cycles ahead."""

    injector: type[WindowInjector]

    def inject(self, run: ScenarioRunner) -> FaultWindow:
        """Play the window through the injector; it ends when its last slot went out."""
        source = run.source
        first = (source.next_counter // len(PATTERN) + 2) * len(PATTERN)
        injector = source.injector = self.injector(first)
        while source.next_counter <= injector.end:
            time.sleep(0.01)
        source.injector = None
        return FaultWindow(injector.injected, injector.unit, source.sent_at(first),
                           source.sent_at(injector.end - 1), injector.end)


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
    fault: Unplug | Restart | Window
    expectation: Expectation


# The 640x400 frames hold a ~280 px face: landmark_node detects at 1/2 scale, not 1/4.
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
