"""What the frame source sends: one phase-coded flash cycle of a face, broken copies, injectors."""

from __future__ import annotations

from collections.abc import Callable
import copy
from dataclasses import dataclass
import math

import numpy as np
from std_msgs.msg import Header

from antispoof_ros.camera.phase_labels import counter_label
from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.msg import EyeCorners, FlashFrame
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.messages import eye_corners_message, flash_frame_message, frame_header
from antispoof_ros.nodes.topics import EYE_CORNERS, flash_frame_topic
from antispoof_ros.offline.landmark_training.samples import load_sample_faces, place_in_frame
from antispoof_ros.offline.synthetic.phase_coded_images import phase_coded_frame
from antispoof_ros.tools.harness.frame_player import Outgoing

FRAME_WIDTH, FRAME_HEIGHT = 640, 400
FACE_SCALE = 1.3  # the astronaut's face ~280 px wide in a 640x400 frame
FRAME_PERIOD_NS = 8_333_333  # 120 Hz
PATTERN = DEFAULT_PATTERN
FAULT_CYCLES = 24  # 0.8 s at 30 cycles/s: longer than liveness_node's timeout_s (0.5 s)


@dataclass(frozen=True)
class Scene:
    """One flash cycle of frames (phase code + face) and the face's eye corners."""

    frames: dict[Phase, np.ndarray]
    corners: EyeCornerPoints

    def flash_frame(self, counter: int, header: Header) -> FlashFrame:
        """The FlashFrame with this counter, labelled as camera_node labels a checked frame."""
        label = counter_label(counter, PATTERN, verified=True)
        return flash_frame_message(label, header,
                                   array_to_image(self.frames[label.phase], 'mono8', header))

    def eye_corners(self, counter: int, header: Header) -> EyeCorners:
        """The face's EyeCorners, as landmark_node would answer the front frame ``counter``."""
        return eye_corners_message(header, counter, self.corners)


def slot_header(counter: int, epoch_ns: int = 0) -> Header:
    """Header of the frame with this counter: stamps 1/120 s apart from ``epoch_ns``."""
    return frame_header(epoch_ns + counter * FRAME_PERIOD_NS)


def make_scene(width: int = FRAME_WIDTH, height: int = FRAME_HEIGHT) -> Scene:
    """The astronaut photo on each phase's coded background, at the same place."""
    face = next(f for f in load_sample_faces() if f.name == 'astronaut').cropped()
    frames, corners = {}, None
    for index, phase in enumerate(PATTERN):
        background = phase_coded_frame(phase, width, height, seed=index)
        frames[phase], corners = place_in_frame(face, np.random.default_rng(index),
                                                scale=FACE_SCALE, frame=background)
    return Scene(frames, corners)


def _set(field_name: str, value: object) -> Callable[[object], None]:
    return lambda message: setattr(message, field_name, value)


def _set_image(**fields: object) -> Callable[[FlashFrame], None]:
    def change(frame: FlashFrame) -> None:
        for name, value in fields.items():
            setattr(frame.image, name, value)
    return change


def _corner_coordinates(value: float) -> Callable[[EyeCorners], None]:
    def change(corners: EyeCorners) -> None:
        corners.right_eye_outer.x = corners.left_eye_inner.y = value
    return change


