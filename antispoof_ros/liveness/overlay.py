"""A picture of one decision for a person at the rig: frame B, face box, eye corners, verdict.

Pure drawing (OpenCV, no ROS): the liveness node publishes it on ``liveness/overlay`` and
the demo saves it as a PNG. Frame B is downscaled to ``OVERLAY_WIDTH`` pixels (a 1920x1200
frame becomes 640x400: a few hundred kB on the wire, cheap to render a few times a second),
the face box and the four corners are drawn where landmark_node found them, and a banner on
top says the fused decision (LIVE green, SPOOF red, UNKNOWN grey with its reason), the fused
and the pair's score and the frame pair.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import cv2
import numpy as np

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.liveness.decision import Decision

OVERLAY_WIDTH = 640
# BGR colours
DECISION_COLOURS = {Decision.LIVE: (80, 200, 60), Decision.SPOOF: (60, 60, 230),
                    Decision.UNKNOWN: (190, 180, 170)}  # blue-grey
BOX_COLOUR = (0, 215, 255)  # amber
RIGHT_EYE_COLOUR = (255, 200, 0)  # the subject's right eye (left in the image): cyan
LEFT_EYE_COLOUR = (255, 0, 200)  # magenta
BANNER_HEIGHT = 44
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class OverlayInfo:
    """What the overlay shows besides the pixels; geometry in frame B's pixels."""

    decision: Decision  # fused
    fused_score: float  # NaN when no valid pair is in the window
    pair_score: float  # this pair's probability live; NaN when it was not scored
    pair: str  # e.g. 'P2 front+right'
    reason: str = ''  # why UNKNOWN (the result's reason_text)
    face_box: tuple[int, int, int, int] | None = None  # x, y, width, height
    corners: EyeCornerPoints | None = None

    @property
    def headline(self) -> str:
        """'LIVE 0.93  P2 front+right': the decision, its fused score and the pair."""
        score = f' {self.fused_score:.2f}' if math.isfinite(self.fused_score) else ''
        return f'{self.decision.name}{score}  {self.pair}'

    @property
    def detail(self) -> str:
        """The pair's own score, and the reason when the decision is UNKNOWN."""
        pair = (f'pair score {self.pair_score:.2f}' if math.isfinite(self.pair_score)
                else 'pair not scored')
        if self.decision is Decision.UNKNOWN and self.reason:
            return f'{pair}; {self.reason}'
        return pair


def to_display(pixels: np.ndarray) -> np.ndarray:
    """8-bit grey for display: 8-bit frames as they are, deeper ones scaled by their maximum."""
    if pixels.ndim != 2:
        raise ValueError(f'expected a mono frame, got shape {pixels.shape}')
    if pixels.dtype == np.uint8:
        return pixels
    peak = float(pixels.max(initial=0))
    return np.clip(pixels.astype(np.float32) * (255.0 / max(peak, 1.0)), 0, 255).astype(np.uint8)


def render_overlay(pixels: np.ndarray, info: OverlayInfo,
                   width: int = OVERLAY_WIDTH) -> np.ndarray:
    """Frame B (mono, 8 or 16 bit) downscaled to ``width`` with ``info`` drawn: BGR8 array."""
    height_in, width_in = pixels.shape[:2]
    scale = width / width_in
    size = (width, max(1, round(height_in * scale)))
    grey = cv2.resize(to_display(pixels), size, interpolation=cv2.INTER_AREA)
    canvas = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if info.face_box is not None:
        x, y, w, h = (round(v * scale) for v in info.face_box)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), BOX_COLOUR, 1)
    if info.corners is not None and info.corners.is_finite():
        points = info.corners.as_array() * scale
        for index, (x, y) in enumerate(points):
            colour = RIGHT_EYE_COLOUR if index < 2 else LEFT_EYE_COLOUR
            cv2.circle(canvas, (round(x), round(y)), 3, colour, -1, cv2.LINE_AA)
    _banner(canvas, info)
    return canvas


def _banner(canvas: np.ndarray, info: OverlayInfo) -> None:
    """Darken the top strip and write the headline in the decision's colour, detail below."""
    strip = canvas[:BANNER_HEIGHT]
    strip[:] = (strip * 0.35).astype(np.uint8)
    colour = DECISION_COLOURS[info.decision]
    cv2.putText(canvas, info.headline, (8, 20), FONT, 0.6, colour, 2, cv2.LINE_AA)
    cv2.putText(canvas, info.detail, (8, 38), FONT, 0.42, (235, 235, 235), 1, cv2.LINE_AA)
