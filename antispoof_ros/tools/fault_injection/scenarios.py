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

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from antispoof_ros.flash import Phase
from antispoof_ros.liveness.frame_source_check import HOLD_S
from antispoof_ros.msg import EyeCorners, FlashFrame
from antispoof_ros.nodes.messages import frame_header
from antispoof_ros.nodes.topics import EYE_CORNERS, flash_frame_topic
from antispoof_ros.tools.fault_injection.scene import (
    FAULT_CYCLES,
    FRAME_PERIOD_NS,
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
# The frame source's node: the nodes are told it is their camera (camera_node_name).
SOURCE_NODE = 'fault_injection_camera'
# The injected recording: published by a node named as the package's bag replay tool's, with
# the counters and stamps it was recorded with (an hour ago, counters far from the camera's).
REPLAY_NODE = 'bag_replay'
REPLAY_FIRST_COUNTER = 1_000_000_000
REPLAY_AGE_NS = 3600 * 1_000_000_000
REPLAY_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


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


@dataclass(frozen=True)
class ReplayInjection:
    """A second node publishes a recorded face onto the camera topics while the camera plays.

    The recording's front and right frames (with the front frames' corners, so they can
    pair) go out once per flash cycle for ``cycles`` cycles, after the nodes have matched
    the second publisher. Every one of them must be refused: no pair resting on them is
    scored, and nothing is LIVE while they come.
    """

    cycles: int

    def inject(self, run: ScenarioRunner) -> FaultWindow:
        """Publish the recording; the window ends when its last frame went out."""
        node = Node(REPLAY_NODE, context=run.context, start_parameter_services=False)
        frames = {phase: node.create_publisher(FlashFrame, flash_frame_topic(phase),
                                               REPLAY_QOS) for phase in (Phase.FRONT, Phase.RIGHT)}
        corners = node.create_publisher(EyeCorners, EYE_CORNERS, REPLAY_QOS)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not all(p.get_subscription_count() for p in (*frames.values(), corners)):
                if time.monotonic() > deadline:
                    raise FaultInjectionError('no subscriber matched the replayed recording')
                time.sleep(0.01)
            epoch_ns, injected, start = time.time_ns() - REPLAY_AGE_NS, 0, time.monotonic()
            for cycle in range(self.cycles):
                for phase, publisher in frames.items():
                    counter = REPLAY_FIRST_COUNTER + cycle * len(PATTERN) + PATTERN.index(phase)
                    header = frame_header(epoch_ns + (counter - REPLAY_FIRST_COUNTER)
                                          * FRAME_PERIOD_NS)
                    publisher.publish(run.scene.flash_frame(counter, header))
                    injected += 1
                    if phase == Phase.FRONT:
                        corners.publish(run.scene.eye_corners(counter, header))
                time.sleep(len(PATTERN) * FRAME_PERIOD_NS / 1e9)
            end = time.monotonic()
        finally:
            node.destroy_node()
        return FaultWindow(injected, 'frames', start, end, run.ledger.newest_counter + 1)


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
    #: No LIVE while the fault lasts, whatever the pairs.
    no_live: bool = False
    recovery_limit_s: float = RECOVERY_LIMIT_S


@dataclass(frozen=True)
class Scenario:
    """One row of the report: set-up, fault and expectation."""

    name: str
    nodes: dict[str, tuple[str, ...]]  # node executable -> its ROS arguments
    feed: Feed
    fault: Unplug | Restart | Window | ReplayInjection
    expectation: Expectation


# The 640x400 frames hold a ~280 px face: landmark_node detects at 1/2 scale, not 1/4.
CAMERA_ARGUMENTS = ('-p', f'diagnostics_period_s:={DIAGNOSTICS_PERIOD_S}')
LIVENESS_ARGUMENTS = (*CAMERA_ARGUMENTS, '-p', f'camera_node_name:={SOURCE_NODE}')
LANDMARK_ARGUMENTS = ('-p', 'min_face_px:=160', *LIVENESS_ARGUMENTS)
LIVENESS_ONLY = {'liveness_node': LIVENESS_ARGUMENTS}
WITH_LANDMARKS = {**LIVENESS_ONLY, 'landmark_node': LANDMARK_ARGUMENTS}
# pylon's emulator cannot reach 120 Hz (~90 Hz): the camera runs at a rate it keeps, and
# liveness_node's synchronizer is told that rate, as on a real rig. camera_node itself
# plays camera, under its own name.
WITH_LANDMARKS_AT_CAMERA_RATE = {
    'liveness_node': (*CAMERA_ARGUMENTS, '-p', f'frame_rate_hz:={CAMERA_RATE_HZ}'),
    'landmark_node': ('-p', 'min_face_px:=160', *CAMERA_ARGUMENTS),
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
    # the nodes distrust the source for HOLD_S after the recording's publisher left
    Scenario('replay_injection', LIVENESS_ONLY, Feed.FRAMES_AND_CORNERS,
             ReplayInjection(FAULT_CYCLES),
             Expectation(('liveness_node.source_untrusted_onsets',), unknown=True, no_live=True,
                         recovery_limit_s=RECOVERY_LIMIT_S + HOLD_S)),
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
