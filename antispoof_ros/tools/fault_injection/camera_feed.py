"""camera_node in this process on pylon's emulated camera, replaying the scene's frames."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from functools import partial
from pathlib import Path

from rclpy.context import Context
import rclpy.logging
from rclpy.parameter import Parameter

from antispoof_ros.camera.phase_labels import counter_label
from antispoof_ros.msg import FlashFrame
from antispoof_ros.nodes.camera_node import CameraNode
from antispoof_ros.nodes.image_conversion import image_to_array
from antispoof_ros.nodes.messages import stamp_nanoseconds
from antispoof_ros.nodes.topics import flash_frame_topic
from antispoof_ros.offline.synthetic.emulator_folder import write_emulator_frames
from antispoof_ros.offline.synthetic.phase_coded_images import decode_phase
from antispoof_ros.tools.fault_injection.errors import FaultInjectionError
from antispoof_ros.tools.fault_injection.ledger import Ledger
from antispoof_ros.tools.fault_injection.limits import CAMERA_RATE_HZ, DIAGNOSTICS_PERIOD_S
from antispoof_ros.tools.fault_injection.observer import Observer
from antispoof_ros.tools.fault_injection.scene import FRAME_HEIGHT, FRAME_WIDTH, PATTERN, Scene


def check_camera_frame(ledger: Ledger, frame: FlashFrame) -> None:
    """Enter a frame of camera_node in the ledger; its labels must match counter and pixels."""
    counter = int(frame.frame_counter)
    expected = counter_label(counter, PATTERN)
    if (frame.phase, frame.position_in_cycle, frame.cycle_index) != (
            expected.phase, expected.position_in_cycle, expected.cycle_index) or (
            decode_phase(image_to_array(frame.image)) != frame.phase):
        ledger.add_mislabelled_frame(counter)
    else:
        ledger.add_frame(counter, int(frame.phase), stamp_nanoseconds(frame.header.stamp))


@contextlib.contextmanager
def camera_node(context: Context, observer: Observer, scene: Scene, ledger: Ledger,
                folder: Path) -> Iterator[CameraNode]:
    """camera_node spun by the observer's executor; every frame it publishes is checked."""
    try:
        write_emulator_frames(folder, ((phase, scene.frames[phase]) for phase in PATTERN))
    except OSError as error:
        raise FaultInjectionError(str(error)) from None
    parameters = {'emulated_cameras': 1, 'emulator_image_dir': str(folder),
                  'width': FRAME_WIDTH, 'height': FRAME_HEIGHT, 'frame_rate_hz': CAMERA_RATE_HZ,
                  'retry_delay_s': 0.1,
                  'diagnostics_period_s': DIAGNOSTICS_PERIOD_S}
    # its parameter dump and reconnect messages would interleave with the report table
    rclpy.logging.set_logger_level('camera_node', rclpy.logging.LoggingSeverity.FATAL)
    camera = CameraNode(context=context, parameter_overrides=[
        Parameter(name, value=value) for name, value in parameters.items()])
    subscriptions = [observer.node.create_subscription(
        FlashFrame, flash_frame_topic(phase), partial(check_camera_frame, ledger), 100)
        for phase in PATTERN]
    observer.executor.add_node(camera)
    try:
        yield camera
    finally:
        observer.executor.remove_node(camera)
        camera.destroy_node()
        for subscription in subscriptions:
            observer.node.destroy_subscription(subscription)
