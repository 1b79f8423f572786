"""camera_node: Basler NIR frames published with their flash phase.

Every frame is published twice per phase: as ``FlashFrame`` (pixels + in-band phase stamp,
for the pipeline) on ``camera/<phase>/flash_frame`` and as a plain ``sensor_msgs/Image`` on
``camera/<phase>/image_raw`` with its ``camera/<phase>/camera_info`` for rqt/rviz and the
image pipeline (``publish_images``). Grabbing runs on its own thread and publishes directly;
the executor only serves parameters, lifecycle services and diagnostics.

A managed (lifecycle) node, so the flashes can be stopped without ending the process:
configure opens and programs the camera, activate grabs (and strobes), deactivate stops
grabbing and switches every flash output off, cleanup releases the camera. With
``autostart`` (the default) the node configures and activates itself at start.

``flash_wiring`` says who fires the flashes (``camera.wiring``); the phase of a frame comes
from the sequencer's set index with the sequencer wiring, else from the frame counter,
verified by the images with ``phase_source`` ``image_check`` (the default).
"""

from __future__ import annotations

from pathlib import Path

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import qos_profile_system_default
from sensor_msgs.msg import CameraInfo as CameraInfoMessage
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from antispoof_ros.camera import wiring
from antispoof_ros.camera.calibration import Calibration, CalibrationError, load_calibration
from antispoof_ros.camera.clock import ExposureClock
from antispoof_ros.camera.phase_labels import (
    FrameCounterLabeler,
    PhaseLabel,
    PhaseSource,
    PhaseTracker,
    check_image_check_pattern,
)
from antispoof_ros.camera.pylon_source import (
    PIXEL_FORMATS,
    CameraConfigError,
    CameraInfo,
    CameraSettings,
    CameraStream,
    GrabbedFrame,
    GrabStatistics,
)
from antispoof_ros.flash import DEFAULT_PATTERN, parse_pattern
from antispoof_ros.msg import FlashFrame
from antispoof_ros.nodes import diagnostics
from antispoof_ros.nodes.entrypoint import run_nodes
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.messages import camera_info_message, flash_frame_message, ros_time
from antispoof_ros.nodes.parameters import ConfigError, Param, declare_parameters, log_parameters
from antispoof_ros.nodes.topics import camera_info_topic, flash_frame_topic, image_topic
from antispoof_ros.paths import SOURCE_TREE

PHASE_SOURCES = {
    'sequencer': PhaseSource.SEQUENCER,
    'frame_counter': PhaseSource.FRAME_COUNTER,
    'image_check': PhaseSource.IMAGE_CHECK,
}
# more unverified labels than this in a diagnostics period: the liveness node scores few pairs
UNVERIFIED_SHARE = 0.1

