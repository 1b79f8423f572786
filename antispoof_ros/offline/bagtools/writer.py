"""MCAP rosbag2 writers that never leave a half-written bag looking complete.

A bag is written inside ``<path>.partial/`` (under its final name, which the storage file
and metadata.yaml refer to) and moved to ``<path>`` only when it was closed cleanly; an
exception removes the partial folder. ``FlashBagWriter`` builds FlashFrame
messages the way camera_node does (same topics, header, phase fields and image), so
generated frames run through the real nodes exactly like recorded ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
import os
from pathlib import Path
import shutil
from types import TracebackType
from typing import Self

import numpy as np
from rclpy.serialization import serialize_message
from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.errors import WriterError
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import String

from antispoof_ros.camera.phase_labels import FrameCounterLabeler, PhaseSource
from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.messages import eye_corners_message, flash_frame_message, frame_header
from antispoof_ros.nodes.topics import flash_frame_topic
from antispoof_ros.offline.bagtools import BagToolError
from antispoof_ros.offline.bagtools.labels import (
    GROUND_TRUTH_NAMESPACE,
    LABELS_MSGTYPE,
    LABELS_TOPIC,
    METADATA_KEY,
    LabelSegment,
    segments_to_metadata,
    validate_labels,
)
from antispoof_ros.offline.bagtools.typestore import project_typestore

FLASH_FRAME_MSGTYPE = 'antispoof_ros/msg/FlashFrame'
EYE_CORNERS_MSGTYPE = 'antispoof_ros/msg/EyeCorners'
GROUND_TRUTH_EYE_CORNERS = f'{GROUND_TRUTH_NAMESPACE}/eye_corners'
DEFAULT_FRAME_ID = 'nir_camera_optical_frame'  # camera_node's default frame_id
_ENCODINGS = {np.dtype(np.uint8): 'mono8', np.dtype(np.uint16): 'mono16'}


def partial_path(path: Path) -> Path:
    """Where a bag is written until it is complete."""
    return path.with_name(path.name + '.partial')


def check_destination(path: Path) -> None:
    """Raise BagToolError unless a new bag (and its partial folder) can be created at ``path``."""
    for candidate in (path, partial_path(path)):
        if candidate.exists():
            raise BagToolError(f'{candidate} exists already, not overwriting')
    parent = path.parent
    if not parent.is_dir():
        raise BagToolError(f'cannot write {path}: {parent} is not an existing folder')
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BagToolError(f'cannot write {path}: {parent} is not writable')


def absolute_topic(name: str) -> str:
    """Fully qualified topic name, as ``ros2 bag record`` stores it."""
    return name if name.startswith('/') else f'/{name}'


class LabelledBagWriter:
    """Context manager writing serialized messages and label segments into a new MCAP bag.

    The first label segment starts at ``start_ns``, or at the first message when None.
    """

    def __init__(self, path: Path | str, labels: Mapping[str, object],
                 start_ns: int | None = None) -> None:
        self.path = Path(path)
        self.partial = partial_path(self.path)
        check_destination(self.path)
        self.labels = validate_labels(labels)
        self.start_ns = start_ns
        self.segments: list[LabelSegment] = []
        self.counts: Counter[str] = Counter()
        self._connections: dict[str, Connection] = {}
        self._owns_partial = False
        self._writer = Writer(self.partial / self.path.name, version=9,
                              storage_plugin=StoragePlugin.MCAP)

    def __enter__(self) -> Self:
        try:
            self.partial.mkdir()
            self._owns_partial = True
            self._writer.open()
        except (OSError, WriterError) as error:
            self.abort()
            raise BagToolError(f'cannot write {self.path}: {error}') from None
        if self.start_ns is not None:
            self.start_segment(self.labels, self.start_ns)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def start_segment(self, labels: Mapping[str, object], start_ns: int) -> None:
        """Labels valid from ``start_ns`` on (a new scenario in the same bag)."""
        segment = LabelSegment(start_ns, validate_labels(labels))
        self._write(LABELS_TOPIC, LABELS_MSGTYPE, start_ns,
                    serialize_message(String(data=segment.to_json())))
        self.segments.append(segment)

    def write_serialized(self, topic: str, msgtype: str, stamp_ns: int,
                         data: bytes | memoryview) -> None:
        """Write one CDR-serialized message (as received, or serialized by rclpy)."""
        if not self.segments:
            self.start_segment(self.labels, stamp_ns)
        self._write(topic, msgtype, stamp_ns, data)

    def _write(self, topic: str, msgtype: str, stamp_ns: int, data: bytes | memoryview) -> None:
        if self._writer.storage is None:
            raise BagToolError(f'{self.path}: bag is not open for writing')
        topic = absolute_topic(topic)
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype,
                                                     typestore=project_typestore())
            self._connections[topic] = connection
        elif connection.msgtype != msgtype:
            raise BagToolError(f'topic {topic} already carries {connection.msgtype}, '
                               f'not {msgtype}')
        self._writer.write(connection, stamp_ns, data)
        self.counts[topic] += 1

    def close(self) -> None:
        """Finish the bag and give it its final name."""
        try:
            self._writer.set_custom_data(METADATA_KEY, segments_to_metadata(self.segments))
            self._writer.close()
            (self.partial / self.path.name).rename(self.path)
            self.partial.rmdir()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop everything written so far."""
        self._writer.abort()
        if self._owns_partial:
            shutil.rmtree(self.partial, ignore_errors=True)


