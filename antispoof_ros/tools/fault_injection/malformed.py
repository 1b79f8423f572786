"""Broken copies of valid messages: what can be wrong with a FlashFrame or EyeCorners."""

from __future__ import annotations

from collections.abc import Callable
import copy
import math

from antispoof_ros.flash import Phase
from antispoof_ros.msg import EyeCorners, FlashFrame
from antispoof_ros.nodes.topics import EYE_CORNERS, flash_frame_topic


def _truncate(frame: FlashFrame) -> None:
    frame.image.data = frame.image.data[: len(frame.image.data) // 2]


def _claim_colour(frame: FlashFrame) -> None:
    frame.image.encoding, frame.image.step = 'bgr8', frame.image.width


def _empty(frame: FlashFrame) -> None:
    frame.image.height = frame.image.width = frame.image.step = 0
    frame.image.data = []


def _absurd_size(frame: FlashFrame) -> None:
    frame.image.height = frame.image.width = frame.image.step = 100_000


def _set(field_name: str, value: object) -> Callable[[object], None]:
    return lambda message: setattr(message, field_name, value)


def _set_image(field_name: str, value: object) -> Callable[[FlashFrame], None]:
    return lambda frame: setattr(frame.image, field_name, value)


def _corner_coordinates(value: float) -> Callable[[EyeCorners], None]:
    def change(corners: EyeCorners) -> None:
        corners.right_eye_outer.x = corners.left_eye_inner.y = value
    return change


# What can be wrong with a FlashFrame / EyeCorners message, by name: each changes a copy.
FRAME_DEFECTS: dict[str, Callable[[FlashFrame], None]] = {
    'wrong_encoding': _set_image('encoding', 'yuv422'),
    'colour_claimed': _claim_colour,
    'step_too_short': lambda frame: setattr(frame.image, 'step', frame.image.width - 1),
    'truncated_data': _truncate,
    'zero_size': _empty,
    'absurd_size': _absurd_size,
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
