"""liveness_node: MobileNetV2 liveness decision on synchronized flash-frame pairs.

Frame A, frame B (FlashFrame, the configured pair of phases) and the EyeCorners of their
cycle are time-matched with message_filters (or the package's stand-in where ROS 2's is not
installed) and handed to ``antispoof_ros.liveness.pipeline.LivenessPipeline``: checked on
their in-band stamps, aligned like the training data, scored by the ONNX model in
onnxruntime and fused over a window. This node subscribes, publishes the results, the
debug crops and /diagnostics. It fails closed: LIVE only ever follows a complete, valid
pair with landmarks.

The synchronizer's slop follows the frame period the incoming frames show (counters and
stamps, ``antispoof_ros.liveness.pairing.FramePeriodEstimator``), so pairs match at whatever
rate the camera really runs; ``frame_rate_hz`` is only the first guess. When frames arrive
but no set is matched for a second, one warning (and /diagnostics ``no_pairs_reason``) says
why, with numbers, again only when the cause changes.

Ages and timeouts (the fused window, no valid pair for ``timeout_s``, no set matched) are
measured on the node's ROS clock, so a bag replayed with ``use_sim_time`` decides alike at any
replay rate; only the processing latency is wall-clock time. The fused decision is relative
to the model's own threshold (``antispoof_ros.liveness.decision``), and the model file must
have the sha256 its card records (``expected_sha256`` too, if set): a model pinned by neither
runs only with ``allow_unpinned_model`` and is named "<name> (unpinned)" in every result.
"""

from __future__ import annotations

from collections import OrderedDict
import dataclasses
from functools import partial
import socket
import time

import numpy as np
from rclpy.duration import Duration
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from antispoof_ros.flash import DEFAULT_PATTERN, PAIR_CONFIGS, Phase, pair_config, parse_pattern
from antispoof_ros.liveness.alignment import EYES, REGIONS, region_by_name
from antispoof_ros.liveness.decision import (
    FusedDecision,
    FusionConfig,
    PairOutcome,
    Reason,
    pair_decision,
)
from antispoof_ros.liveness.frame_source_check import HOLD_S
from antispoof_ros.liveness.inference import LivenessModel, ModelExpectation, ModelLoadError
from antispoof_ros.liveness.pairing import (
    CornerInfo,
    DropReason,
    FrameInfo,
    FramePeriodEstimator,
    NoPairs,
    NoPairsCause,
    PairValidator,
    StreamAnomaly,
    StreamMonitor,
    SyncInput,
    SyncWatch,
    sync_slop_periods,
)
from antispoof_ros.liveness.pipeline import LivenessPipeline, PairResult, Unusable
from antispoof_ros.msg import EyeCorners, FlashFrame, LivenessResult
from antispoof_ros.nodes import diagnostics
from antispoof_ros.nodes.entrypoint import run_nodes
from antispoof_ros.nodes.frame_qos import FRAME_QOS, RELIABLE, frame_qos_profile
from antispoof_ros.nodes.image_conversion import array_to_image, image_to_array
from antispoof_ros.nodes.message_filters_compat import load_message_filters
from antispoof_ros.nodes.messages import stamp_nanoseconds
from antispoof_ros.nodes.overlay_publisher import OverlayPublisher
from antispoof_ros.nodes.parameters import ConfigError, Param, declare_parameters, log_parameters
from antispoof_ros.nodes.source_guard import CAMERA_NODE_NAME, SourceGuard
from antispoof_ros.nodes.topics import (
    EYE_CORNERS,
    LIVENESS_OVERLAY,
    LIVENESS_RESULT,
    flash_frame_topic,
)
from antispoof_ros.paths import SHIPPED_MODELS

DEBUG_CROP_TOPIC = 'liveness/debug_crop'
# The slop follows the observed frame period once it differs by more than this fraction.
SLOP_UPDATE_TOLERANCE = 0.1
NS_PER_S = 1_000_000_000
# more synchronized sets dropped than this (a face in view) in a period: input WARN
DROPPED_SHARE = 0.1

