"""liveness/overlay: the drawing (no ROS) and liveness_node's throttled, watched-only topic."""

from __future__ import annotations

from collections.abc import Callable
import math
from pathlib import Path

from node_process import spin_until
import numpy as np
from onnx_models import constant_face_model
import pytest
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image
from test_liveness_node import liveness_node_of, make_pipeline  # noqa: F401 - fixture

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.liveness import overlay
from antispoof_ros.liveness.decision import Decision
from antispoof_ros.liveness.overlay import OverlayInfo, render_overlay, to_display
from antispoof_ros.nodes import overlay_publisher
from antispoof_ros.nodes.image_conversion import image_to_array
from antispoof_ros.nodes.topics import LIVENESS_OVERLAY

CORNERS = EyeCornerPoints((750.0, 540.0), (870.0, 546.0), (1170.0, 540.0), (1050.0, 546.0))
BOX = (660, 390, 600, 660)


def info(decision: Decision = Decision.LIVE, fused: float = 0.93, **changes: object
         ) -> OverlayInfo:
    fields = {'decision': decision, 'fused_score': fused, 'pair_score': 0.91,
              'pair': 'P2 front+right', 'face_box': BOX, 'corners': CORNERS, **changes}
    return OverlayInfo(**fields)


def frame(dtype: type = np.uint8, peak: int = 200) -> np.ndarray:
    return np.random.default_rng(0).integers(0, peak, (1200, 1920)).astype(dtype)


def banner_has(image: np.ndarray, colour: tuple[int, int, int]) -> bool:
    return bool(np.any(np.all(image[:overlay.BANNER_HEIGHT] == colour, axis=-1)))


# -- drawing ------------------------------------------------------------------------------
def test_frame_is_downscaled_to_640_wide_bgr8() -> None:
    image = render_overlay(frame(), info())
    assert image.shape == (400, 640, 3) and image.dtype == np.uint8
    assert render_overlay(frame()[:, :960], info(), width=320).shape == (400, 320, 3)


