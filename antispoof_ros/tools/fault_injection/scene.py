"""The scene every scenario plays: one flash cycle of a real face photo, phase-coded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from std_msgs.msg import Header

from antispoof_ros.camera.phase_labels import counter_label
from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.msg import EyeCorners, FlashFrame
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.messages import eye_corners_message, flash_frame_message, frame_header
from antispoof_ros.offline.landmark_training.samples import load_sample_faces, place_in_frame
from antispoof_ros.offline.synthetic.phase_coded_images import phase_coded_frame

FRAME_WIDTH, FRAME_HEIGHT = 640, 400
FACE_SCALE = 1.3  # the astronaut's face ~280 px wide in a 640x400 frame
FRAME_PERIOD_NS = 8_333_333  # 120 Hz
PATTERN = DEFAULT_PATTERN


@dataclass(frozen=True)
class Scene:
    """One flash cycle of frames (phase code + face) and the face's eye corners."""

    frames: dict[Phase, np.ndarray]
    corners: EyeCornerPoints

    def flash_frame(self, counter: int, header: Header) -> FlashFrame:
        """The FlashFrame with this counter, labelled as camera_node would label it.

        For sending single scene messages (the frame source plays the scene through the
        harness's frame player instead).
        """
        label = counter_label(counter, PATTERN)
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