# What can be wrong with a FlashFrame / EyeCorners message, by name: each changes a copy.
FRAME_DEFECTS: dict[str, Callable[[FlashFrame], None]] = {
    'wrong_encoding': _set_image(encoding='yuv422'),
    'colour_claimed': lambda frame: _set_image(encoding='bgr8', step=frame.image.width)(frame),
    'step_too_short': lambda frame: setattr(frame.image, 'step', frame.image.width - 1),
    'truncated_data': lambda frame: setattr(
        frame.image, 'data', frame.image.data[: len(frame.image.data) // 2]),
    'zero_size': _set_image(height=0, width=0, step=0, data=[]),
    'absurd_size': _set_image(height=100_000, width=100_000, step=100_000),
    'unknown_phase': _set('phase', 7),
    'position_out_of_cycle': _set('position_in_cycle', 200),
    'huge_counter': _set('frame_counter', 2**64 - 1),
}
CORNER_DEFECTS: dict[str, Callable[[EyeCorners], None]] = {
    'nan_corners': _corner_coordinates(math.nan),
    'inf_corners': _corner_coordinates(math.inf),
    'corners_outside_frame': _corner_coordinates(1e7),
    'unknown_status': _set('status', 9),
    'huge_counter': _set('frame_counter', 2**64 - 1),
}
# (topic, defect) in the order a burst sends them: front frames, right frames, corners.
MALFORMED_KINDS = (
    *((flash_frame_topic(Phase.FRONT), defect) for defect in FRAME_DEFECTS),
    *((flash_frame_topic(Phase.RIGHT), defect) for defect in FRAME_DEFECTS),
    *((EYE_CORNERS, defect) for defect in CORNER_DEFECTS),
)


def malformed(message: FlashFrame | EyeCorners, defect: str) -> FlashFrame | EyeCorners:
    """A copy of a valid message with one of ``FRAME_DEFECTS`` or ``CORNER_DEFECTS``."""
    defects = CORNER_DEFECTS if isinstance(message, EyeCorners) else FRAME_DEFECTS
    broken = copy.deepcopy(message)
    defects[defect](broken)
    return broken


class WindowInjector:
    """Rewrites the source's messages for the frame slots of a window of whole cycles."""

    unit = 'messages'

    def __init__(self, first_counter: int) -> None:
        self.first = first_counter
        self.end = first_counter + FAULT_CYCLES * len(PATTERN)
        self.injected = 0

    def __call__(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Rewrite inside the window, pass through outside it."""
        return self.rewrite(counter, outgoing) if self.first <= counter < self.end else outgoing

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """What goes out instead of ``outgoing`` for this slot."""
        raise NotImplementedError


class DropFrames(WindowInjector):
    """Every right frame and a random 30 % of the others are lost."""

    unit = 'frames'

    def __init__(self, first_counter: int, seed: int = 0) -> None:
        super().__init__(first_counter)
        self._rng = np.random.default_rng(seed)

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Drop the frame (its corners stay: the landmark node saw it)."""
        if counter_label(counter, PATTERN).phase == Phase.RIGHT or self._rng.random() < 0.3:
            self.injected += 1
            return [item for item in outgoing if item.topic == EYE_CORNERS]
        return outgoing


class DuplicateMessages(WindowInjector):
    """Every frame and corners message is delivered twice."""

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Each message, then the same again."""
        self.injected += len(outgoing)
        return outgoing + outgoing


class ReorderCycles(WindowInjector):
    """Every other cycle is held back and delivered after the cycle that follows it."""

    unit = 'cycles'

    def __init__(self, first_counter: int) -> None:
        super().__init__(first_counter)
        self._held: list[Outgoing] = []

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Hold even cycles of the window; release them at the end of the next one."""
        cycle, position = divmod(counter - self.first, len(PATTERN))
        if cycle % 2 == 0:
            self._held += outgoing
            return []
        if position < len(PATTERN) - 1:
            return outgoing
        late, self._held = self._held, []
        self.injected += 1
        return outgoing + late


class MalformedBurst(WindowInjector):
    """One broken message per cycle, every kind in turn, in place of the genuine one."""

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Replace the front frame, right frame or corners of the cycle by a broken copy."""
        cycle = (counter - self.first) // len(PATTERN)
        topic, defect = MALFORMED_KINDS[cycle % len(MALFORMED_KINDS)]
        self.injected += sum(item.topic == topic for item in outgoing)
        return [Outgoing(topic, malformed(item.message, defect), counter, genuine=False)
                if item.topic == topic else item for item in outgoing]
