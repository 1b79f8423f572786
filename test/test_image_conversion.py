"""Image <-> numpy conversion: lossless, zero-copy where possible, clear errors on bad frames."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from antispoof_ros.nodes import image_conversion
from antispoof_ros.nodes.image_conversion import ImageFormatError, array_to_image, image_to_array

RNG = np.random.default_rng(7)
ARRAYS = {
    'mono8': RNG.integers(0, 256, (120, 192), dtype=np.uint8),
    'mono16': RNG.integers(0, 4096, (120, 192), dtype=np.uint16),
    'bgr8': RNG.integers(0, 256, (120, 192, 3), dtype=np.uint8),
}


@pytest.mark.parametrize('encoding', sorted(ARRAYS))
def test_round_trip_is_exact(encoding: str) -> None:
    header = Header(frame_id='cam')
    msg = array_to_image(ARRAYS[encoding], encoding, header)
    assert (msg.encoding, msg.height, msg.width) == (encoding, 120, 192)
    assert msg.step == 192 * ARRAYS[encoding].itemsize * (3 if encoding == 'bgr8' else 1)
    assert msg.header.frame_id == 'cam'
    np.testing.assert_array_equal(image_to_array(msg), ARRAYS[encoding])


def test_row_padding_and_big_endian_are_honoured() -> None:
    pixels = ARRAYS['mono16']
    padded = np.zeros((120, 200), dtype='>u2')
    padded[:, :192] = pixels
    msg = Image(height=120, width=192, encoding='mono16', is_bigendian=1, step=400)
    msg.data = padded.tobytes()
    np.testing.assert_array_equal(image_to_array(msg), pixels)


def test_large_frame_is_filled_without_per_pixel_work() -> None:
    frame = RNG.integers(0, 256, (1200, 1920), dtype=np.uint8)
    msg = array_to_image(frame, 'mono8')
    assert len(msg.data) == 1200 * 1920
    view = image_to_array(msg)
    np.testing.assert_array_equal(view, frame)


def _image(**fields: object) -> Image:
    msg = Image(height=4, width=4, encoding='mono8', step=4)
    msg.data = bytes(16)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


@pytest.mark.parametrize(
    ('fields', 'reason'),
    [
        ({'encoding': 'yuv422'}, "unsupported encoding 'yuv422'"),
        ({'height': 0}, 'empty image'),
        ({'width': 100000, 'height': 100000, 'step': 100000}, 'absurd image size'),
        ({'step': 3}, 'shorter than a row'),
        ({'data': bytes(10)}, 'truncated image: 10 bytes, expected 16'),
    ],
)
def test_bad_frames_raise_with_reason(fields: dict, reason: str) -> None:
    with pytest.raises(ImageFormatError, match=reason.replace('(', r'\(')):
        image_to_array(_image(**fields))


def test_array_that_does_not_fit_the_encoding_is_refused() -> None:
    with pytest.raises(ImageFormatError, match='does not fit encoding mono8'):
        array_to_image(ARRAYS['mono16'], 'mono8')


@pytest.mark.skipif(
    image_conversion.BACKEND != 'cv_bridge', reason='ROS 2 cv_bridge not importable'
)
@pytest.mark.parametrize('encoding', sorted(ARRAYS))
def test_own_conversion_equals_cv_bridge(encoding: str) -> None:
    from cv_bridge import CvBridge

    bridge = CvBridge()
    pixels = ARRAYS[encoding]
    ours, theirs = image_conversion.own_array_to_image(pixels, encoding), bridge.cv2_to_imgmsg(
        pixels, encoding=encoding
    )
    assert (ours.height, ours.width, ours.step, ours.encoding, ours.is_bigendian) == (
        theirs.height, theirs.width, theirs.step, theirs.encoding, theirs.is_bigendian
    )
    assert bytes(ours.data) == bytes(theirs.data)
    np.testing.assert_array_equal(
        image_conversion.own_image_to_array(theirs), bridge.imgmsg_to_cv2(theirs)
    )
