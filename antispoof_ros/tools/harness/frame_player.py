"""The one stand-in camera of the tools: FlashFrames on the phase topics at a nominal rate.

Slot ``counter`` is labelled by ``counter_label`` and stamped with its nominal capture time
(exactly one period apart whatever the scheduling jitter, so the nodes pair them as they pair
a camera's). Deadlines are absolute: a late slot does not delay the ones after it. A phase
without images is not published, but its slots still take their time. The images are shared
by every cycle and never copied (a 1920x1200 copy costs more than the publish): a hook that
alters an image gives the message an Image of its own.

It publishes from a node of its own, in the namespace of the node it is given, named as the
camera node (``CAMERA_NODE``) unless told otherwise: the nodes refuse frames of any other
publisher than their ``camera_node_name`` (``antispoof_ros.nodes.source_guard``). ``close``
removes that node; the context's shutdown does too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
import threading
import time

from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_system_default
from sensor_msgs.msg import Image

from antispoof_ros.camera.phase_labels import counter_label
from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.msg import EyeCorners, FlashFrame
from antispoof_ros.nodes.messages import eye_corners_message, flash_frame_message, frame_header
from antispoof_ros.nodes.source_guard import CAMERA_NODE_NAME
from antispoof_ros.nodes.topics import EYE_CORNERS, flash_frame_topic

CAMERA_RATE_HZ = 120.0
CAMERA_NODE: str = CAMERA_NODE_NAME.default
NS_PER_S = 1_000_000_000


@dataclass
class Outgoing:
    """One message about to be sent for a frame slot."""

    topic: str
    message: object
    counter: int  # the frame slot it belongs to
    genuine: bool = True  # False: a hook made or altered it


# Rewrites what goes out for one frame slot: (counter, messages) -> the messages to send.
SlotHook = Callable[[int, list[Outgoing]], list[Outgoing]]


@dataclass(frozen=True, slots=True)
class SentSlot:
    """What one played frame slot sent, and when."""

    counter: int
    phase: Phase
    stamp_ns: int  # nominal capture time in the messages' headers
    late_ns: int  # how long after its deadline the slot went out
    sent_ns: int  # time.monotonic_ns() when it went out
    topics: tuple[str, ...]  # one per message sent, after the hook


class FramePlayer:
    """Publishes frame slots like camera_node, on a fixed schedule.

    ``images[phase]`` are taken in turn cycle by cycle; with ``corners``, each slot of
    ``corners_phase`` also gets its EyeCorners, as landmark_node would answer it. ``hook``
    may rewrite, add or drop a slot's messages before they go out; ``ledger`` holds a
    ``SentSlot`` per slot played. Drive it with ``play_due`` from a spin loop, ``run`` or
    ``start``/``stop``.
    """

    def __init__(self, node: Node, images: Mapping[Phase, Sequence[Image]],
                 rate_hz: float = CAMERA_RATE_HZ, pattern: tuple[Phase, ...] = DEFAULT_PATTERN,
                 corners: Callable[[int], EyeCornerPoints | None] | None = None,
                 corners_phase: Phase = Phase.FRONT,
                 qos: QoSProfile = qos_profile_system_default,
                 hook: SlotHook | None = None, node_name: str = CAMERA_NODE) -> None:
        if not rate_hz > 0:
            raise ValueError(f'frame rate must be positive, not {rate_hz}')
        self.images = {phase: list(frames) for phase, frames in images.items() if frames}
        self.pattern = pattern
        self.period_ns = round(NS_PER_S / rate_hz)
        self.corners = corners
        self.corners_phase = corners_phase
        self.hook = hook
        self.node = Node(node_name, namespace=node.get_namespace(), context=node.context,
                         start_parameter_services=False)
        self.publishers = {flash_frame_topic(phase): self.node.create_publisher(
            FlashFrame, flash_frame_topic(phase), qos) for phase in self.images}
        if corners is not None:
            self.publishers[EYE_CORNERS] = self.node.create_publisher(EyeCorners, EYE_CORNERS,
                                                                      qos)
        self.ledger: list[SentSlot] = []
        self.next_counter = self._first_counter = 0
        self._start_ns: int | None = None  # monotonic time of the first slot's deadline
        self._epoch_ns = 0  # wall-clock stamp of slot 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def play_due(self) -> float:
        """Publish every slot whose deadline has come; the seconds until the next one."""
        now_ns = self._clock_started()
        while (deadline_ns := self._deadline_ns(self.next_counter)) <= now_ns:
            self._play(self.next_counter, deadline_ns)
            self.next_counter += 1
            now_ns = time.monotonic_ns()
        return (deadline_ns - now_ns) / NS_PER_S

    def run(self, stopped: Callable[[], bool]) -> None:
        """Play slot after slot, sleeping to each deadline, until ``stopped()`` is true."""
        self._clock_started()
        while not stopped():
            delay_s = (self._deadline_ns(self.next_counter) - time.monotonic_ns()) / NS_PER_S
            if delay_s > 0:
                self._stop.wait(delay_s)
            self.play_due()

    def start(self) -> None:
        """Play in a thread of this player's own from the next slot on."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, args=(self._stop.is_set,),
                                        name='frame_player', daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End ``start``'s thread (no-op when not running)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def close(self) -> None:
        """Stop playing and remove the player's node with its publishers."""
        self.stop()
        self.node.destroy_node()

    @property
    def running(self) -> bool:
        """``start``'s thread is playing."""
        return self._thread is not None and self._thread.is_alive()

    def restart_at(self, counter: int) -> None:
        """Continue from slot ``counter`` with a fresh schedule (after a pause, say)."""
        self.next_counter = self._first_counter = counter
        self._start_ns = None

    def slot_messages(self, counter: int) -> list[Outgoing]:
        """The messages of slot ``counter`` as the camera (and landmark_node) would send them."""
        # the player made each frame for its phase: the label is verified by construction
        label = counter_label(counter, self.pattern, verified=True)
        frames = self.images.get(label.phase)
        if not frames:
            return []
        header = frame_header(self.stamp_ns(counter))
        image = frames[label.cycle_index % len(frames)]
        image.header = header
        outgoing = [Outgoing(flash_frame_topic(label.phase),
                             flash_frame_message(label, header, image), counter)]
        if self.corners is not None and label.phase == self.corners_phase:
            outgoing.append(Outgoing(EYE_CORNERS, eye_corners_message(
                header, counter, self.corners(counter)), counter))
        return outgoing

    def stamp_ns(self, counter: int) -> int:
        """Nominal capture time of slot ``counter`` (wall clock, ns)."""
        return self._epoch_ns + counter * self.period_ns

    def _clock_started(self) -> int:
        """Now (monotonic ns); on the first call the schedule and the stamps start here."""
        now_ns = time.monotonic_ns()
        if self._start_ns is None:
            self._start_ns = now_ns
            self._epoch_ns = time.time_ns() - self._first_counter * self.period_ns
        return now_ns

    def _deadline_ns(self, counter: int) -> int:
        return self._start_ns + (counter - self._first_counter) * self.period_ns

    def _play(self, counter: int, deadline_ns: int) -> None:
        planned = self.slot_messages(counter)
        outgoing = planned if self.hook is None else self.hook(counter, list(planned))
        if not planned and not outgoing:
            return  # a phase this player does not play
        late_ns = time.monotonic_ns() - deadline_ns
        for item in outgoing:
            self.publishers[item.topic].publish(item.message)
        self.ledger.append(SentSlot(counter, counter_label(counter, self.pattern).phase,
                                    self.stamp_ns(counter), late_ns, time.monotonic_ns(),
                                    tuple(item.topic for item in outgoing)))
