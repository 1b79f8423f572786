"""Builders of the package's ROS messages, one of each, for nodes, bags, tools and tests.

A FlashFrame is built one way by the camera node and the bag writer, so generated bags carry
exactly what the camera publishes; an EyeCorners one way by the landmark node and everything
that stands in for it (ground truth in bags, benchmarks, fault injection); a CameraInfo one
way from a ``Calibration``.
"""

from __future__ import annotations

from typing import Any

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point32
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest
from std_msgs.msg import Header

from antispoof_ros.camera.calibration import Calibration
from antispoof_ros.camera.phase_labels import PhaseLabel
from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.msg import EyeCorners, FlashFrame

NANOSECONDS_PER_SECOND = 1_000_000_000
CAMERA_FRAME_ID = 'nir_camera_optical_frame'


def ros_time(nanoseconds: int) -> Time:
    """builtin_interfaces/Time of a nanosecond time stamp."""
    seconds, rest = divmod(int(nanoseconds), NANOSECONDS_PER_SECOND)
    return Time(sec=seconds, nanosec=rest)


def stamp_nanoseconds(stamp: Any) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time`` message or an ``rclpy.time.Time``."""
    if hasattr(stamp, 'nanoseconds'):
        return int(stamp.nanoseconds)
    return int(stamp.sec) * NANOSECONDS_PER_SECOND + int(stamp.nanosec)


def frame_header(stamp_ns: int, frame_id: str = CAMERA_FRAME_ID) -> Header:
    """Header of a camera frame taken at ``stamp_ns``."""
    return Header(stamp=ros_time(stamp_ns), frame_id=frame_id)


def flash_frame_message(label: PhaseLabel, header: Header, image: Image) -> FlashFrame:
    """FlashFrame with ``label``'s in-band stamps; ``image`` should carry the same header."""
    return FlashFrame(
        header=header,
        phase=int(label.phase),
        frame_counter=label.frame_counter,
        cycle_index=label.cycle_index,
        position_in_cycle=label.position_in_cycle,
        phase_source=int(label.source),
        phase_verified=label.verified,
        image=image,
    )


def camera_info_message(calibration: Calibration, header: Header) -> CameraInfo:
    """CameraInfo of ``calibration`` for the image with ``header`` (no binning, full ROI)."""
    return CameraInfo(
        header=header, width=calibration.width, height=calibration.height,
        distortion_model=calibration.distortion_model, d=list(calibration.d),
        k=list(calibration.k), r=list(calibration.r), p=list(calibration.p),
    )


def eye_corners_message(header: Header, frame_counter: int, corners: EyeCornerPoints | None,
                        *, status: int | None = None, reason: str = '',
                        confidence: float | None = None, face_count: int | None = None,
                        method: int = EyeCorners.METHOD_DETECTED,
                        face_box: RegionOfInterest | None = None) -> EyeCorners:
    """EyeCorners answering the frame with ``header`` and ``frame_counter``.

    Without explicit values, corners mean a confident single face (status OK, confidence 1)
    and ``None`` means no face.
    """
    found = corners is not None
    message = EyeCorners(
        header=header,
        frame_counter=frame_counter,
        status=(EyeCorners.STATUS_OK if found else EyeCorners.STATUS_NO_FACE)
        if status is None else status,
        status_reason=reason,
        confidence=float(found if confidence is None else confidence),
        face_count=int(found if face_count is None else face_count),
        method=method if found else EyeCorners.METHOD_NONE,
    )
    if found:
        (message.right_eye_outer, message.right_eye_inner, message.left_eye_outer,
         message.left_eye_inner) = (Point32(x=float(x), y=float(y), z=0.0)
                                    for x, y in corners.as_array())
    if face_box is not None:
        message.face_box = face_box
    return message
