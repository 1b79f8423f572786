"""What plays camera (the frame source, or camera_node on the emulated camera) and the ledger.

Every message the source's frame player is about to send passes its hook: corners are left
out while landmark_node is the one to answer, an injector may rewrite the slot, and what goes
out is entered in the ledger (a broken message taints the frame slots it names).
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from rclpy.context import Context
from rclpy.executors import Executor
import rclpy.logging
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy

from antispoof_ros.camera.phase_labels import counter_label
from antispoof_ros.flash import Phase
from antispoof_ros.msg import EyeCorners, FlashFrame
from antispoof_ros.nodes.camera_node import CameraNode
from antispoof_ros.nodes.image_conversion import array_to_image, image_to_array
from antispoof_ros.nodes.messages import stamp_nanoseconds
from antispoof_ros.nodes.topics import EYE_CORNERS, flash_frame_topic
from antispoof_ros.offline.synthetic.emulator_folder import write_emulator_frames
from antispoof_ros.offline.synthetic.phase_coded_images import decode_phase
from antispoof_ros.tools.fault_injection.scenarios import (
    CAMERA_RATE_HZ,
    DIAGNOSTICS_PERIOD_S,
    SOURCE_NODE,
    FaultInjectionError,
)
from antispoof_ros.tools.fault_injection.scene import FRAME_HEIGHT, FRAME_WIDTH, PATTERN, Scene
from antispoof_ros.tools.harness.frame_player import FramePlayer, Outgoing, SlotHook

# Duplicated and held-back messages go out back to back: keep them all until delivered.
QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


@dataclass
class Ledger:
    """Genuine frames and corners that reached the topics; counters of broken messages."""

    frames: dict[int, int] = field(default_factory=dict)  # counter -> phase
    stamps: dict[int, int] = field(default_factory=dict)  # counter -> header stamp (ns)
    corners: set[int] = field(default_factory=set)
    tainted: set[int] = field(default_factory=set)
    mislabelled: int = 0  # frames or corners whose labels contradict what was sent
    newest_counter: int = 0  # the highest counter of a frame sent (or seen) intact
    newest_of_phase: dict[int, int] = field(default_factory=dict)  # phase -> highest counter

    def add_mislabelled_frame(self, counter: int) -> None:
        """A frame whose labels contradict its counter or pixels: it can be in no valid pair."""
        self.mislabelled += 1
        self.tainted.add(counter)

    def add_frame(self, counter: int, phase: int, stamp_ns: int) -> None:
        """A frame sent (or seen) intact."""
        self.frames[counter] = phase
        self.stamps[counter] = stamp_ns
        self.newest_counter = max(self.newest_counter, counter)
        self.newest_of_phase[phase] = max(self.newest_of_phase.get(phase, counter), counter)

    def pair_problem(self, counter_a: int, counter_b: int) -> str:
        """What keeps two frames from being a valid pair ('' when they are one).

        Valid: a front frame, the right frame after it and that front frame's corners, all
        intact.
        """
        if {counter_a, counter_b} & self.tainted:
            return 'a broken frame'
        if counter_b != counter_a + 1:
            return 'frames not consecutive'
        if (self.frames.get(counter_a), self.frames.get(counter_b)) != (Phase.FRONT, Phase.RIGHT):
            return 'not a front + right pair of sent frames'
        if counter_a not in self.corners:
            return 'no corners of the front frame seen'
        return ''

    def valid_pair(self, counter_a: int, counter_b: int) -> bool:
        """``pair_problem`` finds nothing."""
        return not self.pair_problem(counter_a, counter_b)


class FrameSource:
    """Publishes the scene's four phases at 120 Hz with counters and stamps, like camera_node.

    Sends the corners of every front frame too unless ``with_corners`` is off (landmark_node
    answers then). An ``injector`` may rewrite what goes out for each frame slot. Its player
    publishes from the node ``SOURCE_NODE`` (the nodes are told it is their camera);
    ``close`` takes that node off the graph while camera_node plays camera (the nodes would
    refuse it as a second publisher), the next ``start`` brings it back.
    """

    def __init__(self, node: Node, scene: Scene, ledger: Ledger) -> None:
        self.ledger = ledger
        self.with_corners = True
        self.injector: SlotHook | None = None
        self._node, self._scene = node, scene
        self._images = {phase: [array_to_image(frame, 'mono8')]
                        for phase, frame in scene.frames.items()}
        self._player: FramePlayer | None = None

    @property
    def player(self) -> FramePlayer:
        """The frame player, made on first use."""
        if self._player is None:
            self._player = FramePlayer(self._node, self._images, pattern=PATTERN,
                                       corners=lambda _: self._scene.corners, qos=QOS,
                                       hook=self._hook, node_name=SOURCE_NODE)
        return self._player

    @property
    def running(self) -> bool:
        """The player is playing."""
        return self._player is not None and self._player.running

    def stop(self) -> None:
        """Stop playing; the player's node stays on the graph."""
        if self._player is not None:
            self._player.stop()

    def close(self) -> None:
        """Stop playing and take the player's node off the graph."""
        if self._player is not None:
            self._player.close()
            self._player = None

    @property
    def next_counter(self) -> int:
        """The counter of the next slot to go out."""
        return self.player.next_counter

    def sent_at(self, counter: int) -> float:
        """Monotonic time (s) when the slot ``counter`` went out."""
        slot = next(slot for slot in reversed(self.player.ledger) if slot.counter == counter)
        return slot.sent_ns / 1e9

    def start(self) -> None:
        """Play from the next cycle after every counter seen so far, on a fresh schedule."""
        self.player.restart_at((self.ledger.newest_counter // len(PATTERN) + 1) * len(PATTERN))
        self.player.start()

    def _hook(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        if not self.with_corners:
            outgoing = [item for item in outgoing if item.topic != EYE_CORNERS]
        if self.injector is not None:
            outgoing = self.injector(counter, outgoing)
        for item in outgoing:
            message = item.message
            if not item.genuine:
                self.ledger.tainted.update({item.counter, int(message.frame_counter)})
            elif isinstance(message, EyeCorners):
                self.ledger.corners.add(item.counter)
            else:
                self.ledger.add_frame(item.counter, int(message.phase),
                                      stamp_nanoseconds(message.header.stamp))
        return outgoing


def check_camera_frame(ledger: Ledger, frame: FlashFrame) -> None:
    """Enter a frame of camera_node in the ledger; its labels must match counter and pixels."""
    counter = int(frame.frame_counter)
    expected = counter_label(counter, PATTERN)
    if (frame.phase, frame.position_in_cycle, frame.cycle_index) != (
            expected.phase, expected.position_in_cycle, expected.cycle_index) or (
            decode_phase(image_to_array(frame.image)) != frame.phase):
        ledger.add_mislabelled_frame(counter)
    else:
        ledger.add_frame(counter, int(frame.phase), stamp_nanoseconds(frame.header.stamp))


@contextlib.contextmanager
def camera_node(context: Context, node: Node, executor: Executor, scene: Scene, ledger: Ledger,
                folder: Path) -> Iterator[CameraNode]:
    """camera_node spun by ``executor``; ``node`` checks every frame it publishes."""
    try:
        write_emulator_frames(folder, ((phase, scene.frames[phase]) for phase in PATTERN))
    except OSError as error:
        raise FaultInjectionError(str(error)) from None
    parameters = {'emulated_cameras': 1, 'emulator_image_dir': str(folder),
                  'width': FRAME_WIDTH, 'height': FRAME_HEIGHT, 'frame_rate_hz': CAMERA_RATE_HZ,
                  'retry_delay_s': 0.1, 'diagnostics_period_s': DIAGNOSTICS_PERIOD_S}
    # its parameter dump and reconnect messages would interleave with the report table
    rclpy.logging.set_logger_level('camera_node', rclpy.logging.LoggingSeverity.FATAL)
    camera = CameraNode(context=context, parameter_overrides=[
        Parameter(name, value=value) for name, value in parameters.items()])
    subscriptions = [node.create_subscription(
        FlashFrame, flash_frame_topic(phase), partial(check_camera_frame, ledger), 100)
        for phase in PATTERN]
    executor.add_node(camera)
    try:
        yield camera
    finally:
        executor.remove_node(camera)
        camera.destroy_node()
        for subscription in subscriptions:
            node.destroy_subscription(subscription)
