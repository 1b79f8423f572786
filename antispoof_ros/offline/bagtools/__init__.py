"""rosbag2 (MCAP) tools: a writer for generated frames, a recorder for the rig, a replayer.

Bags hold the camera node's own topics and message types, so a bag written from generated
frames, one recorded on the rig and a live camera are interchangeable inputs for the nodes.
The session labels (subject, species, lighting, ...) travel inside the bag: on a labels
topic and in the bag's metadata. A bag is complete or it is a ``<bag>.partial`` folder,
which the readers refuse and ``record --recover`` turns into a bag (``recovery``).
"""

from __future__ import annotations

import importlib


class BagToolError(Exception):
    """Unusable input or output of a bag tool; the text is a complete one-line reason."""


def message_class(msgtype: str) -> type:
    """The rclpy class of a ROS 2 type name such as ``antispoof_ros/msg/FlashFrame``."""
    package, _, name = msgtype.rpartition('/')
    try:
        return getattr(importlib.import_module(package.replace('/', '.')), name)
    except (ImportError, AttributeError, ValueError):
        raise BagToolError(f"message type '{msgtype}' is not installed here") from None
