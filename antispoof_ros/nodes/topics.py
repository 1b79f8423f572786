"""Topic names shared by the nodes, launch files and tools: one place to rename them."""

from antispoof_ros.flash import Phase

EYE_CORNERS = 'landmarks/eye_corners'
LIVENESS_RESULT = 'liveness/result'


def flash_frame_topic(phase: Phase) -> str:
    """FlashFrame stream (pixels + in-band phase stamp) of one flash phase."""
    return f'camera/{phase.label}/flash_frame'


def image_topic(phase: Phase) -> str:
    """Plain sensor_msgs/Image stream of one flash phase, for rqt/rviz."""
    return f'camera/{phase.label}/image_raw'
