"""One fully populated instance of each antispoof_ros message, for round-trip tests."""

from __future__ import annotations

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point32
import numpy as np
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header

from antispoof_ros.msg import EyeCorners, FlashFrame, LivenessResult
from antispoof_ros.nodes.image_conversion import array_to_image


def _header(sec: int, nanosec: int) -> Header:
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id='nir_camera_optical_frame')


def flash_frame() -> FlashFrame:
    header = _header(1700000000, 8333333)
    pixels = (np.arange(48 * 64, dtype=np.uint32) % 251).astype(np.uint8).reshape(48, 64)
    return FlashFrame(
        header=header,
        phase=FlashFrame.PHASE_RIGHT,
        frame_counter=123457,
        cycle_index=30864,
        position_in_cycle=2,
        phase_source=FlashFrame.SOURCE_IMAGE_CHECK,
        phase_verified=True,
        image=array_to_image(pixels, 'mono8', header),
    )


def eye_corners() -> EyeCorners:
    return EyeCorners(
        header=_header(1700000000, 0),
        status=EyeCorners.STATUS_OK,
        status_reason='',
        frame_counter=123456,
        right_eye_outer=Point32(x=812.5, y=540.25, z=0.0),
        right_eye_inner=Point32(x=880.0, y=542.0, z=0.0),
        left_eye_outer=Point32(x=1010.75, y=538.5, z=0.0),
        left_eye_inner=Point32(x=945.0, y=541.0, z=0.0),
        face_box=RegionOfInterest(x_offset=700, y_offset=380, height=420, width=400),
        confidence=0.875,
        face_count=2,
        method=EyeCorners.METHOD_TRACKED,
    )


def liveness_result() -> LivenessResult:
    return LivenessResult(
        header=_header(1700000000, 8333333),
        score=0.9375,
        pair_decision=LivenessResult.DECISION_LIVE,
        decision=LivenessResult.DECISION_UNKNOWN,
        fused_score=0.5,
        reason=LivenessResult.REASON_WARMING_UP,
        reason_text='3 of 5 pairs in window',
        pair_config='P2',
        region='face',
        phase_a=FlashFrame.PHASE_FRONT,
        phase_b=FlashFrame.PHASE_RIGHT,
        frame_counter_a=123456,
        frame_counter_b=123457,
        stamp_a=Time(sec=1700000000, nanosec=0),
        stamp_b=Time(sec=1700000000, nanosec=8333333),
        model_name='mobilenetv2_a010_p2_face',
        model_sha256='ab' * 32,
        latency_ms=2.5,
    )


SAMPLES = {
    'antispoof_ros/msg/FlashFrame': flash_frame,
    'antispoof_ros/msg/EyeCorners': eye_corners,
    'antispoof_ros/msg/LivenessResult': liveness_result,
}
