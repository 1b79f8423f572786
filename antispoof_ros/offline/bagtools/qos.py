"""QoS profiles as rosbag2 stores them: what the recorded publishers offered.

rosbag2 keeps each topic's offered profiles in ``metadata.yaml`` (and the MCAP channel
metadata) so that ``ros2 bag play`` can offer the same again. rclpy's policy enums carry the
rmw values, which are also rosbags' ``Qos*`` values, so the conversion is one-to-one.
"""

from __future__ import annotations

from collections.abc import Mapping

from rclpy.duration import Duration
from rclpy.qos import QoSProfile
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)

# What this package's publishers offer (camera_node's frames, landmark_node's corners, the
# label topic): rclpy's default profile, reliable and volatile with a history of ten.
PUBLISHER_DEFAULT = QoSProfile(depth=10)


def _time(duration: Duration) -> QosTime:
    seconds, nanoseconds = divmod(duration.nanoseconds, 1_000_000_000)
    return QosTime(seconds, nanoseconds)


def bag_qos(profile: QoSProfile) -> Qos:
    """The rosbags form of an rclpy profile (as reported by the graph or as created)."""
    return Qos(
        history=QosHistory(profile.history.value),
        depth=profile.depth,
        reliability=QosReliability(profile.reliability.value),
        durability=QosDurability(profile.durability.value),
        deadline=_time(profile.deadline),
        lifespan=_time(profile.lifespan),
        liveliness=QosLiveliness(profile.liveliness.value),
        liveliness_lease_duration=_time(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=profile.avoid_ros_namespace_conventions,
    )


def _stored_time(entry: Mapping[str, int]) -> QosTime:
    return QosTime(int(entry['sec']), int(entry['nsec']))


def qos_from_metadata(entry: Mapping) -> Qos:
    """A profile as rosbag2 (format 9) stores it in metadata.yaml or an MCAP channel."""
    return Qos(
        history=QosHistory[entry['history'].upper()],
        depth=int(entry['depth']),
        reliability=QosReliability[entry['reliability'].upper()],
        durability=QosDurability[entry['durability'].upper()],
        deadline=_stored_time(entry['deadline']),
        lifespan=_stored_time(entry['lifespan']),
        liveliness=QosLiveliness[entry['liveliness'].upper()],
        liveliness_lease_duration=_stored_time(entry['liveliness_lease_duration']),
        avoid_ros_namespace_conventions=bool(entry['avoid_ros_namespace_conventions']),
    )
