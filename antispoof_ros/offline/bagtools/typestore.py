"""rosbag2 (MCAP) access with ``rosbags``, with this package's messages registered.

rosbags reads and writes bags in pure Python, without a ROS install; it needs the message
definitions, which it takes from the project's own ``msg/*.msg`` files, so a bag written by
the tools here and one recorded on the rig with ``ros2 bag`` are read the same way.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from antispoof_ros.paths import SOURCE_TREE

PACKAGE = 'antispoof_ros'
# ROS distribution whose standard message definitions the bags use.
TYPESTORE = Stores.ROS2_KILTED


def message_directory() -> Path:
    """Folder holding this package's .msg files: the source tree, else the ament index."""
    source = SOURCE_TREE / 'msg'
    if source.is_dir():
        return source
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE)) / 'msg'


def message_type_name(msg_file: Path) -> str:
    """ROS 2 type name of a .msg file, e.g. ``antispoof_ros/msg/FlashFrame``."""
    return f'{PACKAGE}/msg/{msg_file.stem}'


@cache
def project_typestore() -> Typestore:
    """Typestore with the standard ROS 2 messages plus every antispoof_ros message."""
    typestore = get_typestore(TYPESTORE)
    types = {}
    for msg_file in sorted(message_directory().glob('*.msg')):
        types.update(get_types_from_msg(msg_file.read_text(), message_type_name(msg_file)))
    typestore.register(types)
    return typestore
