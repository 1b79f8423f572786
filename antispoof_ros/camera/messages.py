"""The FlashFrame message of a labelled frame.

Built one way by the camera node and the bag writer, so generated bags carry exactly what
the camera publishes.
"""

from __future__ import annotations

from sensor_msgs.msg import Image
from std_msgs.msg import Header

from antispoof_ros.camera.phase_labels import PhaseLabel
from antispoof_ros.msg import FlashFrame


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
