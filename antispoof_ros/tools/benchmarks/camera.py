"""Camera benchmark: emulated Basler camera at full resolution -> subscriber in another process.

Starts camera_node as its own process on pylon's emulated camera (1920x1200 Mono8, fed
with phase-coded BMP frames), subscribes here to every phase's FlashFrame topic over
shared-memory DDS, and reports the publish rate against the camera's delivery rate,
frames lost between camera and subscriber (counter gaps), mislabelled phases, and the
camera node's CPU use (emulator included: it runs inside the node's process). It also
times the ``image_check`` phase source's work on one 1920x1200 frame (``PhaseTracker``:
the frame's statistics and the check of its flash cycle), in this process.
"""

from __future__ import annotations

from pathlib import Path
import sys
import tempfile
import time

import numpy as np

from antispoof_ros.camera.phase_labels import FrameCounterLabeler, PhaseTracker
from antispoof_ros.flash import DEFAULT_PATTERN
from antispoof_ros.offline.cli import EXIT_FAILED, OneLineArgumentParser, fail
from antispoof_ros.offline.synthetic.phase_coded_images import (
    decode_phase,
    phase_coded_frame,
    write_phase_coded_folder,
)
from antispoof_ros.tools.harness.local_dds import apply_local_dds_environment
from antispoof_ros.tools.harness.processes import (
    NodeProcess,
    NodeProcessError,
    NodeProcesses,
    log_folder,
)

PROGRAM = 'antispoof_ros.tools.benchmarks.camera'
STARTUP_TIMEOUT_S = 60.0
# the emulated camera has no sequencer, so phase_source 'sequencer' cannot run here
PHASE_SOURCES = ('image_check', 'frame_counter')


def image_check_cost_ms(frames: int, width: int = 1920, height: int = 1200) -> np.ndarray:
    """Wall and thread CPU time (ms, shape (frames, 2)) of ``PhaseTracker.label`` per frame.

    The CPU time leaves out the time the thread waited for a core, which dominates the
    wall time's tail on a loaded machine.
    """
    images = [phase_coded_frame(phase, width, height, seed=index)
              for index, phase in enumerate(DEFAULT_PATTERN * 2)]
    tracker = PhaseTracker(FrameCounterLabeler(DEFAULT_PATTERN))
    times_ms = np.empty((frames, 2))
    for counter in range(frames):
        pixels = images[counter % len(images)]
        wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
        label = tracker.label(counter, pixels)
        times_ms[counter] = (time.perf_counter_ns() - wall, time.thread_time_ns() - cpu)
        if counter >= len(DEFAULT_PATTERN) and not label.verified:
            raise NodeProcessError(f'image_check did not verify frame {counter}')
    return times_ms / 1e6


