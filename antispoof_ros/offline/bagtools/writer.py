"""MCAP rosbag2 writers that never leave a half-written bag looking complete.

A bag is written inside ``<path>.partial/`` (under its final name, which the storage file
and metadata.yaml refer to) and moved to ``<path>`` only when it was closed cleanly; an
exception removes the partial folder unless the writer keeps it for recovery (the
recorder does: see ``recovery``). ``FlashBagWriter`` builds FlashFrame messages the way
camera_node does (same topics, header, phase fields and image), so generated frames run
through the real nodes exactly like recorded ones.

Large messages (camera frames) bypass rosbags' in-memory chunk buffer: each goes to the
file as a chunk of its own, straight from the received bytes. rosbags copies a message
four to five times on its way to disk, ~1 ms per copy of a 2.3 MB frame here, which alone
took most of a core at 120 Hz. ``compression='zstd'`` compresses every chunk with zstd, as
rosbag2's ``mcap`` storage presets do; metadata.yaml then names no compression, as in
rosbag2, because the chunks carry it.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from io import BytesIO
import os
from pathlib import Path
import shutil
import struct
from types import TracebackType
from typing import Self

from backports import zstd
import numpy as np
from rclpy.serialization import serialize_message
from rosbags.interfaces import Connection, Qos
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.rosbag2.errors import WriterError
from rosbags.rosbag2.storage_mcap import McapWriter
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
from antispoof_ros.offline.bagtools.qos import PUBLISHER_DEFAULT, bag_qos
from antispoof_ros.offline.bagtools.typestore import project_typestore

FLASH_FRAME_MSGTYPE = 'antispoof_ros/msg/FlashFrame'
EYE_CORNERS_MSGTYPE = 'antispoof_ros/msg/EyeCorners'
GROUND_TRUTH_EYE_CORNERS = f'{GROUND_TRUTH_NAMESPACE}/eye_corners'
DEFAULT_FRAME_ID = 'nir_camera_optical_frame'  # camera_node's default frame_id
_ENCODINGS = {np.dtype(np.uint8): 'mono8', np.dtype(np.uint16): 'mono16'}
COMPRESSIONS = ('none', 'zstd')
# zstd level 1: on 1920x1200 synthetic NIR frames ratio ~0.53 at ~8 ms per frame; the
# negative ("fast") levels barely compress sensor noise (~0.96), 3 takes ~33 ms per frame.
ZSTD_LEVEL = 1
# Frames compressed at once: zstd runs outside the GIL, next to the subscriptions' thread.
COMPRESSION_THREADS = 2
# Messages at least this large are written as a chunk of their own, without a copy.
DIRECT_WRITE_BYTES = 1 << 18
# MCAP records: opcode, record length; a message's channel id, sequence, log and publish time.
_MESSAGE_RECORD = struct.Struct('<BQHIQQ')
_CHUNK_TIMES = struct.Struct('<QQQI')  # start, end, uncompressed size, uncompressed crc
_OP_MESSAGE, _OP_CHUNK, _OP_MESSAGE_INDEX = 0x05, 0x06, 0x07


class _DirectMcapStorage(McapWriter):
    """rosbags' MCAP storage, writing large messages as single-message chunks without copies.

    With compression, up to ``COMPRESSION_THREADS`` frames are compressed at once (zstd
    releases the GIL) while the caller goes on; they reach the file in the order written.
    """

    def __init__(self, path: Path, compression: CompressionMode) -> None:
        super().__init__(path, compression)
        self._pool = (ThreadPoolExecutor(COMPRESSION_THREADS, 'chunk_compression')
                      if self.compression else None)
        self._in_flight: deque[tuple[int, int, int, Future[list[bytes]]]] = deque()

    def write(self, connection: Connection, timestamp: int, data: bytes | memoryview) -> None:
        """Append one message; large ones go to the file at once (see the module docstring)."""
        if len(data) < DIRECT_WRITE_BYTES:
            super().write(connection, timestamp, data)
            return
        if self.chunk.bio.tell():  # schemas, channels and small messages come first
            if not self.chunk.msgs:
                self.chunk.message_start_time = self.chunk.message_end_time = timestamp
            self.close_chunk()
        self.message_start_time = min(timestamp, self.message_start_time)
        self.message_end_time = max(timestamp, self.message_end_time)
        self.channel_stats[connection.id] += 1
        header = _MESSAGE_RECORD.pack(_OP_MESSAGE, 22 + len(data), connection.id, 0,
                                      timestamp, timestamp)
        size = len(header) + len(data)
        if self._pool is None:
            self._write_chunk(connection.id, timestamp, size, [header, data])
            return
        self._in_flight.append((connection.id, timestamp, size,
                                self._pool.submit(_zstd_frame, header, data)))
        while len(self._in_flight) > COMPRESSION_THREADS:
            self._write_oldest()

    def flush_compressed(self) -> None:
        """Write every frame still being compressed."""
        while self._in_flight:
            self._write_oldest()

    def close(self, version: int, metadata: str) -> None:
        """Write the frames in flight, then the summary (rosbags)."""
        self.flush_compressed()
        self._stop_pool()
        super().close(version, metadata)

    def abort(self) -> None:
        """Close the file without a summary; frames still in flight are dropped."""
        self._stop_pool()
        super().abort()

    def _stop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def _write_oldest(self) -> None:
        channel_id, timestamp, size, compressed = self._in_flight.popleft()
        self._write_chunk(channel_id, timestamp, size, compressed.result())

    def _write_chunk(self, channel_id: int, timestamp: int, size: int,
                     payload: list[bytes | memoryview]) -> None:
        """One chunk holding one message record of ``size`` bytes, stored as ``payload``."""
        stored = sum(len(part) for part in payload)
        chunk_start = self.bio.tell()
        fields = _CHUNK_TIMES.pack(timestamp, timestamp, size, 0) + \
            _string(self.compression) + stored.to_bytes(8, 'little')
        self.bio.write(bytes([_OP_CHUNK]) + (len(fields) + stored).to_bytes(8, 'little')
                       + fields)
        for part in payload:
            self.bio.write(part)
        chunk_end = self.bio.tell()
        index = struct.pack('<HIQQ', channel_id, 16, timestamp, 0)
        self.bio.write(bytes([_OP_MESSAGE_INDEX]) + len(index).to_bytes(8, 'little') + index)
        self.chunks.append(_chunk_index(timestamp, chunk_start, chunk_end - chunk_start,
                                        channel_id, chunk_end, self.bio.tell() - chunk_end,
                                        self.compression, stored, size))


def _zstd_frame(header: bytes, data: bytes | memoryview) -> list[bytes]:
    """One zstd frame of a message record (header and data), in parts."""
    compressor = zstd.ZstdCompressor(level=ZSTD_LEVEL)
    return [compressor.compress(header),
            compressor.compress(data, zstd.ZstdCompressor.FLUSH_FRAME)]


def _string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(4, 'little') + data


def _chunk_index(timestamp: int, start: int, length: int, channel_id: int, index_offset: int,
                 index_length: int, compression: str, stored: int, size: int) -> BytesIO:
    """Chunk index record body (written into the summary at close) of a one-message chunk."""
    record = BytesIO()
    record.write(struct.pack('<QQQQI', timestamp, timestamp, start, length, 10))
    record.write(struct.pack('<HQQ', channel_id, index_offset, index_length))
    record.write(_string(compression))
    record.write(struct.pack('<QQ', stored, size))
    return record


class _BagWriter(Writer):
    """rosbags' writer with the direct MCAP storage."""

    STORAGE_PLUGINS = {**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: _DirectMcapStorage}


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
    ``keep_partial``: a failure leaves the partial folder for ``recovery`` instead of
    removing it. ``staging`` is the folder to write in (default ``<path>.partial``).
    """

    def __init__(self, path: Path | str, labels: Mapping[str, object],
                 start_ns: int | None = None, *, compression: str = 'none',
                 keep_partial: bool = False, staging: Path | None = None) -> None:
        self.path = Path(path)
        self.partial = staging if staging is not None else partial_path(self.path)
        if staging is None:
            check_destination(self.path)
        if compression not in COMPRESSIONS:
            raise BagToolError(f"unknown compression '{compression}' "
                               f"(known: {', '.join(COMPRESSIONS)})")
        self.labels = validate_labels(labels)
        self.start_ns = start_ns
        self.keep_partial = keep_partial
        self.segments: list[LabelSegment] = []
        self.counts: Counter[str] = Counter()
        self._connections: dict[str, Connection] = {}
        self._offered_qos: dict[str, tuple[Qos, ...]] = {}
        self._owns_partial = False
        self._writer = _BagWriter(self.partial / self.path.name, version=9,
                                  storage_plugin=StoragePlugin.MCAP)
        if compression == 'zstd':
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)

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

    def declare_offered_qos(self, topic: str, profiles: Sequence[Qos]) -> None:
        """QoS the publishers of ``topic`` offered; stored with it when its first message comes.

        Topics without a declaration are stored with this package's publisher default.
        """
        self._offered_qos[absolute_topic(topic)] = tuple(profiles)

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
            offered = self._offered_qos.get(topic) or (bag_qos(PUBLISHER_DEFAULT),)
            connection = self._writer.add_connection(topic, msgtype,
                                                     typestore=project_typestore(),
                                                     offered_qos_profiles=offered)
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
            shutil.rmtree(self.partial)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop everything written so far, or with ``keep_partial`` leave it for recovery."""
        storage = self._writer.storage
        if self.keep_partial and storage is not None:
            with suppress(OSError):  # the buffered messages, if the disk takes them
                storage.flush_compressed()
                if storage.chunk.bio.tell():
                    storage.close_chunk()
        with suppress(OSError):  # flushing fails again on a full disk
            self._writer.abort()
        if self._owns_partial and not self.keep_partial:
            shutil.rmtree(self.partial, ignore_errors=True)