PARAMETERS = (
    Param('pair', 'P2', 'Frame pair fed to the model (thesis table 3.1).',
          choices=tuple(PAIR_CONFIGS)),
    Param('region', 'face', 'Input region: full face (200x250) or eye (48x48).',
          choices=tuple(REGIONS)),
    Param('eye', 'right', "Subject's eye used by the eye region (the left one is mirrored).",
          choices=EYES),
    Param('model_path', '', 'ONNX model file; empty: the model shipped for pair and region '
          '(antispoof_ros/models/<pair>_<region>.onnx).'),
    Param('expected_sha256', '', 'sha256 (64 hex digits) the model file must have, besides '
          'the one its model card records; empty: the card\'s alone.'),
    Param('allow_unpinned_model', False, 'Run a model that neither a model card beside it nor '
          'expected_sha256 pins; its results then name it "<name> (unpinned)".'),
    Param('ort_threads', 1, 'onnxruntime intra/inter-op threads.', min_value=1, max_value=64),
    Param('flash_pattern', [p.label for p in DEFAULT_PATTERN],
          'Flash phases of one cycle, in firing order; must equal the camera\'s.'),
    Param('landmark_phase', 'front', 'Phase whose frames the landmark node searches.',
          choices=tuple(p.label for p in Phase)),
    Param('frame_rate_hz', 120.0, 'Expected camera frame rate: sets the synchronizer slop '
          'until the frames\' counters and stamps show the real frame period.',
          min_value=1.0, max_value=1000.0),
    Param('sync_queue_size', 10, 'Messages kept per input by the synchronizer.',
          min_value=1, max_value=1000),
    Param('require_verified_phase', True,
          'Drop pairs whose phase labels nothing verified (image_check or the sequencer); '
          'false only for a camera whose images cannot show the flashes.'),
    Param('window_length', 9, 'Pairs in the fused decision window.', min_value=1,
          max_value=1000),
    Param('min_valid_pairs', 6, 'Valid pairs needed in the window before LIVE or SPOOF.',
          min_value=1, max_value=1000),
    Param('enter_margin', FusionConfig.enter_margin, 'Mean margin (logit of the score minus '
          'logit of the model\'s threshold, over the valid pairs in the window) from which the '
          'decision becomes LIVE.', min_value=-20.0, max_value=20.0),
    Param('exit_margin', FusionConfig.exit_margin, 'Mean margin below which the decision is '
          'SPOOF; LIVE holds down to it.', min_value=-20.0, max_value=20.0),
    Param('min_live_fraction', FusionConfig.min_live_fraction, 'Share of the valid pairs in '
          'the window that must each be LIVE by the model\'s threshold for a fused LIVE.',
          min_value=0.0, max_value=1.0),
    Param('timeout_s', 0.5, 'Without a valid pair for this long the decision is UNKNOWN.',
          min_value=0.01, max_value=60.0),
    Param('publish_debug_crops', False,
          f'Publish the aligned crop (A | B side by side, mono8) on {DEBUG_CROP_TOPIC}.'),
    Param('overlay_rate_hz', 5.0, f'Most pictures per second on {LIVENESS_OVERLAY} (frame B '
          'with face box, eye corners and decision), drawn only while someone subscribes; '
          '0: off.', min_value=0.0, max_value=120.0),
    CAMERA_NODE_NAME,
    FRAME_QOS,
    Param('diagnostics_period_s', 1.0, 'Period of /diagnostics messages.', min_value=0.1,
          max_value=60.0),
)


