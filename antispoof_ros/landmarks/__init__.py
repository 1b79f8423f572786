"""Eye-corner landmarks for the alignment (thesis 3.3.2), on open models shipped in packages.

Typical use of the tracker::

    tracker = FaceTracker(DlibBackend(), TrackerConfig(min_face_px=320))
    result = tracker.process(front_frame)  # 2-D uint8, e.g. 1920x1200
    if result.ok:
        corners = result.corners  # EyeCornerPoints

The node's protocol around the tracker (8-bit conversion, the periodic detection after each
answer) is ``antispoof_ros.landmarks.pipeline.LandmarkPipeline``, shared with the offline tools.

``DlibBackend`` is imported from ``antispoof_ros.landmarks.dlib_backend`` so that importing
this package does not load dlib.
"""

from antispoof_ros.landmarks.backend import FaceBox, LandmarkBackend
from antispoof_ros.landmarks.tracker import (
    DriverChoice,
    FaceTracker,
    LandmarkResult,
    Method,
    Status,
    TrackerConfig,
)

__all__ = [
    'DriverChoice',
    'FaceBox',
    'FaceTracker',
    'LandmarkBackend',
    'LandmarkResult',
    'Method',
    'Status',
    'TrackerConfig',
]
