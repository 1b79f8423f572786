"""liveness_node's ``liveness/overlay``: frame B with face box, corners and verdict, for people.

Rendering a 1920x1200 frame costs a few milliseconds, so an overlay is drawn only while
someone subscribes (rqt_image_view, Foxglove) and at most ``rate_hz`` times a second, after
the result is published: the decision never waits for the picture. The QoS is reliable,
keep last 1: it matches reliable and best-effort viewers alike, and a slow viewer only ever
gets the newest picture.
"""

from __future__ import annotations

import time

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from antispoof_ros.liveness.decision import FusedDecision
from antispoof_ros.liveness.overlay import OverlayInfo, render_overlay
from antispoof_ros.liveness.pairing import CornerInfo
from antispoof_ros.liveness.pipeline import PairResult
from antispoof_ros.msg import EyeCorners, FlashFrame
from antispoof_ros.nodes.image_conversion import ImageFormatError, array_to_image, image_to_array
from antispoof_ros.nodes.topics import LIVENESS_OVERLAY

OVERLAY_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


class OverlayPublisher:
    """Publishes throttled overlays of frame B while ``liveness/overlay`` has a subscriber."""

    def __init__(self, node: Node, rate_hz: float, pair: str) -> None:
        """``rate_hz`` 0: no publisher at all; ``pair``: the banner's pair, 'P2 front+right'."""
        self.pair = pair
        self.period_s = 1.0 / rate_hz if rate_hz > 0 else None
        self.publisher = (node.create_publisher(Image, LIVENESS_OVERLAY, OVERLAY_QOS)
                          if self.period_s is not None else None)
        self._last_s = -float('inf')

    def due(self) -> bool:
        """Someone watches and the last overlay is at least one period old."""
        return (self.publisher is not None and self.publisher.get_subscription_count() > 0
                and time.monotonic() - self._last_s >= self.period_s)

    def publish(self, frame_b: FlashFrame, corners: EyeCorners, result: PairResult,
                fused: FusedDecision) -> None:
        """Render and publish the overlay of one evaluated set, if one is due."""
        if not self.due():
            return
        try:
            pixels = image_to_array(frame_b.image)
        except ImageFormatError:
            return  # the result already says the pair was unusable
        self._last_s = time.monotonic()
        found = corners.status == EyeCorners.STATUS_OK
        box = corners.face_box
        info = OverlayInfo(
            decision=fused.decision, fused_score=fused.fused_score,
            pair_score=result.outcome.score, pair=self.pair,
            reason='' if fused.reason == fused.reason.NONE else fused.reason_text,
            face_box=(box.x_offset, box.y_offset, box.width, box.height)
            if found and box.width > 0 else None,
            corners=CornerInfo.from_msg(corners).points if found else None,
        )
        overlay = render_overlay(pixels if pixels.ndim == 2 else pixels[..., 0], info)
        self.publisher.publish(array_to_image(overlay, 'bgr8', frame_b.header))