class FlashBagWriter(LabelledBagWriter):
    """Writes generated frames as camera_node publishes them, plus eye-corner ground truth.

    ``pattern`` and ``phase_offset`` play the role of the camera node's parameters of the
    same names: they derive each frame's phase, cycle index and position from its counter.
    """

    def __init__(self, path: Path | str, labels: Mapping[str, object], *,
                 pattern: tuple[Phase, ...] = DEFAULT_PATTERN, phase_offset: int = 0,
                 frame_id: str = DEFAULT_FRAME_ID, start_ns: int | None = None) -> None:
        super().__init__(path, labels, start_ns)
        self.labeler = FrameCounterLabeler(pattern, phase_offset)
        self.frame_id = frame_id

    def write_frame(self, phase: Phase, pixels: np.ndarray, frame_counter: int, stamp_ns: int,
                    *, source: PhaseSource = PhaseSource.FRAME_COUNTER,
                    verified: bool = False) -> None:
        """Write one frame on ``camera/<phase>/flash_frame``; uint8 -> mono8, uint16 -> mono16.

        ``phase`` must be the one the pattern assigns to ``frame_counter``: a mismatch is
        a bug in the caller's frame sequence, not something to record.
        """
        label = self.labeler.label(frame_counter, source, verified)
        if label.phase != phase:
            raise ValueError(f'frame {frame_counter} is a {label.phase.label} frame under '
                             f'the pattern, not {Phase(phase).label}')
        encoding = _ENCODINGS.get(pixels.dtype)
        if encoding is None:
            raise ValueError(f'pixels must be uint8 or uint16, not {pixels.dtype}')
        header = frame_header(stamp_ns, self.frame_id)
        message = flash_frame_message(label, header, array_to_image(pixels, encoding, header))
        self.write_serialized(flash_frame_topic(label.phase), FLASH_FRAME_MSGTYPE, stamp_ns,
                              serialize_message(message))

    def write_eye_corners(self, frame_counter: int, stamp_ns: int,
                          corners: EyeCornerPoints | None,
                          face_box: tuple[int, int, int, int] | None = None) -> None:
        """True eye corners of a frame (None: no face), on ``/ground_truth/eye_corners``.

        ``face_box`` is (x, y, width, height) in pixels. The header equals the frame's, so
        an exact-time synchronizer pairs truth and frame as it pairs landmarks and frame.
        """
        box = None
        if face_box is not None:
            x, y, width, height = (int(v) for v in face_box)
            box = RegionOfInterest(x_offset=x, y_offset=y, width=width, height=height)
        message = eye_corners_message(frame_header(stamp_ns, self.frame_id), frame_counter,
                                      corners, face_box=box)
        self.write_serialized(GROUND_TRUTH_EYE_CORNERS, EYE_CORNERS_MSGTYPE, stamp_ns,
                              serialize_message(message))
