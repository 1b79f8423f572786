"""sensor_msgs/Image <-> numpy without per-pixel Python work.

ROS 2's cv_bridge is used where it is importable (a ROS install on the rig). It is not on
PyPI, and PyPI's ``cv-bridge`` is a ROS 1 port that breaks on numpy 2, so elsewhere the
package's own conversion runs; ``test/test_image_conversion.py`` checks both agree where
cv_bridge exists. Filling ``Image.data`` through ``array.array.frombytes`` costs ~0.1 ms for
a 2.3 MB frame, against ~236 ms for assigning a numpy array (platform facts).
"""

from __future__ import annotations

import array
import sys

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

# encoding -> (dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    'mono8': (np.dtype(np.uint8), 1),
    'mono16': (np.dtype(np.uint16), 1),
    'bgr8': (np.dtype(np.uint8), 3),
    'rgb8': (np.dtype(np.uint8), 3),
}

# Frames larger than this are rejected as absurd rather than allocated (16k x 16k x 3).
MAX_PIXELS = 16384 * 16384


class ImageFormatError(ValueError):
    """An Image message that cannot be turned into an array; the text says why."""


def _load_ros2_cv_bridge():
    """Return a ROS 2 CvBridge, or None where only the ROS 1 port (or nothing) exists."""
    try:
        from cv_bridge import CvBridge
    except ImportError:
        return None
    bridge = CvBridge()
    try:  # the ROS 1 port fails here on numpy 2 (ndarray.tostring)
        bridge.cv2_to_imgmsg(np.zeros((2, 2), np.uint8), encoding='mono8')
    except Exception:  # noqa: BLE001 - any failure means: not usable, fall back
        return None
    return bridge


_BRIDGE = _load_ros2_cv_bridge()
BACKEND = 'cv_bridge' if _BRIDGE is not None else 'antispoof_ros'


def image_to_array(msg: Image) -> np.ndarray:
    """View an Image's pixels as an (H, W) or (H, W, C) array; raise ImageFormatError."""
    if msg.encoding not in ENCODINGS:
        raise ImageFormatError(
            f"unsupported encoding '{msg.encoding}' (supported: {', '.join(ENCODINGS)})"
        )
    dtype, channels = ENCODINGS[msg.encoding]
    height, width = int(msg.height), int(msg.width)
    if height == 0 or width == 0:
        raise ImageFormatError(f'empty image {width}x{height}')
    if height * width > MAX_PIXELS:
        raise ImageFormatError(f'absurd image size {width}x{height}')
    row_bytes = width * channels * dtype.itemsize
    if msg.step < row_bytes:
        raise ImageFormatError(f'step {msg.step} shorter than a row ({row_bytes} bytes)')
    if len(msg.data) < msg.step * height:
        raise ImageFormatError(
            f'truncated image: {len(msg.data)} bytes, expected {msg.step * height}'
        )
    if _BRIDGE is not None:
        return _BRIDGE.imgmsg_to_cv2(msg, desired_encoding='passthrough')
    return own_image_to_array(msg)


def own_image_to_array(msg: Image) -> np.ndarray:
    """This package's conversion (no cv_bridge); expects an Image ``image_to_array`` checked."""
    dtype, channels = ENCODINGS[msg.encoding]
    height, width = int(msg.height), int(msg.width)
    row_bytes = width * channels * dtype.itemsize
    buffer = np.frombuffer(msg.data, dtype=np.uint8, count=msg.step * height)
    rows = buffer.reshape(height, msg.step)[:, :row_bytes]
    pixels = rows.view(dtype.newbyteorder('>' if msg.is_bigendian else '<'))
    shape = (height, width) if channels == 1 else (height, width, channels)
    return pixels.reshape(shape).astype(dtype, copy=False)


def array_to_image(pixels: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """Build an Image message from an array whose dtype and shape fit ``encoding``."""
    if encoding not in ENCODINGS:
        raise ImageFormatError(f"unsupported encoding '{encoding}'")
    dtype, channels = ENCODINGS[encoding]
    expected_ndim = 2 if channels == 1 else 3
    if pixels.dtype != dtype or pixels.ndim != expected_ndim or (
        channels > 1 and pixels.shape[2] != channels
    ):
        raise ImageFormatError(
            f'array {pixels.dtype} {pixels.shape} does not fit encoding {encoding}'
        )
    if _BRIDGE is not None:
        msg = _BRIDGE.cv2_to_imgmsg(pixels, encoding=encoding)
        if header is not None:
            msg.header = header
        return msg
    return own_array_to_image(pixels, encoding, header)


def own_array_to_image(pixels: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """This package's conversion (no cv_bridge); expects an array ``array_to_image`` checked."""
    pixels = np.ascontiguousarray(pixels)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == 'big')
    msg.step = int(pixels.strides[0])
    data = array.array('B')
    data.frombytes(pixels.data.cast('B'))
    msg.data = data
    return msg
