"""Topic names shared by the nodes, launch files and tools: one place to rename them."""

from antispoof_ros.flash import Phase

EYE_CORNERS = 'landmarks/eye_corners'
LIVENESS_RESULT = 'liveness/result'
# frame B with face box, corners and decision (sensor_msgs/Image, bgr8), for people to watch
LIVENESS_OVERLAY = 'liveness/overlay'


def flash_frame_topic(phase: Phase) -> str:
    """FlashFrame stream (pixels + in-band phase stamp) of one flash phase."""
    return f'camera/{phase.label}/flash_frame'


def image_topic(phase: Phase) -> str:
    """Plain sensor_msgs/Image stream of one flash phase, for rqt/rviz."""
    return f'camera/{phase.label}/image_raw'


def camera_info_topic(phase: Phase) -> str:
    """sensor_msgs/CameraInfo sent with each ``image_topic`` image, under the same header."""
    return f'camera/{phase.label}/camera_info'
