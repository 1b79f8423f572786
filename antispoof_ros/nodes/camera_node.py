"""camera_node: Basler NIR frames published with their flash phase.

Every frame is published twice per phase: as ``FlashFrame`` (pixels + in-band phase stamp,
for the pipeline) on ``camera/<phase>/flash_frame`` and as a plain ``sensor_msgs/Image`` on
``camera/<phase>/image_raw`` for rqt/rviz (``publish_images``). Grabbing runs on its own
thread and publishes directly; the executor only serves parameters and diagnostics.
"""

from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import qos_profile_system_default
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from antispoof_ros.camera.clock import ExposureClock
from antispoof_ros.camera.phase_labels import (
    FrameCounterLabeler,
    ImagePhaseCheck,
    PhaseLabel,
    PhaseSource,
)
from antispoof_ros.camera.pylon_source import (
    PIXEL_FORMATS,
    CameraConfigError,
    CameraInfo,
    CameraSettings,
    CameraStream,
    GrabbedFrame,
)
from antispoof_ros.flash import DEFAULT_PATTERN, parse_pattern
from antispoof_ros.msg import FlashFrame
from antispoof_ros.nodes import diagnostics
from antispoof_ros.nodes.entrypoint import run_nodes
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.messages import flash_frame_message, ros_time
from antispoof_ros.nodes.parameters import ConfigError, Param, declare_parameters, log_parameters
from antispoof_ros.nodes.topics import flash_frame_topic, image_topic

PHASE_SOURCES = {
    'sequencer': PhaseSource.SEQUENCER,
    'frame_counter': PhaseSource.FRAME_COUNTER,
    'image_check': PhaseSource.IMAGE_CHECK,
}

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
    Param('flash_pattern', [p.label for p in DEFAULT_PATTERN],
          'Flash phases of one cycle, in firing order (thesis figure 3.1).'),
    Param('phase_source', 'frame_counter',
          'sequencer: chunk sequencer set index; frame_counter: (counter + offset) mod N; '
          'image_check: frame counter verified and corrected by image statistics.',
          choices=tuple(PHASE_SOURCES)),
    Param('phase_offset', 0, 'Added to the frame counter before taking it modulo the pattern.',
          min_value=0, max_value=1000),
    Param('frame_id', 'nir_camera_optical_frame', 'header.frame_id of every published frame.'),
    Param('publish_images', True, 'Also publish plain Image topics per phase (rqt/rviz).'),
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


class CameraNode(Node):
    """Publishes one FlashFrame and one Image stream per flash phase."""

    def __init__(self, **node_options: object) -> None:
        super().__init__('camera_node', **node_options)
        self.config = config = declare_parameters(self, PARAMETERS)
        try:
            self.pattern = parse_pattern(config['flash_pattern'])
            self.phase_check = (
                ImagePhaseCheck(self.pattern) if config['phase_source'] == 'image_check' else None
            )
        except ValueError as error:
            raise ConfigError(f"parameter 'flash_pattern': {error}") from None
        log_parameters(self, config)
        self.phase_source = PHASE_SOURCES[config['phase_source']]
        self.labeler = FrameCounterLabeler(self.pattern, config['phase_offset'])
        self.clock = ExposureClock()
        self.exposure_ns = int(config['exposure_us'] * 1000)
        self.phase_verified = False
        self.phase_errors = 0
        self.frames_published = 0
        self._last_report = (self.get_clock().now().nanoseconds, 0)

        qos = qos_profile_system_default  # REP-2003: drivers publish with system default QoS
        self.frame_publishers = {
            phase: self.create_publisher(FlashFrame, flash_frame_topic(phase), qos)
            for phase in self.pattern
        }
        self.image_publishers = {
            phase: self.create_publisher(Image, image_topic(phase), qos)
            for phase in self.pattern
        } if config['publish_images'] else {}

        self.stream = CameraStream(
            self._camera_settings(),
            on_frame=self.on_frame,
            on_event=self._log_event,
            on_stream_start=self.on_stream_start,
            on_lost_frame=self.labeler.counter,
            grab_timeout_ms=config['grab_timeout_ms'],
            retry_delay_s=config['retry_delay_s'],
            retry_max_delay_s=config['retry_max_delay_s'],
        )
        try:
            self.stream.open_now()
        except CameraConfigError as error:
            self.stream.stop()
            raise ConfigError(str(error)) from None
        self.stream.start()
        self.diagnostics = diagnostics.Publisher(
            self, 'camera', config['diagnostics_period_s'], self.diagnostics_report)

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
            use_sequencer=self.phase_source == PhaseSource.SEQUENCER,
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
        self.clock.reset()
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
        stamp = ros_time(self.clock.stamp_ns(frame.camera_tick, frame.host_arrival_ns,
                                              self.exposure_ns))
        header = Header(stamp=stamp, frame_id=self.config['frame_id'])
        image = array_to_image(frame.pixels, self.stream.camera.encoding, header)
        self.frame_publishers[label.phase].publish(flash_frame_message(label, header, image))
        # Like image_transport: the viewer stream costs a serialisation only when watched.
        viewer = self.image_publishers.get(label.phase)
        if viewer is not None and viewer.get_subscription_count() > 0:
            viewer.publish(image)
        self.frames_published += 1

    def _label(self, counter: int, frame: GrabbedFrame) -> PhaseLabel:
        if self.phase_source == PhaseSource.SEQUENCER and frame.sequencer_set is not None:
            position = frame.sequencer_set % len(self.pattern)
            self.labeler.offset = (position - counter) % len(self.pattern)
            return self.labeler.label(counter, PhaseSource.SEQUENCER, verified=True)
        if self.phase_check is not None:
            implied_offset = self.phase_check.add(counter, frame.pixels)
            if implied_offset is not None:
                if implied_offset != self.labeler.offset:
                    self.phase_errors += 1
                    self.get_logger().warning(
                        f'image check: phase offset {self.labeler.offset} contradicts the '
                        f'images, corrected to {implied_offset}'
                    )
                    self.labeler.offset = implied_offset
                self.phase_verified = True
            return self.labeler.label(counter, PhaseSource.IMAGE_CHECK, self.phase_verified)
        return self.labeler.label(counter)

    # -- executor thread -------------------------------------------------------------------
    def diagnostics_report(self) -> diagnostics.Report:
        """Frame rate, lost frames, phase errors and reconnects since the last report."""
        now_ns = self.get_clock().now().nanoseconds
        last_ns, last_count = self._last_report
        rate = (self.frames_published - last_count) * 1e9 / max(now_ns - last_ns, 1)
        self._last_report = (now_ns, self.frames_published)
        stats = self.stream.statistics
        if not self.stream.connected:
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
        }
        info = self.stream.camera.info
        return diagnostics.Report(level, message, values,
                                  hardware_id=info.serial_number if info else '')

    def destroy_node(self) -> None:
        """Stop grabbing and release the camera before the node goes."""
        self.stream.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run camera_node until SIGINT."""
    return run_nodes('camera_node', [CameraNode], args)


if __name__ == '__main__':
    import sys

    sys.exit(main())