def test_corners_and_face_box_are_drawn_where_the_landmarks_are() -> None:
    image = render_overlay(np.zeros((1200, 1920), np.uint8), info())
    for index, (x, y) in enumerate(CORNERS.as_array() / 3):
        colour = overlay.RIGHT_EYE_COLOUR if index < 2 else overlay.LEFT_EYE_COLOUR
        assert tuple(image[round(y), round(x)]) == colour, (index, x, y)
    x, y, w, h = (v // 3 for v in BOX)
    assert tuple(image[y + h // 2, x]) == overlay.BOX_COLOUR  # left edge
    assert tuple(image[y + h, x + w // 2]) == overlay.BOX_COLOUR  # bottom edge
    bare = render_overlay(np.zeros((1200, 1920), np.uint8),
                          info(face_box=None, corners=None))
    assert not np.any(bare[overlay.BANNER_HEIGHT:])  # nothing drawn outside the banner


@pytest.mark.parametrize('decision', list(Decision))
def test_banner_is_in_the_colour_of_the_decision(decision: Decision) -> None:
    image = render_overlay(frame(), info(decision))
    for other, colour in overlay.DECISION_COLOURS.items():
        assert banner_has(image, colour) == (other is decision), other


def test_banner_text_says_decision_scores_pair_and_why_unknown() -> None:
    assert info().headline == 'LIVE 0.93  P2 front+right'
    assert info().detail == 'pair score 0.91'
    warming = info(Decision.UNKNOWN, math.nan, pair_score=0.4,
                   reason='warming_up: 3/9 valid pairs')
    assert warming.headline == 'UNKNOWN  P2 front+right'
    assert warming.detail == 'pair score 0.40; warming_up: 3/9 valid pairs'
    no_face = info(Decision.UNKNOWN, math.nan, pair_score=math.nan, reason='no_face: 0/9')
    assert no_face.detail == 'pair not scored; no_face: 0/9'


def test_sixteen_bit_frames_are_scaled_to_their_peak() -> None:
    deep = frame(np.uint16, peak=4096)
    shown = to_display(deep)
    assert shown.dtype == np.uint8 and shown.max() == 255
    assert np.array_equal(shown, (deep.astype(np.float32) * 255 / deep.max()).astype(np.uint8))
    assert render_overlay(deep, info()).shape == (400, 640, 3)
    with pytest.raises(ValueError, match='mono frame'):
        to_display(np.zeros((4, 4, 3), np.uint8))


# -- liveness_node ------------------------------------------------------------------------
class Watcher:
    """A viewer of liveness/overlay on the test's executor."""

    def __init__(self, executor: SingleThreadedExecutor) -> None:
        self.node = liveness_node_of(executor)
        self.images: list[Image] = []
        self.subscription = self.node.create_subscription(
            Image, LIVENESS_OVERLAY, self.images.append, 10)
        assert spin_until(executor, lambda: self.node.overlay.publisher
                          .get_subscription_count() > 0, timeout=10)


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[OverlayInfo]:
    """What the node rendered (the real renderer still runs)."""
    rendered: list[OverlayInfo] = []

    def counting(pixels: np.ndarray, what: OverlayInfo) -> np.ndarray:
        rendered.append(what)
        return render_overlay(pixels, what)

    monkeypatch.setattr(overlay_publisher, 'render_overlay', counting)
    return rendered


def feed_cycles(feeder: object, executor: SingleThreadedExecutor, cycles: range) -> None:
    for cycle in cycles:
        feeder.publish_cycle(cycle)
        spin_until(executor, lambda: False, timeout=0.02)


@pytest.mark.ros
def test_overlay_is_drawn_only_while_watched_with_frame_b_header(
    tmp_path: Path, make_pipeline: Callable[..., tuple], renders: list[OverlayInfo]  # noqa: F811
) -> None:
    model = constant_face_model(tmp_path / 'live.onnx', probability_logit=6.0)
    feeder, executor = make_pipeline(model, overlay_rate_hz=100.0)
    feed_cycles(feeder, executor, range(12))
    assert spin_until(executor, lambda: len(feeder.results) >= 12, timeout=10)
    assert renders == []  # nobody watched
    watcher = Watcher(executor)
    feed_cycles(feeder, executor, range(12, 24))
    assert spin_until(executor, lambda: len(feeder.results) >= 24, timeout=10)
    assert spin_until(executor, lambda: len(watcher.images) == len(renders) > 0, timeout=10)
    headers = {result.frame_counter_b: result.header for result in feeder.results}
    last = watcher.images[-1]
    assert last.header in headers.values() and last.encoding == 'bgr8'
    assert (last.width, last.height) == (640, 400)  # the 640x400 test frame, full width
    assert renders[-1].decision is Decision.LIVE and renders[-1].corners is not None
    assert banner_has(image_to_array(last), overlay.DECISION_COLOURS[Decision.LIVE])


@pytest.mark.ros
def test_overlay_rate_throttles(
    tmp_path: Path, make_pipeline: Callable[..., tuple], renders: list[OverlayInfo]  # noqa: F811
) -> None:
    model = constant_face_model(tmp_path / 'live.onnx', probability_logit=6.0)
    feeder, executor = make_pipeline(model, overlay_rate_hz=0.001)  # one per 1000 s
    watcher = Watcher(executor)
    feed_cycles(feeder, executor, range(12))
    assert spin_until(executor, lambda: len(feeder.results) >= 12, timeout=10)
    assert spin_until(executor, lambda: len(watcher.images) >= 1, timeout=10)
    spin_until(executor, lambda: False, timeout=0.5)  # time for any further overlay
    assert len(watcher.images) == len(renders) == 1
    assert watcher.images[0].header == feeder.results[0].header  # the first pair's frame B


@pytest.mark.ros
def test_overlay_rate_zero_advertises_no_topic(
    tmp_path: Path, make_pipeline: Callable[..., tuple]  # noqa: F811
) -> None:
    _, executor = make_pipeline(constant_face_model(tmp_path / 'live.onnx', 6.0),
                                 overlay_rate_hz=0.0)
    node = liveness_node_of(executor)
    assert node.overlay.publisher is None and not node.overlay.due()
    assert node.count_publishers(LIVENESS_OVERLAY) == 0