def bare_emulator_cpu(folder: Path, seconds: float) -> tuple[float, float]:
    """(frames/s, % of one core) of a bare pypylon grab loop on the same emulated camera.

    The emulator renders frames inside the grabbing process, so this is the part of the
    camera node's CPU that a real camera would not cost.
    """
    code = f"""
import os, time
from pypylon import pylon
from antispoof_ros.camera.pylon_source import CameraSettings, GrabStatistics, PylonCamera
camera = PylonCamera(CameraSettings(emulated_cameras=1, emulator_image_dir={str(folder)!r}))
camera.open(); camera.start(); stats = GrabStatistics()
start, cpu = time.monotonic(), time.process_time()
while time.monotonic() - start < {seconds}:
    camera.grab(1000, stats)
wall = time.monotonic() - start
print('grab loop:', stats.grabbed / wall, 100 * (time.process_time() - cpu) / wall)
camera.close()
"""
    grab_loop = NodeProcess('bare_emulator_grab_loop', [sys.executable, '-c', code])
    if grab_loop.wait(timeout=seconds + STARTUP_TIMEOUT_S) != 0:
        raise NodeProcessError(grab_loop.problem())
    figures = next(line for line in grab_loop.lines if line.startswith('grab loop:'))
    rate, cpu_percent = figures.split()[2:]
    return float(rate), float(cpu_percent)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = OneLineArgumentParser(prog=PROGRAM, description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=float, default=30.0, help='measurement window')
    parser.add_argument('--warmup', type=float, default=3.0, help='ignored start-up time')
    parser.add_argument('--phase-source', choices=PHASE_SOURCES, default='image_check',
                        help="camera_node's phase_source parameter")
    parser.add_argument('--check-frames', type=int, default=2000,
                        help='frames to time image_check on')
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0 or args.check_frames < 1:
        parser.error('--seconds and --check-frames must be positive, --warmup not negative')
    apply_local_dds_environment()
    try:
        check_ms = image_check_cost_ms(args.check_frames)
        received, wall, cpu, bare_rate, bare_cpu = _measure(args.seconds, args.warmup,
                                                            args.phase_source)
    except NodeProcessError as error:
        return fail(PROGRAM, error, EXIT_FAILED)
    if not received:
        return fail(PROGRAM, 'no frame received', EXIT_FAILED)
    counters = sorted(counter for counter, _, _ in received)
    span = counters[-1] - counters[0] + 1
    print(f'window: {wall:.1f} s, 1920x1200 Mono8, pylon emulator, subscriber in another process, '
          f'phase source {args.phase_source}')
    print(f'camera delivered (counter span / s): {span / wall:7.2f} frames/s')
    print(f'received by subscriber:              {len(received) / wall:7.2f} frames/s')
    print(f'frames lost camera -> subscriber:    {span - len(set(counters))}')
    print(f'mislabelled phases:                  {sum(not ok for _, _, ok in received)}')
    node_cpu = 100 * cpu / wall
    print(f'camera_node CPU (incl. emulator):    {node_cpu:7.1f} % of one core')
    print(f'bare pylon emulator grab loop:       {bare_cpu:7.1f} % of one core '
          f'at {bare_rate:.1f} frames/s')
    print(f'camera_node own work (difference):   {node_cpu - bare_cpu:7.1f} % of one core')
    wall_ms, cpu_ms = np.percentile(check_ms, [50, 99], axis=0).T
    print(f'image_check per 1920x1200 frame:     p50 {wall_ms[0]:.3f} ms, p99 {wall_ms[1]:.3f} ms '
          f'wall; p50 {cpu_ms[0]:.3f} ms, p99 {cpu_ms[1]:.3f} ms CPU ({len(check_ms)} frames)')
    print(f'image_check at 120 Hz (mean CPU):    {check_ms[:, 1].mean() * 12:7.1f} % of one core')
    return 0


def _measure(seconds: float, warmup_s: float, phase_source: str
             ) -> tuple[list[tuple[int, int, bool]], float, float, float, float]:
    """Frames received (counter, phase, label right), window s, camera CPU s, bare figures."""
    import rclpy  # after the DDS environment is set
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from antispoof_ros.msg import FlashFrame
    from antispoof_ros.nodes.image_conversion import image_to_array
    from antispoof_ros.nodes.topics import flash_frame_topic

    with (tempfile.TemporaryDirectory(prefix='camera_benchmark_') as images_folder,
          log_folder('camera_benchmark_logs_') as logs, NodeProcesses(logs) as processes):
        images = Path(images_folder)
        write_phase_coded_folder(images, DEFAULT_PATTERN, cycles=2)
        bare_rate, bare_cpu = bare_emulator_cpu(images, min(seconds, 10.0))
        camera = processes.start('camera_node', [
            sys.executable, '-m', 'antispoof_ros.nodes.camera_node', '--ros-args',
            '-p', 'emulated_cameras:=1', '-p', f'emulator_image_dir:={images}',
            '-p', f'phase_source:={phase_source}'])
        rclpy.init()
        node = rclpy.create_node('camera_benchmark')
        received: list[tuple[int, int, bool]] = []
        measuring = False

        def on_frame(msg: FlashFrame) -> None:
            if measuring:
                pixels = image_to_array(msg.image)
                received.append((msg.frame_counter, msg.phase, decode_phase(pixels) == msg.phase))

        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for phase in DEFAULT_PATTERN:
            node.create_subscription(FlashFrame, flash_frame_topic(phase), on_frame, qos)
        executor = SingleThreadedExecutor()
        executor.add_node(node)

        def spin_for(duration_s: float) -> None:
            end = time.monotonic() + duration_s
            while time.monotonic() < end:
                processes.check()
                executor.spin_once(timeout_sec=0.05)

        try:
            spin_for(warmup_s)
            measuring = True
            cpu_start, wall_start = camera.cpu_seconds(), time.monotonic()
            spin_for(seconds)
            cpu = camera.cpu_seconds() - cpu_start
            wall = time.monotonic() - wall_start
        finally:
            executor.shutdown()
            node.destroy_node()
            rclpy.try_shutdown()
    return received, wall, cpu, bare_rate, bare_cpu


if __name__ == '__main__':
    sys.exit(main())
