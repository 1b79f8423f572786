"""landmark_node: eye corners on the front-flash frame of every cycle.

Every ``FlashFrame`` of the configured phase gets exactly one ``EyeCorners`` answer with the
frame's own header and frame counter, so the liveness node can match corners to frames by
exact stamp: corners (``STATUS_OK``), an explicit ``STATUS_NO_FACE``, or ``STATUS_BAD_INPUT``
with the reason (wrong encoding, empty, truncated or absurd frame). The science is
``antispoof_ros.landmarks`` (dlib HOG detection, then cheap tracking; docs/landmarks.md), run
by ``antispoof_ros.landmarks.pipeline.LandmarkPipeline`` with the periodic detection on a
worker thread after each answer.

Only frames of the camera node are searched: ``SourceGuard`` refuses a topic with a foreign
or second publisher and a stream whose counters and exposure stamps break the camera's
clock. A refused frame gets ``STATUS_NO_FACE`` with the reason, and /diagnostics says ERROR.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
import math
import socket
import time
from typing import NamedTuple

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import RegionOfInterest

from antispoof_ros.flash import Phase
from antispoof_ros.landmarks.backend import FaceBox
from antispoof_ros.landmarks.dlib_backend import DlibBackend, backend_for
from antispoof_ros.landmarks.pipeline import DEFAULT_MONO16_BITS, LandmarkPipeline
from antispoof_ros.landmarks.tracker import (
    MAX_SIDE_PX,
    DriverChoice,
    FaceTracker,
    LandmarkResult,
    Method,
    Status,
    TrackerConfig,
)
from antispoof_ros.msg import EyeCorners, FlashFrame
from antispoof_ros.nodes import diagnostics
from antispoof_ros.nodes.entrypoint import run_nodes
from antispoof_ros.nodes.frame_qos import FRAME_QOS, frame_qos_profile
from antispoof_ros.nodes.image_conversion import image_to_array
from antispoof_ros.nodes.messages import eye_corners_message, stamp_nanoseconds
from antispoof_ros.nodes.parameters import ConfigError, Param, declare_parameters, log_parameters
from antispoof_ros.nodes.source_guard import CAMERA_NODE_NAME, SourceGuard
from antispoof_ros.nodes.topics import EYE_CORNERS, flash_frame_topic

PARAMETERS = (
    Param('phase', 'front', 'Flash phase whose frames are searched (thesis 3.3.2: front).',
          choices=tuple(p.label for p in Phase)),
    Param('shape_model', 'five-point',
          "Face model: 'five-point' (dlib's frontal detector and 5-point model, for real "
          "faces), 'synthetic' (the shipped detector and corner model trained on the synthetic "
          "renderer's training subjects, ahead and camera poses) or the path of a dlib shape "
          "predictor used with dlib's frontal detector (5 parts in dlib order or 4 corner "
          'parts).'),
    Param('min_face_px', TrackerConfig.min_face_px,
          'Width (px) of the smallest face a full detection finds. It sets the detection '
          f'downscale to {DlibBackend.min_face_px}/min_face_px (320: 1/4, 480x300 for '
          '1920x1200); smaller values find smaller faces at a quadratic cost.',
          min_value=DlibBackend.min_face_px, max_value=MAX_SIDE_PX),
    Param('redetect_every', TrackerConfig.redetect_every,
          'A full detection at least every this many frames (1: detect on every frame), '
          'run after that frame is answered; between them the face is tracked near its '
          'last box.', min_value=1, max_value=100000),
    Param('driver_choice', TrackerConfig.driver_choice.value,
          'Which of several detected faces is the driver.',
          choices=tuple(choice.value for choice in DriverChoice)),
    Param('min_confidence', TrackerConfig.min_confidence,
          'Fits less confident than this count as no face (0.6 = HOG score 0.14).',
          min_value=0.0, max_value=1.0),
    Param('mono16_bits', DEFAULT_MONO16_BITS,
          'Significant bits of mono16 frames (Mono10: 10, Mono12: 12); they are scaled '
          'to 8 bit by 2^(8 - mono16_bits), saturating.',
          min_value=8, max_value=16),
    CAMERA_NODE_NAME,
    FRAME_QOS,
    Param('diagnostics_period_s', 1.0, 'Period of /diagnostics messages.', min_value=0.1,
          max_value=60.0),
)

# Frames of one phase arrive at 30 Hz: 5 queued frames (~170 ms) absorb a slow full
# detection without piling up stale frames behind it.
FRAME_QUEUE_DEPTH = 5
BAD_INPUT_LOG_PERIOD_S = 5.0

STATUS_CODES = {
    Status.OK: EyeCorners.STATUS_OK,
    Status.NO_FACE: EyeCorners.STATUS_NO_FACE,
    Status.BAD_INPUT: EyeCorners.STATUS_BAD_INPUT,
}
METHOD_CODES = {
    None: EyeCorners.METHOD_NONE,
    Method.DETECTED: EyeCorners.METHOD_DETECTED,
    Method.TRACKED: EyeCorners.METHOD_TRACKED,
}


def region_of_interest(box: FaceBox, width: int, height: int) -> RegionOfInterest:
    """Integer ROI covering ``box`` clipped to a ``width`` x ``height`` image."""
    clipped = box.clipped(width, height)
    left, top = math.floor(clipped.left), math.floor(clipped.top)
    right, bottom = math.ceil(clipped.right), math.ceil(clipped.bottom)
    return RegionOfInterest(x_offset=left, y_offset=top, width=right - left,
                            height=bottom - top)


def answer_message(frame: FlashFrame, result: LandmarkResult) -> EyeCorners:
    """The answer to ``frame``: its header and counter, and what the tracker found."""
    box = (region_of_interest(result.face_box, frame.image.width, frame.image.height)
           if result.face_box is not None else None)
    return eye_corners_message(
        frame.header, frame.frame_counter, result.corners, status=STATUS_CODES[result.status],
        reason=result.reason, confidence=result.confidence, face_count=result.face_count,
        method=METHOD_CODES[result.method], face_box=box)


def outcome(result: LandmarkResult) -> str:
    """Diagnostics bucket of a result: 'detected', 'tracked', 'no_face' or 'bad_input'."""
    return result.method.value if result.ok else result.status.value


class PeriodReport(NamedTuple):
    """One diagnostics period: what sets the level, and every value reported."""

    frames: int
    faces: int
    bad_input: int
    values: dict[str, str]


class LandmarkStatistics:
    """Frame outcomes and processing latencies since the last diagnostics report."""

    def __init__(self) -> None:
        self.frames_total = 0
        self.bad_input_total = 0
        self.untrusted_total = 0
        self.last_problem = ''
        self._start_period()

    def _start_period(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.latencies_ms: list[float] = []
        self.refreshes = self.refreshes_lost = 0
        self.untrusted = 0

    def add_refresh(self, result: LandmarkResult) -> None:
        """Count one periodic detection run after an answer (and whether it lost the face)."""
        self.refreshes += 1
        self.refreshes_lost += not result.ok

    def add_untrusted(self) -> None:
        """Count one frame refused because its source is untrusted (never searched)."""
        self.untrusted += 1
        self.untrusted_total += 1

    def add(self, result: LandmarkResult, latency_ms: float) -> None:
        """Count one answered frame."""
        self.frames_total += 1
        self.outcomes[outcome(result)] += 1
        self.latencies_ms.append(latency_ms)
        if result.status is Status.BAD_INPUT:
            self.bad_input_total += 1
        if not result.ok:
            self.last_problem = result.reason

    def report(self, elapsed_s: float) -> PeriodReport:
        """Figures of the period that ends now (and totals); starts the next period."""
        counts = self.outcomes
        frames = sum(counts.values())
        faces = counts['detected'] + counts['tracked']
        searched = frames - counts['bad_input']
        latencies = self.latencies_ms or [math.nan]
        values = {
            'frame_rate_hz': f'{frames / max(elapsed_s, 1e-9):.2f}',
            'latency_p50_ms': f'{np.percentile(latencies, 50):.2f}',
            'latency_p99_ms': f'{np.percentile(latencies, 99):.2f}',
            'detected': str(counts['detected']),
            'tracked': str(counts['tracked']),
            'no_face': str(counts['no_face']),
            'bad_input': str(counts['bad_input']),
            'detection_ratio': f"{counts['detected'] / faces:.3f}" if faces else 'nan',
            'periodic_detections': str(self.refreshes),
            'periodic_detections_without_face': str(self.refreshes_lost),
            'no_face_ratio': f"{counts['no_face'] / searched:.3f}" if searched else 'nan',
            'frames_total': str(self.frames_total),
            'bad_input_total': str(self.bad_input_total),
            'untrusted': str(self.untrusted),
            'untrusted_total': str(self.untrusted_total),
            'last_problem': self.last_problem,
        }
        self._start_period()
        return PeriodReport(frames, faces, counts['bad_input'], values)


class LandmarkNode(Node):
    """Publishes EyeCorners found on the frames of one flash phase."""

    def __init__(self, **node_options: object) -> None:
        super().__init__('landmark_node', **node_options)
        self.config = config = declare_parameters(self, PARAMETERS)
        log_parameters(self, config)
        try:
            backend = backend_for(config['shape_model'])
        except (FileNotFoundError, ValueError) as error:  # missing package or unusable file
            raise ConfigError(f"parameter 'shape_model': {error}") from None
        tracker = FaceTracker(backend, TrackerConfig(
            min_face_px=config['min_face_px'],
            redetect_every=config['redetect_every'],
            driver_choice=DriverChoice(config['driver_choice']),
            min_confidence=config['min_confidence'],
        ))
        self.frame_topic = flash_frame_topic(Phase.from_name(config['phase']))
        self.statistics = LandmarkStatistics()
        self.pipeline = LandmarkPipeline(tracker, mono16_bits=config['mono16_bits'],
                                         background=True,
                                         on_refresh=self.statistics.add_refresh)
        self._last_report_ns = self.get_clock().now().nanoseconds

        self.corners_publisher = self.create_publisher(EyeCorners, EYE_CORNERS, 10)
        self.source_guard = SourceGuard(self, [self.frame_topic], config['camera_node_name'])
        self.create_subscription(FlashFrame, self.frame_topic, self.receive,
                                 frame_qos_profile(config['frame_qos'], FRAME_QUEUE_DEPTH))
        self.frames_received = 0
        self.input_age = diagnostics.StaleCheck('frames')
        # hardware id: the host, the one thing the node's statuses share on a rig of several
        self.diagnostics = diagnostics.Updater(self, config['diagnostics_period_s'],
                                               socket.gethostname())
        self.status_name = self.diagnostics.add('landmarks', self.diagnostics_report)
        self.diagnostics.add('input', self.input_report)
        self.diagnostics.add('source', self.source_guard.diagnostics_report)

    def receive(self, frame: FlashFrame) -> None:
        """Subscription callback: let the source guard see the frame, then answer it."""
        self.frames_received += 1
        self.input_age.tick()
        self.source_guard.frame(self.frame_topic, int(frame.frame_counter),
                                stamp_nanoseconds(frame.header.stamp))
        self.on_frame(frame)

    def on_frame(self, frame: FlashFrame) -> None:
        """Answer one frame with EyeCorners; a bad frame is reported, never raised."""
        if untrusted := self.source_guard.reason_text():
            # never searched: a face in an injected frame must not become corners
            self.corners_publisher.publish(answer_message(
                frame, LandmarkResult(Status.NO_FACE, reason=untrusted)))
            self.statistics.add_untrusted()
            return
        started = time.perf_counter()
        result = self.pipeline.answer(partial(image_to_array, frame.image))
        self.corners_publisher.publish(answer_message(frame, result))
        self.statistics.add(result, (time.perf_counter() - started) * 1e3)
        if result.status is Status.BAD_INPUT:
            self.get_logger().warning(
                f'bad frame {frame.frame_counter} on {self.frame_topic}: {result.reason}',
                throttle_duration_sec=BAD_INPUT_LOG_PERIOD_S)
        self.pipeline.refresh_if_due()

    def destroy_node(self) -> None:
        """Let a periodic detection finish before the node goes."""
        self.pipeline.close()
        super().destroy_node()

    def diagnostics_report(self) -> diagnostics.Report:
        """Rate, latency and outcome ratios of the period that ends now."""
        now_ns = self.get_clock().now().nanoseconds
        report = self.statistics.report((now_ns - self._last_report_ns) / 1e9)
        self._last_report_ns = now_ns
        report.values.update(self.source_guard.values())
        if untrusted := self.source_guard.reason_text():
            level, message = diagnostics.ERROR, untrusted
        elif not report.frames:
            level, message = diagnostics.WARN, f'no frames on {self.frame_topic}'
        elif report.bad_input:
            level, message = diagnostics.WARN, 'bad input frames'
        else:
            level = diagnostics.OK
            message = 'face in view' if report.faces else 'no face in view'
        return diagnostics.Report(level, message, report.values)

    def input_report(self) -> diagnostics.Report:
        """How long ago a frame arrived on the phase topic: late WARN, stale ERROR."""
        age = self.input_age.check()
        return diagnostics.Report(age.level, f'{self.frame_topic}: {age.message}', {
            'topic': self.frame_topic, 'frames_received': self.frames_received,
            'frame_qos': self.config['frame_qos'], **age.values})


def main(args: list[str] | None = None) -> int:
    """Run landmark_node until SIGINT."""
    return run_nodes('landmark_node', [LandmarkNode], args)


if __name__ == '__main__':
    import sys

    sys.exit(main())
