"""QoS of the camera frame subscriptions: sensor data (REP-2003) or reliable.

The camera publishes reliable (system default), which both choices match. Sensor-data QoS
(best effort) lets a slow consumer fall behind without the camera resending to it. A bag
replay is lossless only towards reliable readers (it waits for their acknowledgements and
ignores best-effort ones), so replay-driven tools run the nodes with ``reliable``.
"""

from __future__ import annotations

import copy

from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from antispoof_ros.nodes.parameters import Param

SENSOR_DATA = 'sensor_data'
RELIABLE = 'reliable'
FRAME_QOS = Param(
    'frame_qos', SENSOR_DATA,
    "QoS of the frame subscriptions: 'sensor_data' (REP-2003: best effort, keep last) or "
    "'reliable' (lossless replay of bags: the replay waits only for reliable readers).",
    choices=(SENSOR_DATA, RELIABLE))


def frame_qos_profile(choice: str, depth: int) -> QoSProfile:
    """The sensor-data profile of rclpy or a reliable one, keeping the last ``depth`` frames."""
    if choice == RELIABLE:
        return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
    profile = copy.copy(qos_profile_sensor_data)
    profile.depth = depth
    return profile