PARAMETERS = (
    Param('serial_number', '', 'Camera serial number; empty: any (see user_id).'),
    Param('user_id', '', 'Camera DeviceUserID; empty: any. First matching camera is used.'),
    Param('width', 1920, 'Image width in pixels.', min_value=16, max_value=16384),
    Param('height', 1200, 'Image height in pixels.', min_value=16, max_value=16384),
    Param('offset_x', 0, 'Horizontal ROI offset in pixels.', min_value=0, max_value=16384),
    Param('offset_y', 0, 'Vertical ROI offset in pixels.', min_value=0, max_value=16384),
    Param('pixel_format', 'Mono8', 'Sensor pixel format; Mono10/Mono12 publish as mono16.',
          choices=tuple(PIXEL_FORMATS)),
    Param('exposure_us', 2000.0, 'Exposure time in microseconds.', min_value=1.0,
          max_value=1e7),
    Param('gain_db', 0.0, 'Analog gain in dB.', min_value=0.0, max_value=48.0),
    Param('frame_rate_hz', 120.0, 'Acquisition frame rate (the flash cycle runs at 1/4).',
          min_value=1.0, max_value=1000.0),
    Param('user_set', '', 'User set to load before configuring (e.g. UserSet1); empty: none.'),
    Param('feature_file', '', 'pylon .pfs feature file loaded before configuring; empty: none.'),
    Param('line_outputs', '', 'Strobe outputs as comma-separated Line:Source pairs, e.g. '
          "'Line2:ExposureActive'; empty: leave the lines as they are."),
    Param('flash_wiring', 'none',
          "How the flashes follow the frames: sequencer: the camera's sequencer fires "
          'flash_lines per phase (ace USB/ace 2; refused on a camera without one); '
          'external: a flash controller counts the line_outputs strobe pulses; none: leave '
          "the camera's lines and sequencer as they are.",
          choices=wiring.WIRING_MODES),
    Param('flash_lines', 'front:Line2,right:Line3,left:Line4',
          "sequencer wiring: output line(s) of each flash phase as phase:Line pairs, '+' "
          "joins lines (e.g. 'front:Line2+Line3')."),
    Param('flash_pattern', [p.label for p in DEFAULT_PATTERN],
          'Flash phases of one cycle, in firing order (thesis figure 3.1).'),
    Param('phase_source', 'image_check',
          'sequencer: chunk sequencer set index; frame_counter: (counter + offset) mod N; '
          'image_check: frame counter verified and corrected by image statistics.',
          choices=tuple(PHASE_SOURCES)),
    Param('phase_offset', 0, 'Added to the frame counter before taking it modulo the pattern.',
          min_value=0, max_value=1000),
    Param('frame_id', 'nir_camera_optical_frame', 'header.frame_id of every published frame.'),
    Param('publish_images', True, 'Also publish plain Image topics per phase (rqt/rviz).'),
    Param('camera_info_url', '', 'Calibration written by camera_calibration, as '
          'file:///path.yaml or package://antispoof_ros/path.yaml; empty: uncalibrated '
          'CameraInfo (all-zero intrinsics).'),
    Param('autostart', True, 'Configure and activate at start; false: stay unconfigured '
          'until a lifecycle manager (ros2 lifecycle set) moves the node.'),
    Param('transport_layers', 'BaslerUsb,BaslerCamEmu',
          'Comma-separated pylon transport layers to search (add BaslerGigE for GigE cameras; '
          'its discovery broadcasts UDP on all interfaces).'),
    Param('emulated_cameras', 0, 'Number of pylon emulated cameras (PYLON_CAMEMU); 0: real.',
          min_value=0, max_value=8),
    Param('emulator_image_dir', '', 'Folder of images the emulated camera replays in '
          'alphabetical order (one flash cycle = N files in phase order).'),
    Param('grab_timeout_ms', 1000, 'How long to wait for a frame before checking the camera.',
          min_value=10, max_value=60000),
    Param('retry_delay_s', 0.5, 'First delay before reconnecting; doubles up to the maximum.',
          min_value=0.01, max_value=60.0),
    Param('retry_max_delay_s', 10.0, 'Longest delay between reconnect attempts.',
          min_value=0.01, max_value=600.0),
    Param('diagnostics_period_s', 1.0, 'Period of /diagnostics messages.', min_value=0.1,
          max_value=60.0),
)


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(',') if item.strip())


def _package_share() -> Path:
    """Share folder of the installed package, or the source tree when run from a checkout."""
    from ament_index_python.packages import get_package_share_directory

    try:
        return Path(get_package_share_directory('antispoof_ros'))
    except (LookupError, OSError, ValueError):  # not installed, or no AMENT_PREFIX_PATH
        return SOURCE_TREE