class LivenessNode(Node):
    """Publishes a LivenessResult for every synchronized pair of flash frames."""

    def __init__(self, **node_options: object) -> None:
        super().__init__('liveness_node', **node_options)
        self.config = config = declare_parameters(self, PARAMETERS)
        try:
            self.pair = pair_config(config['pair'])
            self.region = region_by_name(config['region'])
            pattern = parse_pattern(config['flash_pattern'])
            landmark_phase = Phase.from_name(config['landmark_phase'])
            validator = PairValidator(
                self.pair, pattern, landmark_phase, config['require_verified_phase']
            )
            fusion = FusionConfig(
                window_length=config['window_length'],
                min_valid_pairs=config['min_valid_pairs'],
                enter_margin=config['enter_margin'], exit_margin=config['exit_margin'],
                min_live_fraction=config['min_live_fraction'], timeout_s=config['timeout_s'],
            )
        except ValueError as error:
            raise ConfigError(str(error)) from None
        self.model = self._load_model()
        self.pipeline = LivenessPipeline(self.model, validator, fusion)
        self.validator = validator
        log_parameters(self, config)
        self.get_logger().info(
            f'model {self.model.label} ({self.model.path}), sha256 '
            f'{self.model.sha256[:16]}..., threshold {self.model.threshold:.3f}, '
            f'pair {self.pair.name}, region {self.region.name}, pinned by {self.pin}'
        )

        self.result_publisher = self.create_publisher(LivenessResult, LIVENESS_RESULT, 10)
        self.overlay = OverlayPublisher(
            self, config['overlay_rate_hz'],
            f'{self.pair.name} {self.pair.phase_a.label}+{self.pair.phase_b.label}')
        self.debug_publisher = (
            self.create_publisher(Image, DEBUG_CROP_TOPIC, 5)
            if config['publish_debug_crops'] else None
        )
        self._arrivals: OrderedDict[int, float] = OrderedDict()  # B stamp -> arrival time
        self._latencies_ms: list[float] = []
        self._pairs_in_period = 0
        self._last_published_unknown = False
        self._last_frame_b_s = -float('inf')
        self.input_monitors: list[StreamMonitor] = []
        self.period_estimator = FramePeriodEstimator()
        self.sync_watch = SyncWatch(self.pair.phase_a.label, self.pair.phase_b.label,
                                    self.pair.is_single, history=config['sync_queue_size'])
        self.no_pairs: NoPairs | None = None
        self._told_cause: NoPairsCause | None = None  # logged since the last matched set
        # held at least timeout_s: pairs scored before a problem showed have left the window
        phases = dict.fromkeys((self.pair.phase_a, self.pair.phase_b))
        self.source_guard = SourceGuard(
            self, [flash_frame_topic(phase) for phase in phases], config['camera_node_name'],
            max(HOLD_S, config['timeout_s']), len(pattern))
        self._subscribe(pattern, landmark_phase)
        self.create_timer(0.1, self.check_timeout)
        self.input_age = diagnostics.StaleCheck(
            'frames', config['timeout_s'], max(diagnostics.STALE_S, 2 * config['timeout_s']))
        self.set_rate = diagnostics.RateCheck('sets', config['frame_rate_hz'] / len(pattern))
        self.dropped_share = diagnostics.ShareCheck('dropped_sets', DROPPED_SHARE)
        self._new_model_errors = diagnostics.Increase()
        # hardware id: the host; the model's identity is the 'model' task's
        self.diagnostics = diagnostics.Updater(self, config['diagnostics_period_s'],
                                               socket.gethostname())
        self.status_name = self.diagnostics.add('liveness', self.diagnostics_report)
        self.diagnostics.add('input', self.input_report)
        self.diagnostics.add('model', self.model_report)
        self.diagnostics.add('source', self.source_guard.diagnostics_report)

    def _load_model(self) -> LivenessModel:
        path = self.config['model_path'] or str(
            SHIPPED_MODELS / f'{self.pair.name.lower()}_{self.region.name}.onnx'
        )
        try:
            model = LivenessModel.load(
                path, self.config['ort_threads'],
                ModelExpectation(pair=self.pair.name, region=self.region.name,
                                 sha256=self.config['expected_sha256'].lower() or None),
                allow_unpinned=self.config['allow_unpinned_model'],
            )
        except (ModelLoadError, ValueError) as error:
            raise ConfigError(str(error)) from None
        if not model.pinned:
            self.get_logger().warning(f'running {path} unpinned (allow_unpinned_model): no '
                                      'model card with its sha256, no expected_sha256')
        if model.metadata.region == 'eye' and model.metadata.eye != self.config['eye']:
            raise ConfigError(f'model was trained on the {model.metadata.eye} eye, '
                              f'node uses {self.config["eye"]}')
        return model

    @property
    def pin(self) -> str:
        """What pinned the model's sha256, for the log and /diagnostics."""
        return ', '.join(self.model.pinned_by) or 'nothing (unpinned)'

    def now_s(self) -> float:
        """Seconds on the node's ROS clock: simulated time under ``use_sim_time``."""
        return self.get_clock().now().nanoseconds / NS_PER_S

    def _subscribe(self, pattern: tuple[Phase, ...], landmark_phase: Phase) -> None:
        """Time-match A, B and corners, within a slop of whole frame periods (see pairing)."""
        message_filters = load_message_filters()
        depth = self.config['sync_queue_size']
        qos = frame_qos_profile(self.config['frame_qos'], depth)
        frame_a = message_filters.Subscriber(
            self, FlashFrame, flash_frame_topic(self.pair.phase_a), qos_profile=qos
        )
        inputs = {SyncInput.FRAME_A: frame_a}
        if self.pair.is_single:
            frame_b = frame_a
        else:
            frame_b = inputs[SyncInput.FRAME_B] = message_filters.Subscriber(
                self, FlashFrame, flash_frame_topic(self.pair.phase_b), qos_profile=qos
            )
        frame_b.registerCallback(self._note_arrival)
        inputs[SyncInput.CORNERS] = message_filters.Subscriber(
            self, EyeCorners, EYE_CORNERS, qos_profile=frame_qos_profile(RELIABLE, depth))
        # registered before the synchronizer, so each message is noted before it is matched
        for which, source in inputs.items():
            monitor = StreamMonitor(len(pattern))
            source.registerCallback(partial(self._note_input, monitor, which))
            self.input_monitors.append(monitor)
        self.slop_periods = sync_slop_periods(
            pattern, (self.pair.phase_a, self.pair.phase_b, landmark_phase))
        self.slop_ns = self.slop_periods * NS_PER_S / self.config['frame_rate_hz']
        self.synchronizer = message_filters.ApproximateTimeSynchronizer(
            list(inputs.values()), self.config['sync_queue_size'], self.slop_ns / NS_PER_S
        )
        self.synchronizer.registerCallback(self.on_pair)
        self.get_logger().info(
            f'synchronizing {", ".join(s.getTopic() for s in inputs.values())} '
            f'(slop {self.slop_ns / 1e6:.1f} ms = {self.slop_periods:g} frame periods at '
            f'{self.config["frame_rate_hz"]:g} Hz until the frames show their period, '
            f'{message_filters.__name__})'
        )

    def _note_input(self, monitor: StreamMonitor, which: SyncInput,
                    message: FlashFrame | EyeCorners) -> None:
        counter, stamp_ns = int(message.frame_counter), stamp_nanoseconds(message.header.stamp)
        monitor.add(counter)
        self.sync_watch.arrived(which, stamp_ns, self.now_s())
        if which is not SyncInput.CORNERS:
            phase = self.pair.phase_a if which is SyncInput.FRAME_A else self.pair.phase_b
            self.source_guard.frame(flash_frame_topic(phase), counter, stamp_ns)
            period_ns = self.period_estimator.add(which, counter, stamp_ns)
            if period_ns is not None:
                self._follow_frame_period(period_ns)

    def _follow_frame_period(self, period_ns: float) -> None:
        """Set the synchronizer's slop for the observed frame period, if it moved enough.

        ROS 2's ApproximateTimeSynchronizer keeps its slop as a Duration in ``slop`` and
        reads it on every arrival; the package's stand-in does the same.
        """
        slop_ns = self.slop_periods * period_ns
        if abs(slop_ns - self.slop_ns) <= SLOP_UPDATE_TOLERANCE * self.slop_ns:
            return
        self.slop_ns = slop_ns
        self.synchronizer.slop = Duration(nanoseconds=round(slop_ns))
        self.get_logger().info(
            f'frames show a period of {period_ns / 1e6:.2f} ms ({NS_PER_S / period_ns:.1f} '
            f'Hz): synchronizer slop {slop_ns / 1e6:.1f} ms'
        )

    def _note_arrival(self, frame: FlashFrame) -> None:
        self._arrivals[stamp_nanoseconds(frame.header.stamp)] = time.perf_counter()
        self._last_frame_b_s = self.now_s()
        self.input_age.tick()
        while len(self._arrivals) > 4 * self.config['sync_queue_size']:
            self._arrivals.popitem(last=False)

    # -- per pair --------------------------------------------------------------------------
    def on_pair(self, *messages: FlashFrame | EyeCorners) -> None:
        """Validate, align, score and decide one synchronized set."""
        frame_a, frame_b, corners = (
            (messages[0], messages[0], messages[1]) if self.pair.is_single else messages
        )
        self.sync_watch.matched(self.now_s())
        self._told_cause = None  # sets flow again: the next stall is news
        result = self.pipeline.score(
            FrameInfo.from_msg(frame_a), FrameInfo.from_msg(frame_b), CornerInfo.from_msg(corners),
            partial(image_to_array, frame_a.image), partial(image_to_array, frame_b.image),
        )
        # scored (and counted) all the same; an untrusted source's pair never votes
        untrusted = self.source_guard.reason_text()
        outcome = result.outcome if untrusted is None else PairOutcome.invalid(Reason.BAD_INPUT)
        fused = self.pipeline.fusion.update(outcome, self.now_s())
        self._report_unusable(result)
        if result.crop is not None and self.debug_publisher is not None:
            crop = result.crop
            side_by_side = np.clip(np.concatenate([crop[..., 0], crop[..., 1]], axis=1), 0, 255)
            self.debug_publisher.publish(
                array_to_image(side_by_side.astype(np.uint8), 'mono8', frame_b.header)
            )
        arrival = self._arrivals.pop(stamp_nanoseconds(frame_b.header.stamp), None)
        latency_ms = (
            1000 * (time.perf_counter() - arrival) if arrival is not None else float('nan')
        )
        self._publish(fused, outcome, frame_a, frame_b, latency_ms, untrusted)
        self.overlay.publish(frame_b, corners, result, fused)
        self._pairs_in_period += 1
        if arrival is not None:
            self._latencies_ms.append(latency_ms)

    def _report_unusable(self, result: PairResult) -> None:
        if result.unusable is Unusable.BAD_IMAGE:
            self.get_logger().warning(f'unusable pair: {result.problem}',
                                      throttle_duration_sec=5.0)
        elif result.unusable is Unusable.MODEL_ERROR:
            self.get_logger().warning('model output is not a probability',
                                      throttle_duration_sec=5.0)

    def _publish(self, fused: FusedDecision, outcome: PairOutcome, frame_a: FlashFrame | None,
                 frame_b: FlashFrame | None, latency_ms: float,
                 reason_text: str | None = None) -> None:
        result = LivenessResult(
            score=float(outcome.score) if outcome.valid else float('nan'),
            pair_decision=int(pair_decision(outcome, self.model.threshold)),
            decision=int(fused.decision),
            fused_score=float(fused.fused_score),
            reason=int(fused.reason),
            reason_text=reason_text or fused.reason_text,
            pair_config=self.pair.name,
            region=self.region.name,
            phase_a=int(self.pair.phase_a),
            phase_b=int(self.pair.phase_b),
            model_name=self.model.label,
            model_sha256=self.model.sha256,
            latency_ms=float(latency_ms),
        )
        if frame_a is not None and frame_b is not None:
            result.header = frame_b.header  # the output describes frame B's moment
            result.frame_counter_a = frame_a.frame_counter
            result.frame_counter_b = frame_b.frame_counter
            result.stamp_a = frame_a.header.stamp
            result.stamp_b = frame_b.header.stamp
        else:
            result.header = Header(stamp=self.get_clock().now().to_msg())
        self.result_publisher.publish(result)
        self._last_published_unknown = fused.decision == fused.decision.UNKNOWN

    def check_timeout(self) -> None:
        """No valid pair for ``timeout_s``: say UNKNOWN instead of leaving a LIVE standing."""
        now = self.now_s()
        self._explain_no_pairs(now)
        expired = self.pipeline.expire(now)
        if expired is not None and now - self._last_frame_b_s < self.config['timeout_s']:
            # frames keep coming but no set completes: the corners are what is missing
            expired = dataclasses.replace(expired, reason=Reason.LANDMARKS_STALE)
        if expired is not None and not self._last_published_unknown:
            self.get_logger().warning(f'no valid pair for {self.config["timeout_s"]} s: '
                                      f'{expired.reason.name.lower()}')
            self._publish(expired, PairOutcome.invalid(expired.reason), None, None, float('nan'))

    def _explain_no_pairs(self, now: float) -> None:
        """Frames arrive but no set is matched: say why once, and again when the cause changes."""
        self.no_pairs = self.sync_watch.why(now, self.slop_ns)
        if self.no_pairs is not None and self.no_pairs.cause != self._told_cause:
            self._told_cause = self.no_pairs.cause
            self.get_logger().warning(f'no synchronized set for {self.sync_watch.quiet_s:g} s: '
                                      f'{self.no_pairs.text}')

    # -- diagnostics -----------------------------------------------------------------------
    def diagnostics_report(self) -> diagnostics.Report:
        """Pairs/s, drops by reason, latency percentiles, slop and why no set matches."""
        latencies, self._latencies_ms = self._latencies_ms, []
        pairs, self._pairs_in_period = self._pairs_in_period, 0
        period = self.config['diagnostics_period_s']
        values = {
            'pairs_per_s': f'{pairs / period:.2f}',
            'latency_p50_ms': f'{np.percentile(latencies, 50):.2f}' if latencies else 'nan',
            'latency_p99_ms': f'{np.percentile(latencies, 99):.2f}' if latencies else 'nan',
            **{f'pairs_{key}': count for key, count in self.pipeline.counts().items()},
            **{f'input_{anomaly.value}': sum(m.counts[anomaly] for m in self.input_monitors)
               for anomaly in StreamAnomaly},
            'model': self.model.label,
            'model_sha256': self.model.sha256,
            'model_pinned_by': self.pin,
            'slop_ms': f'{self.slop_ns / 1e6:.1f}',
            'no_pairs_reason': self.no_pairs.text if self.no_pairs is not None else '',
            **self.source_guard.values(),
        }
        if untrusted := self.source_guard.reason_text():
            return diagnostics.Report(diagnostics.ERROR, untrusted, values)
        if pairs and self.no_pairs is None:
            return diagnostics.Report(diagnostics.OK, 'evaluating pairs', values)
        return diagnostics.Report(diagnostics.WARN, 'no pairs', values)

    def input_report(self) -> diagnostics.Report:
        """Frame B stale (ERROR), too few synchronized sets, or too many of them dropped."""
        counts = self.validator.counts()
        sets = sum(counts.values())
        # a set without a face is the scene, not a fault of the inputs
        dropped = sets - counts['accepted'] - counts[DropReason.NO_FACE.value]
        return diagnostics.worst(
            self.input_age.check(), self.set_rate.check(sets),
            self.dropped_share.check(dropped, sets),
            diagnostics.Report(diagnostics.OK, '', {
                'sets_total': sets, 'dropped_total': dropped,
                'frame_qos': self.config['frame_qos']}))

    def model_report(self) -> diagnostics.Report:
        """The model in use; ERROR for a period in which it answered no probability."""
        errors = self.pipeline.unusable[Unusable.MODEL_ERROR]
        values = {'model': self.model.label, 'model_sha256': self.model.sha256,
                  'model_pinned_by': self.pin, 'threshold': f'{self.model.threshold:.3f}',
                  'model_errors_total': errors}
        if new := self._new_model_errors(errors):
            return diagnostics.Report(diagnostics.ERROR, f'{new} model outputs not a probability',
                                      values)
        return diagnostics.Report(diagnostics.OK, self.model.label, values)


def main(args: list[str] | None = None) -> int:
    """Run liveness_node until SIGINT."""
    return run_nodes('liveness_node', [LivenessNode], args)


if __name__ == '__main__':
    import sys

    sys.exit(main())
