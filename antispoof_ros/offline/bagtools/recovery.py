"""Turn the partial folder of an interrupted recording into a complete bag.

A recorder that is killed (or whose disk fills up) leaves ``<bag>.partial/``: an MCAP file
without its summary and no metadata.yaml, which no reader accepts. Every record that
reached the file whole is still valid, so ``recover`` reads them in file order, stops at
the first incomplete one, and writes them, label segments included, into ``<bag>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
import shutil
import struct
from typing import BinaryIO

from backports import zstd
from rclpy.serialization import deserialize_message
from rosbags.interfaces import Qos
from std_msgs.msg import String
import yaml

from antispoof_ros.offline.bagtools import BagToolError
from antispoof_ros.offline.bagtools.labels import LABELS_TOPIC, PARTIAL_SUFFIX, LabelSegment
from antispoof_ros.offline.bagtools.qos import qos_from_metadata
from antispoof_ros.offline.bagtools.writer import LabelledBagWriter

MAGIC = b'\x89MCAP0\r\n'
_OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK = 0x03, 0x04, 0x05, 0x06
_RECORD_START = struct.Struct('<BQ')
STAGING = 'recovered'


@dataclass(frozen=True)
class RecoveredMessage:
    """One complete message record of a partial MCAP file."""

    topic: str
    msgtype: str
    stamp_ns: int
    data: bytes
    compression: str


def _string(body: bytes, offset: int) -> tuple[str, int]:
    (length,) = struct.unpack_from('<I', body, offset)
    end = offset + 4 + length
    return body[offset + 4:end].decode(), end


def _string_map(body: bytes, offset: int) -> dict[str, str]:
    """An MCAP map<string, string> (byte length, then key/value strings)."""
    (length,) = struct.unpack_from('<I', body, offset)
    entries: dict[str, str] = {}
    offset += 4
    end = offset + length
    while offset < end:
        key, offset = _string(body, offset)
        entries[key], offset = _string(body, offset)
    return entries


def _offered_qos(channel_metadata: dict[str, str]) -> list[Qos]:
    """The QoS profiles rosbag2-style writers keep in a channel's metadata."""
    return [qos_from_metadata(entry)
            for entry in yaml.safe_load(channel_metadata.get('offered_qos_profiles', '')) or []]


def _records(data: bytes | memoryview) -> Iterator[tuple[int, memoryview]]:
    """(opcode, body) of each complete record; stops at the first incomplete one."""
    view = memoryview(data)
    offset = 0
    while offset + _RECORD_START.size <= len(view):
        opcode, length = _RECORD_START.unpack_from(view, offset)
        start = offset + _RECORD_START.size
        if start + length > len(view):
            return
        yield opcode, view[start:start + length]
        offset = start + length


def _file_records(stream: BinaryIO) -> Iterator[tuple[int, memoryview]]:
    """Top-level records of an MCAP file, read one at a time (chunks can be large)."""
    while len(head := stream.read(_RECORD_START.size)) == _RECORD_START.size:
        opcode, length = _RECORD_START.unpack(head)
        body = stream.read(length)
        if len(body) < length:
            return
        yield opcode, memoryview(body)


class _PartialMcap:
    """Schemas and channels seen so far, and the messages they describe."""

    def __init__(self) -> None:
        self.schemas: dict[int, str] = {}
        self.channels: dict[int, tuple[str, str]] = {}
        self.offered_qos: dict[str, list[Qos]] = {}

    def messages(self, stream: BinaryIO) -> Iterator[RecoveredMessage]:
        """Every complete message of the file, in file order."""
        if stream.read(len(MAGIC)) != MAGIC:
            raise BagToolError(f'{stream.name}: not an MCAP file')
        for opcode, body in _file_records(stream):
            if opcode == _OP_CHUNK:
                yield from self._chunk(body)
            else:
                yield from self._record(opcode, body, '')

    def _chunk(self, body: memoryview) -> Iterator[RecoveredMessage]:
        size, _, name_length = struct.unpack_from('<QII', body, 16)
        compression = bytes(body[32:32 + name_length]).decode()
        records = body[32 + name_length + 8:]
        try:
            if compression == 'zstd':
                records = memoryview(zstd.decompress(records))
            elif compression:
                raise BagToolError(f"chunk compression '{compression}' is not supported")
        except zstd.ZstdError:
            return  # a chunk cut short by the crash
        if len(records) != size:
            return
        for opcode, record in _records(records):
            yield from self._record(opcode, record, compression)

    def _record(self, opcode: int, body: memoryview, compression: str
                ) -> Iterator[RecoveredMessage]:
        if opcode == _OP_SCHEMA:
            (schema_id,) = struct.unpack_from('<H', body)
            self.schemas[schema_id] = _string(bytes(body), 2)[0]
        elif opcode == _OP_CHANNEL:
            channel_id, schema_id = struct.unpack_from('<HH', body)
            topic, offset = _string(bytes(body), 4)
            _, offset = _string(bytes(body), offset)  # message encoding
            self.channels[channel_id] = (topic, self.schemas.get(schema_id, ''))
            self.offered_qos[topic] = _offered_qos(_string_map(bytes(body), offset))
        elif opcode == _OP_MESSAGE:
            channel_id, _, stamp_ns, _ = struct.unpack_from('<HIQQ', body)
            topic, msgtype = self.channels[channel_id]
            yield RecoveredMessage(topic, msgtype, stamp_ns, bytes(body[22:]), compression)


def final_path(partial: Path) -> Path:
    """The bag a partial folder was going to become."""
    if not partial.name.endswith(PARTIAL_SUFFIX):
        raise BagToolError(f'{partial} is not a partial recording (its name must end in '
                           f'{PARTIAL_SUFFIX})')
    return partial.with_name(partial.name.removesuffix(PARTIAL_SUFFIX))


def recover(partial: Path) -> tuple[Path, dict[str, int]]:
    """Write every complete message of ``partial`` into its final bag; messages per topic.

    The partial folder is removed once the bag is complete; an earlier, interrupted
    recovery inside it is started again.
    """
    partial = Path(partial)
    bag = final_path(partial)
    source = partial / bag.name / f'{bag.name}.mcap'
    if not source.is_file():
        raise BagToolError(f'{partial}: holds no recording ({source.name} is missing)')
    if bag.exists():
        raise BagToolError(f'{bag} exists already, not overwriting')
    staging = partial / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    writer: LabelledBagWriter | None = None
    try:
        with source.open('rb') as stream:
            mcap = _PartialMcap()
            for message in mcap.messages(stream):
                if message.topic == LABELS_TOPIC:
                    segment = LabelSegment.from_json(
                        deserialize_message(message.data, String).data)
                    if writer is None:
                        writer = LabelledBagWriter(
                            bag, segment.labels, compression=message.compression or 'none',
                            staging=staging).__enter__()
                    writer.start_segment(segment.labels, segment.start_ns)
                elif writer is None:
                    raise BagToolError(f'{partial}: a message precedes every label segment')
                else:
                    if message.topic not in writer.counts:
                        writer.declare_offered_qos(message.topic,
                                                   mcap.offered_qos.get(message.topic, []))
                    writer.write_serialized(message.topic, message.msgtype, message.stamp_ns,
                                            message.data)
        if writer is None:
            raise BagToolError(f'{partial}: no complete message to recover')
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(partial)
    return bag, dict(writer.counts)