class CameraNode(LifecycleNode):
    """Publishes one FlashFrame and one Image + CameraInfo stream per flash phase."""

    def __init__(self, **node_options: object) -> None:
        super().__init__('camera_node', **node_options)
        # Set by configure (camera open and programmed), None while unconfigured.
        self.stream: CameraStream | None = None
        self.active = False
        self.config = config = declare_parameters(self, PARAMETERS)
        try:
            self.pattern = parse_pattern(config['flash_pattern'])
            if config['phase_source'] == 'image_check':
                check_image_check_pattern(self.pattern)
        except ValueError as error:
            raise ConfigError(f"parameter 'flash_pattern': {error}") from None
        # the sequencer's set index is the only phase source that knows the sequencer's sets
        if (config['flash_wiring'] == 'sequencer') != (config['phase_source'] == 'sequencer'):
            raise ConfigError(
                f"parameter 'phase_source': '{config['phase_source']}' contradicts flash_wiring "
                f"'{config['flash_wiring']}' (set both to 'sequencer', or neither)")
        log_parameters(self, config)
        self.phase_source = PHASE_SOURCES[config['phase_source']]
        self.labeler = FrameCounterLabeler(self.pattern, config['phase_offset'])
        self.phase_tracker = PhaseTracker(
            self.labeler, on_correction=self._phase_corrected
        ) if config['phase_source'] == 'image_check' else None
        self.clock = ExposureClock()
        self.exposure_ns = int(config['exposure_us'] * 1000)
        self.phase_verified = False
        self.phase_errors = 0
        self.frames_published = 0
        self.unverified_frames = 0
        self._last_report = (self.get_clock().now().nanoseconds, 0)
        self.calibration: Calibration | None = None
        self.transition_error = ''
        self._autostarting = False

        # Lifecycle publishers: nothing goes out unless the node is active.
        qos = qos_profile_system_default  # REP-2003: drivers publish with system default QoS
        self.frame_publishers = {
            phase: self.create_lifecycle_publisher(FlashFrame, flash_frame_topic(phase), qos)
            for phase in self.pattern
        }
        self.viewer_publishers = {
            phase: (self.create_lifecycle_publisher(Image, image_topic(phase), qos),
                    self.create_lifecycle_publisher(CameraInfoMessage, camera_info_topic(phase),
                                                    qos))
            for phase in self.pattern
        } if config['publish_images'] else {}
        # hardware id: the camera's serial once one is open, which Robot Monitor lists
        self.diagnostics = diagnostics.Updater(self, config['diagnostics_period_s'])
        self.status_name = self.diagnostics.add('camera', self.diagnostics_report)
        self.frame_rate = diagnostics.RateCheck('frames', config['frame_rate_hz'])
        self.diagnostics.add('frame rate', self.frame_rate_report)
        self._new_phase_problems = diagnostics.Increase()
        self.unverified_share = diagnostics.ShareCheck('unverified_labels', UNVERIFIED_SHARE)
        self.diagnostics.add('phase labels', self.phase_labels_report)
        if config['autostart']:
            self._autostart()

    def _autostart(self) -> None:
        """Configure and activate now; a failure ends the process with its one-line reason."""
        self._autostarting = True
        try:
            for transition in (self.trigger_configure, self.trigger_activate):
                if transition() != TransitionCallbackReturn.SUCCESS:
                    self._release_camera()
                    raise ConfigError(self.transition_error or f'{transition.__name__} failed')
        finally:
            self._autostarting = False

    # -- lifecycle transitions (executor thread) ----------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the calibration, then open and program the camera (not grabbing)."""
        try:
            self.calibration = self._load_calibration()
            self.stream = self._new_stream()
            self._hold_camera()
        except ConfigError as error:
            self._release_camera()
            return self._failed('configure', error)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Grab (and strobe); the stream reconnects by itself until deactivated."""
        result = super().on_activate(state)  # publishers on before the first frame
        self.active = True
        try:
            self.stream.start()
        except CameraConfigError as error:
            self.active = False
            super().on_deactivate(state)
            return self._failed('activate', ConfigError(str(error)))
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop grabbing, then hold the camera open and programmed with its flashes off."""
        self.stream.pause()
        self.active = False
        result = super().on_deactivate(state)
        try:
            self.stream.camera.outputs_off()
        except CameraConfigError as error:  # the camera stopped grabbing; only that failed
            self._log_event('error', f'configuration error: {error}')
        return result

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the camera."""
        self._release_camera()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop grabbing and release the camera, from whatever state."""
        self.active = False
        self._release_camera()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: release the camera and fall back to unconfigured."""
        self.active = False
        self._release_camera()
        return super().on_error(state)

    def _failed(self, transition: str, error: ConfigError) -> TransitionCallbackReturn:
        """Record why ``transition`` failed; said in one line (by the entry point at start)."""
        self.transition_error = str(error)
        if not self._autostarting:
            self._log_event('error', f'{transition} failed: configuration error: {error}')
        return TransitionCallbackReturn.FAILURE

    def _load_calibration(self) -> Calibration:
        """The camera_info_url calibration, checked against the image size; else uncalibrated."""
        url, width, height = (self.config[k] for k in ('camera_info_url', 'width', 'height'))
        if not url:
            if self.viewer_publishers:
                self.get_logger().warning(
                    'no camera_info_url: camera_info is uncalibrated (all-zero intrinsics); '
                    'calibrate with camera_calibration and set camera_info_url')
            return Calibration(width=width, height=height)
        package_root = _package_share() if url.startswith('package://') else SOURCE_TREE
        try:
            calibration = load_calibration(url, package_root)
            calibration.check_size(width, height)
        except CalibrationError as error:
            raise ConfigError(f"parameter 'camera_info_url': {error}") from None
        self.get_logger().info(f"calibration '{calibration.camera_name}' from {url}")
        return calibration

    def _new_stream(self) -> CameraStream:
        return CameraStream(
            self._camera_settings(),
            on_frame=self.on_frame,
            on_event=self._log_event,
            on_stream_start=self.on_stream_start,
            on_lost_frame=self.labeler.counter,
            grab_timeout_ms=self.config['grab_timeout_ms'],
            retry_delay_s=self.config['retry_delay_s'],
            retry_max_delay_s=self.config['retry_max_delay_s'],
        )

    def _hold_camera(self) -> None:
        """Open and program the stream's camera without grabbing, every flash output off.

        A missing camera is not an error here: activation keeps retrying until it appears.
        """
        try:
            self.stream.open_now(grab=False)
            self.stream.camera.outputs_off()
        except CameraConfigError as error:
            raise ConfigError(str(error)) from None

    def _release_camera(self) -> None:
        if self.stream is not None:
            self.stream.close()
        self.stream = None

    def _camera_settings(self) -> CameraSettings:
        c = self.config
        return CameraSettings(
            serial_number=c['serial_number'], user_id=c['user_id'], width=c['width'],
            height=c['height'], offset_x=c['offset_x'], offset_y=c['offset_y'],
            pixel_format=c['pixel_format'], exposure_us=c['exposure_us'], gain_db=c['gain_db'],
            frame_rate_hz=c['frame_rate_hz'], user_set=c['user_set'],
            feature_file=c['feature_file'],
            line_outputs=_comma_list(c['line_outputs']),
            transport_layers=_comma_list(c['transport_layers']),
            emulated_cameras=c['emulated_cameras'],
            emulator_image_dir=c['emulator_image_dir'],
            flash_wiring=c['flash_wiring'], flash_lines=_comma_list(c['flash_lines']),
            flash_pattern=self.pattern,
        )

    def _log_event(self, level: str, text: str) -> None:
        # one call site per severity: rclpy refuses a call site that changes severity
        logger = self.get_logger()
        if level == 'error':
            logger.error(text)
        elif level == 'warn':
            logger.warning(text)
        else:
            logger.info(text)

    # -- grab thread -----------------------------------------------------------------------
    def on_stream_start(self, info: CameraInfo) -> None:
        """A (re)started acquisition: counters and camera clock begin anew."""
        self.labeler.start_stream()
        if self.phase_tracker is not None:
            self.phase_tracker.reset()
        self.clock.reset()
        self.diagnostics.set_hardware_id(info.serial_number)
        self.get_logger().info(
            f'camera {info.model} serial {info.serial_number}'
            f"{' (emulated)' if info.is_emulator else ''}: "
            f'{self.config["width"]}x{self.config["height"]} {self.config["pixel_format"]}, '
            f'resulting frame rate {info.resulting_frame_rate_hz:.1f} Hz, '
            f'phase source {self.config["phase_source"]}'
        )
        for note in info.notes:
            self.get_logger().warning(note)

    def on_frame(self, frame: GrabbedFrame) -> None:
        """Label, stamp and publish one grabbed frame."""
        counter = self.labeler.counter(frame.block_id)
        label = self._label(counter, frame)
        self.phase_verified = label.verified
        self.unverified_frames += not label.verified
        stamp = ros_time(self.clock.stamp_ns(frame.camera_tick, frame.host_arrival_ns,
                                              self.exposure_ns))
        header = Header(stamp=stamp, frame_id=self.config['frame_id'])
        image = array_to_image(frame.pixels, self.stream.camera.encoding, header)
        self.frame_publishers[label.phase].publish(flash_frame_message(label, header, image))
        # Like image_transport's camera publisher: image and camera_info cost a serialisation
        # only when either is watched, and then go out together under the same header.
        viewer = self.viewer_publishers.get(label.phase)
        if viewer is not None and any(p.get_subscription_count() > 0 for p in viewer):
            image_publisher, info_publisher = viewer
            image_publisher.publish(image)
            info_publisher.publish(camera_info_message(self.calibration, header))
        self.frames_published += 1

    def _label(self, counter: int, frame: GrabbedFrame) -> PhaseLabel:
        if self.phase_source == PhaseSource.SEQUENCER and frame.sequencer_set is not None:
            position = frame.sequencer_set % len(self.pattern)
            self.labeler.offset = (position - counter) % len(self.pattern)
            return self.labeler.label(counter, PhaseSource.SEQUENCER, frame.sequencer_verified)
        if self.phase_tracker is not None:
            return self.phase_tracker.label(counter, frame.pixels)
        return self.labeler.label(counter)

    def _phase_corrected(self, old_offset: int, new_offset: int) -> None:
        """The images moved the offset: counted in phase_errors and said once."""
        self.phase_errors += 1
        self.get_logger().warning(
            f'image check: phase offset {old_offset} contradicts the images, '
            f'corrected to {new_offset}'
        )

    # -- executor thread -------------------------------------------------------------------
    def diagnostics_report(self) -> diagnostics.Report:
        """Frame rate, lost frames, phase errors and reconnects since the last report."""
        now_ns = self.get_clock().now().nanoseconds
        last_ns, last_count = self._last_report
        rate = (self.frames_published - last_count) * 1e9 / max(now_ns - last_ns, 1)
        self._last_report = (now_ns, self.frames_published)
        stream, tracker = self.stream, self.phase_tracker
        stats = stream.statistics if stream is not None else GrabStatistics()
        if not self.active:  # stopped on purpose by a lifecycle transition
            level, message = diagnostics.OK, 'inactive' if stream else 'unconfigured'
        elif not stream.connected:
            level, message = diagnostics.ERROR, 'no camera'
        elif stats.failed or self.labeler.skipped_frames or self.phase_errors:
            level, message = diagnostics.WARN, 'frames lost or phase corrected'
        else:
            level, message = diagnostics.OK, 'grabbing'
        values = {
            'frame_rate_hz': f'{rate:.2f}',
            'frames_published': self.frames_published,
            'failed_grabs': stats.failed,
            'skipped_frames': self.labeler.skipped_frames,
            'grab_timeouts': stats.timeouts,
            'phase_errors': self.phase_errors,
            'phase_verified': self.phase_verified,
            'reconnects': stats.reconnects,
            'last_error': stats.last_error,
            # image_check: verified stretches the images ended, offsets they corrected
            'image_check_contradictions': tracker.contradictions if tracker else 0,
            'image_check_corrections': tracker.corrections if tracker else 0,
            # sequencer: frames whose chunk set index did not follow the sequencer plan
            'sequencer_mismatches': (stream.camera.sequencer_check.mismatches
                                     if stream is not None else 0),
        }
        return diagnostics.Report(level, message, values)

    def frame_rate_report(self) -> diagnostics.Report:
        """Published frames per second against frame_rate_hz while grabbing."""
        report = self.frame_rate.check(self.frames_published)
        if not self.active:
            return diagnostics.Report(diagnostics.OK, 'inactive', report.values)
        return report

    def phase_labels_report(self) -> diagnostics.Report:
        """WARN for a period of contradicted or mostly unverified phase labels.

        Liveness scores no pair of unverified labels while it requires verified ones.
        """
        tracker, stream = self.phase_tracker, self.stream
        contradictions = tracker.contradictions if tracker else 0
        mismatches = stream.camera.sequencer_check.mismatches if stream is not None else 0
        values = {'phase_source': self.config['phase_source'],
                  'unverified_frames': self.unverified_frames}
        unverified = self.unverified_share.check(self.unverified_frames, self.frames_published)
        new_problems = self._new_phase_problems(
            contradictions + self.phase_errors + mismatches)
        if new_problems:
            contradicted = diagnostics.Report(
                diagnostics.WARN, f'{new_problems} phase contradictions or corrections')
        else:
            contradicted = diagnostics.Report(diagnostics.OK, 'phase labels consistent')
        return diagnostics.worst(contradicted, unverified, diagnostics.Report(
            diagnostics.OK, '', values))

    def destroy_node(self) -> None:
        """Stop grabbing and release the camera before the node goes."""
        self.active = False
        self._release_camera()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run camera_node until SIGINT."""
    return run_nodes('camera_node', [CameraNode], args)


if __name__ == '__main__':
    import sys

    sys.exit(main())
