"""Each custom message survives an MCAP rosbag2 written and read with rosbags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from ros_samples import SAMPLES
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from antispoof_ros.msg import EyeCorners, FlashFrame, LivenessResult
from antispoof_ros.offline.bagtools.typestore import project_typestore

ROS_CLASSES = {
    'antispoof_ros/msg/FlashFrame': FlashFrame,
    'antispoof_ros/msg/EyeCorners': EyeCorners,
    'antispoof_ros/msg/LivenessResult': LivenessResult,
}


def assert_same_fields(ros_msg: object, bag_msg: object, path: str = '') -> None:
    """Compare an rclpy message with a rosbags one, field by field, recursively."""
    for name in ros_msg.get_fields_and_field_types():
        expected, actual = getattr(ros_msg, name), getattr(bag_msg, name)
        where = f'{path}.{name}'
        if hasattr(expected, 'get_fields_and_field_types'):
            assert_same_fields(expected, actual, where)
        elif isinstance(expected, float):
            assert np.float32(expected) == np.float32(actual), where
        elif isinstance(expected, (bytes, list, tuple)) or hasattr(expected, 'tobytes'):
            np.testing.assert_array_equal(np.asarray(expected), np.asarray(actual), err_msg=where)
        else:
            assert expected == actual, where


def test_typestore_has_every_project_message() -> None:
    registered = set(project_typestore().fielddefs)
    assert set(SAMPLES) <= registered


@pytest.mark.parametrize('msgtype', sorted(SAMPLES))
def test_message_round_trip_through_mcap(tmp_path: Path, msgtype: str) -> None:
    typestore = project_typestore()
    original = SAMPLES[msgtype]()
    bag = tmp_path / 'bag'
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection('/sample', msgtype, typestore=typestore)
        writer.write(connection, 42, serialize_message(original))

    assert (bag / 'metadata.yaml').is_file()
    assert list(bag.glob('*.mcap'))
    with Reader(bag) as reader:
        records = list(reader.messages())
    assert len(records) == 1
    connection, timestamp, raw = records[0]
    assert (connection.msgtype, timestamp) == (msgtype, 42)

    # Read back by ROS itself: equal as a whole message.
    assert deserialize_message(raw, ROS_CLASSES[msgtype]) == original
    # Read back by rosbags from the .msg definitions: the same value in every field.
    assert_same_fields(original, typestore.deserialize_cdr(raw, msgtype))