class FlashBagWriter(LabelledBagWriter):
    """Writes generated frames as camera_node publishes them, plus eye-corner ground truth.

    ``pattern`` and ``phase_offset`` play the role of the camera node's parameters of the
    same names: they derive each frame's phase, cycle index and position from its counter.
    """

    def __init__(self, path: Path | str, labels: Mapping[str, object], *,
                 pattern: tuple[Phase, ...] = DEFAULT_PATTERN, phase_offset: int = 0,
                 frame_id: str = DEFAULT_FRAME_ID, start_ns: int | None = None,
                 compression: str = 'none') -> None:
        super().__init__(path, labels, start_ns, compression=compression)
        self.labeler = FrameCounterLabeler(pattern, phase_offset)
        self.frame_id = frame_id

    def write_frame(self, phase: Phase, pixels: np.ndarray, frame_counter: int, stamp_ns: int,
                    *, source: PhaseSource = PhaseSource.FRAME_COUNTER,
                    verified: bool = True) -> None:
        """Write one frame on ``camera/<phase>/flash_frame``; uint8 -> mono8, uint16 -> mono16.

        ``phase`` must be the one the pattern assigns to ``frame_counter``: a mismatch is
        a bug in the caller's frame sequence, not something to record. A generated frame was
        rendered for its phase, so its label is verified unless the caller says otherwise.
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
