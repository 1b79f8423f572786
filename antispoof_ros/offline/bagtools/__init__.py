"""rosbag2 (MCAP) tools: a writer for generated frames, a recorder for the rig, a replayer.

Bags hold the camera node's own topics and message types, so a bag written from generated
frames, one recorded on the rig and a live camera are interchangeable inputs for the nodes.
The session labels (subject, species, lighting, ...) travel inside the bag: on a labels
topic and in the bag's metadata.
"""

from __future__ import annotations

import argparse
import importlib
import sys

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class BagToolError(Exception):
    """Unusable input or output of a bag tool; the text is a complete one-line reason."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """Argument errors as a single line (no usage dump), exit status 2."""

    def error(self, message: str) -> None:  # noqa: D102
        self.exit(EXIT_BAD_INPUT, f'{self.prog}: error: {message}\n')


def positive_number(text: str) -> float:
    """Argparse type: a number above zero."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive number")
    return value


def fail(program: str, reason: object) -> int:
    """Print one error line for ``program`` and return the bad-input exit status."""
    print(f'{program}: error: {reason}', file=sys.stderr, flush=True)
    return EXIT_BAD_INPUT


def message_class(msgtype: str) -> type:
    """The rclpy class of a ROS 2 type name such as ``antispoof_ros/msg/FlashFrame``."""
    package, _, name = msgtype.rpartition('/')
    try:
        return getattr(importlib.import_module(package.replace('/', '.')), name)
    except (ImportError, AttributeError, ValueError):
        raise BagToolError(f"message type '{msgtype}' is not installed here") from None
