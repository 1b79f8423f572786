"""Independent checks of the bags the tools write: rosbag2's metadata format, foreign decoding.

``decode_independently`` reads the MCAP file with the ``mcap`` library and decodes every
message with ``mcap-ros2-support``, from the message definitions stored in the file alone:
nothing of this package, rosbags or rclpy takes part. ``check_rosbag2_metadata`` holds
``metadata.yaml`` to what rosbag2's own reader (rosbag2_storage/yaml.hpp, qos.cpp) needs for
version 9: the fields it decodes, QoS policies by name, and counts that add up.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
import yaml

# rmw's policy names (rmw_qos_*_policy_to_str), which rosbag2 writes from version 9 on.
QOS_NAMES = {
    'history': {'system_default', 'keep_last', 'keep_all', 'unknown'},
    'reliability': {'system_default', 'reliable', 'best_effort', 'best_available', 'unknown'},
    'durability': {'system_default', 'transient_local', 'volatile', 'best_available',
                   'unknown'},
    'liveliness': {'system_default', 'automatic', 'manual_by_topic', 'best_available',
                   'unknown'},
}
QOS_TIMES = ('deadline', 'lifespan', 'liveliness_lease_duration')


def check_rosbag2_metadata(bag: Path) -> dict:
    """metadata.yaml as rosbag2 (format version 9) reads it; returns the information block."""
    info = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert info['version'] == 9
    assert info['storage_identifier'] == 'mcap'
    assert isinstance(info['duration']['nanoseconds'], int)
    assert isinstance(info['starting_time']['nanoseconds_since_epoch'], int)
    assert isinstance(info['compression_format'], str)
    assert isinstance(info['compression_mode'], str)
    assert isinstance(info['custom_data'], dict)
    assert isinstance(info['ros_distro'], str)
    assert all((bag / path).is_file() for path in info['relative_file_paths'])
    assert [f['path'] for f in info['files']] == info['relative_file_paths']
    assert sum(f['message_count'] for f in info['files']) == info['message_count']
    topics = info['topics_with_message_count']
    assert sum(t['message_count'] for t in topics) == info['message_count']
    for topic in topics:
        metadata = topic['topic_metadata']
        assert metadata['serialization_format'] == 'cdr'
        assert metadata['type_description_hash'].startswith('RIHS01_')
        profiles = metadata['offered_qos_profiles']
        assert isinstance(profiles, list) and profiles, metadata['name']
        for profile in profiles:
            for policy, names in QOS_NAMES.items():
                assert profile[policy] in names, (metadata['name'], policy, profile[policy])
            for key in QOS_TIMES:
                assert set(profile[key]) == {'sec', 'nsec'}
            assert isinstance(profile['depth'], int)
            assert isinstance(profile['avoid_ros_namespace_conventions'], bool)
    return info


def offered_qos(info: dict, topic: str) -> list[dict]:
    """The offered QoS profiles stored for ``topic``."""
    return next(t['topic_metadata']['offered_qos_profiles']
                for t in info['topics_with_message_count'] if t['topic_metadata']['name'] == topic)


def decode_independently(bag: Path) -> tuple[Counter[str], dict[str, list[SimpleNamespace]]]:
    """Messages per topic and the decoded messages, read by mcap + mcap-ros2-support only.

    Any message that does not decode raises; the counts must equal the metadata's.
    """
    counts: Counter[str] = Counter()
    decoded: dict[str, list[SimpleNamespace]] = {}
    for path in sorted(bag.glob('*.mcap')):
        with path.open('rb') as stream:
            reader = make_reader(stream, decoder_factories=[DecoderFactory()])
            for _, channel, _, message in reader.iter_decoded_messages():
                counts[channel.topic] += 1
                decoded.setdefault(channel.topic, []).append(message)
    info = check_rosbag2_metadata(bag)
    assert counts == {t['topic_metadata']['name']: t['message_count']
                      for t in info['topics_with_message_count']}
    return counts, decoded
