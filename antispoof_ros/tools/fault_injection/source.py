"""The frame source that plays camera: the harness's frame player on the scene's frames.

Every message the player is about to send passes the source's hook: corners are left out
while landmark_node is the one to answer, an injector may rewrite the slot, and what goes out
is entered in the ledger (a broken message taints the frame slots it names).
"""

from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from antispoof_ros.msg import EyeCorners
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.messages import stamp_nanoseconds
from antispoof_ros.nodes.topics import EYE_CORNERS
from antispoof_ros.tools.fault_injection.ledger import Ledger
from antispoof_ros.tools.fault_injection.scene import PATTERN, Scene
from antispoof_ros.tools.harness.frame_player import FramePlayer, Outgoing, SlotHook

# Duplicated and held-back messages go out back to back: keep them all until delivered.
QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class FrameSource:
    """Publishes the scene's four phases at 120 Hz with counters and stamps, like camera_node.

    Sends the corners of every front frame too unless ``with_corners`` is off (landmark_node
    answers then). An ``injector`` may rewrite what goes out for each frame slot.
    """

    def __init__(self, node: Node, scene: Scene, ledger: Ledger) -> None:
        self.ledger = ledger
        self.with_corners = True
        self.injector: SlotHook | None = None
        images = {phase: [array_to_image(frame, 'mono8')] for phase, frame in scene.frames.items()}
        self.player = FramePlayer(node, images, pattern=PATTERN, corners=lambda _: scene.corners,
                                  qos=QOS, hook=self._hook)

    @property
    def running(self) -> bool:
        """True while the player's thread plays."""
        return self.player.running

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

    def stop(self) -> None:
        """Stop playing (no-op when not running)."""
        self.player.stop()

    def _hook(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        if not self.with_corners:
            outgoing = [item for item in outgoing if item.topic != EYE_CORNERS]
        if self.injector is not None:
            outgoing = self.injector(counter, outgoing)
        for item in outgoing:
            self._record(item)
        return outgoing

    def _record(self, item: Outgoing) -> None:
        message = item.message
        if not item.genuine:
            self.ledger.tainted.update({item.counter, int(message.frame_counter)})
        elif isinstance(message, EyeCorners):
            self.ledger.corners.add(item.counter)
        else:
            self.ledger.add_frame(item.counter, int(message.phase),
                                  stamp_nanoseconds(message.header.stamp))
