"""Latency and sustained rate of the landmark node itself, fed 1920x1200 front frames at 30 Hz.

``landmarks.benchmark`` times the tracker alone on frames fed back to back. This runs the
``landmark_node`` executable as its own process pinned to one core (``taskset`` before it
starts, inherited by all its threads, DDS included), plays it the front slots of the camera's
cycle (``harness.frame_player``) over the shared-memory-only DDS profile at the front-frame
rate (the player kept off that core where the machine has another), and times every frame
from publish to the ``EyeCorners`` answer: image conversion, tracking, message building and
both DDS hops.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import os
from pathlib import Path
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image
from tqdm import tqdm

from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.landmarks.tracker import TrackerConfig
from antispoof_ros.msg import EyeCorners
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.topics import EYE_CORNERS, flash_frame_topic
from antispoof_ros.offline.cli import OneLineArgumentParser, fail
from antispoof_ros.offline.landmark_training.samples import DEFAULT_ANNOTATIONS
from antispoof_ros.tools.benchmarks.landmarks import moving_face_frames, percentiles
from antispoof_ros.tools.harness.frame_player import FramePlayer
from antispoof_ros.tools.harness.local_dds import apply_local_dds_environment
from antispoof_ros.tools.harness.processes import (
    NodeProcess,
    NodeProcessError,
    NodeProcesses,
    log_folder,
)

PROGRAM = 'antispoof_ros.tools.benchmarks.landmark_node'
FRONT_RATE_HZ = 30.0  # 120 Hz camera, one front frame per 4-frame cycle
STARTUP_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 2.0
METHOD_NAMES = {EyeCorners.METHOD_DETECTED: 'detected', EyeCorners.METHOD_TRACKED: 'tracked'}
STATUS_NAMES = {EyeCorners.STATUS_NO_FACE: 'no_face', EyeCorners.STATUS_BAD_INPUT: 'bad_input'}


class BenchmarkError(RuntimeError):
    """The benchmark cannot run; the message is a complete one-line reason."""


@dataclass
class Arguments:
    """Validated command line."""

    seconds: float
    rate_hz: float
    core: int
    scale: float
    min_face_px: int
    redetect_every: int
    annotations: Path
    json: Path | None


def parse_args(argv: list[str] | None) -> Arguments:
    """Command line of the benchmark; argparse exits with one line on bad values."""
    parser = OneLineArgumentParser(prog=PROGRAM, description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=float, default=120.0, help='measured duration')
    parser.add_argument('--rate-hz', type=float, default=FRONT_RATE_HZ,
                        help='front frames per second sent to the node')
    parser.add_argument('--core', type=int, default=0, help='CPU core the node is pinned to')
    parser.add_argument('--scale', type=float, default=4.0,
                        help='photo scale in the frame (4: face box ~360 px)')
    parser.add_argument('--min-face-px', type=int, default=TrackerConfig.min_face_px)
    parser.add_argument('--redetect-every', type=int, default=TrackerConfig.redetect_every)
    parser.add_argument('--annotations', type=Path, default=DEFAULT_ANNOTATIONS)
    parser.add_argument('--json', type=Path, help='also write the figures to this file')
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rate_hz <= 0 or args.scale <= 0:
        parser.error('--seconds, --rate-hz and --scale must be > 0')
    if args.core not in os.sched_getaffinity(0):
        parser.error(f'--core {args.core} is not available here '
                     f'(available: {sorted(os.sched_getaffinity(0))})')
    return Arguments(**vars(args))


def node_command(args: Arguments) -> list[str]:
    """landmark_node confined to ``args.core`` from its first instruction (taskset)."""
    return ['taskset', '--cpu-list', str(args.core),
            sys.executable, '-m', 'antispoof_ros.nodes.landmark_node', '--ros-args',
            '-p', f'min_face_px:={args.min_face_px}',
            '-p', f'redetect_every:={args.redetect_every}']


class AnswerTimer:
    """Times each front frame the player sent to its EyeCorners answer, by outcome."""

    def __init__(self, node: Node, player: FramePlayer) -> None:
        self.node = node
        self.player = player
        node.create_subscription(EyeCorners, EYE_CORNERS, self.on_answer, 100)
        node.create_subscription(DiagnosticArray, '/diagnostics', self.on_diagnostics, 10)
        #: (p50, p99) of the node's own processing time, one pair per diagnostics period
        self.node_latency_ms: list[tuple[float, float]] = []
        self.latencies_ms: dict[str, list[float]] = {'detected': [], 'tracked': [],
                                                     'no_face': [], 'bad_input': []}
        self._sent_ns: dict[int, int] = {}  # frame counter -> when it went out, unanswered
        self._ledger_read = 0

    def on_answer(self, answer: EyeCorners) -> None:
        """Record the latency of one answer under its outcome."""
        for slot in self.player.ledger[self._ledger_read:]:
            self._sent_ns[slot.counter] = slot.sent_ns
        self._ledger_read = len(self.player.ledger)
        sent_ns = self._sent_ns.pop(answer.frame_counter, None)
        if sent_ns is None:
            return  # not a frame of this run
        outcome = (METHOD_NAMES[answer.method] if answer.status == EyeCorners.STATUS_OK
                   else STATUS_NAMES[answer.status])
        self.latencies_ms[outcome].append((time.monotonic_ns() - sent_ns) / 1e6)

    def on_diagnostics(self, message: DiagnosticArray) -> None:
        """Keep the node's in-node latency figures of each busy period."""
        for status in message.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name == 'landmark_node: landmarks' and values['latency_p50_ms'] != 'nan':
                self.node_latency_ms.append(
                    (float(values['latency_p50_ms']), float(values['latency_p99_ms'])))

    @property
    def sent(self) -> int:
        """Frames sent so far."""
        return len(self.player.ledger)

    @property
    def answered(self) -> int:
        """Frames answered so far."""
        return sum(len(values) for values in self.latencies_ms.values())


def wait_for_node(executor: SingleThreadedExecutor, timer: AnswerTimer,
                  process: NodeProcess) -> None:
    """Until the node is subscribed to the frames and its answers reach us."""
    frames = timer.player.publishers[flash_frame_topic(Phase.FRONT)]

    def ready() -> bool:
        executor.spin_once(timeout_sec=0.05)
        return (frames.get_subscription_count() > 0
                and timer.node.count_publishers(EYE_CORNERS) > 0)

    process.wait_ready(ready, STARTUP_TIMEOUT_S)


def pump_frames(executor: SingleThreadedExecutor, timer: AnswerTimer, process: NodeProcess,
                seconds: float) -> float:
    """Send frames on schedule for ``seconds``, then collect late answers; the wall time."""
    start = time.perf_counter()
    with tqdm(total=round(seconds), desc='node benchmark', unit='s') as progress:
        while (elapsed := time.perf_counter() - start) < seconds:
            if problem := process.problem():
                raise BenchmarkError(problem)
            executor.spin_once(timeout_sec=timer.player.play_due())
            progress.update(int(elapsed) - progress.n)
    wall = time.perf_counter() - start
    drain_until = time.perf_counter() + DRAIN_TIMEOUT_S
    while timer.answered < timer.sent and time.perf_counter() < drain_until:
        executor.spin_once(timeout_sec=0.05)
    return wall


def report(timer: AnswerTimer, wall_s: float, cpu_s: float, args: Arguments) -> dict:
    """Figures of one run, and whether the node kept up with the rate."""
    all_latencies = [ms for values in timer.latencies_ms.values() for ms in values]
    overall = percentiles(all_latencies)
    lost = timer.sent - timer.answered
    in_node = np.array(timer.node_latency_ms or [(np.nan, np.nan)])
    return {
        'sent': timer.sent,
        'answered': timer.answered,
        'lost': lost,
        'send_rate_hz': timer.sent / wall_s,
        'node_cpu_fraction_of_one_core': cpu_s / wall_s,
        'latency': {'all': overall} | {k: percentiles(v) for k, v in timer.latencies_ms.items()},
        # from the node's /diagnostics: frame received -> answer published, per 1 s period
        'in_node_p50_ms_median': float(np.median(in_node[:, 0])),
        'in_node_p99_ms_max': float(np.max(in_node[:, 1])),
        'sustained': lost == 0 and overall['p99_ms'] < 1e3 / args.rate_hz,
        'config': {'seconds': args.seconds, 'rate_hz': args.rate_hz, 'node_core': args.core,
                   'scale': args.scale, 'min_face_px': args.min_face_px,
                   'redetect_every': args.redetect_every, 'frame_shape': [1200, 1920]},
    }


def print_report(figures: dict, args: Arguments) -> None:
    """Human-readable summary of ``report``."""
    print(f"{figures['sent']} frames sent at {figures['send_rate_hz']:.1f} Hz, "
          f"{figures['answered']} answered, {figures['lost']} lost; node on core {args.core} "
          f"used {100 * figures['node_cpu_fraction_of_one_core']:.0f} % of it")
    for key, values in figures['latency'].items():
        print(f"  {key:>9}: n={values['count']:6d}  p50 {values['p50_ms']:6.2f} ms  "
              f"p99 {values['p99_ms']:6.2f} ms")
    print(f"  in-node processing (node's /diagnostics, per 1 s period): median p50 "
          f"{figures['in_node_p50_ms_median']:.2f} ms, worst p99 "
          f"{figures['in_node_p99_ms_max']:.2f} ms")
    verdict = 'sustained' if figures['sustained'] else 'NOT sustained'
    print(f'{args.rate_hz:.0f} Hz {verdict} (no frame lost, p99 below the frame period)')


def run(args: Arguments) -> dict:
    """Start the node, play frames to it and return the figures."""
    apply_local_dds_environment()  # inherited by the node process
    images = [array_to_image(pixels, 'mono8')
              for pixels in moving_face_frames(16, args.scale, args.annotations)]
    with log_folder('landmark_node_benchmark_') as folder, NodeProcesses(folder) as processes:
        process = processes.start('landmark_node', node_command(args))
        others = os.sched_getaffinity(0) - {args.core}
        if others:
            os.sched_setaffinity(0, others)
        timer, wall, cpu = _measure(args, images, process)
    return report(timer, wall, cpu, args)


def _measure(args: Arguments, images: list[Image],
             process: NodeProcess) -> tuple[AnswerTimer, float, float]:
    """The played run: the answers, its wall time and the node's CPU seconds meanwhile."""
    rclpy.init()
    node = rclpy.create_node('landmark_node_benchmark')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        # the front slot of each cycle only: front frames at args.rate_hz
        player = FramePlayer(node, {Phase.FRONT: images},
                             rate_hz=args.rate_hz * len(DEFAULT_PATTERN))
        timer = AnswerTimer(node, player)
        wait_for_node(executor, timer, process)
        cpu_before = process.cpu_seconds()
        wall = pump_frames(executor, timer, process, args.seconds)
        return timer, wall, process.cpu_seconds() - cpu_before
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


def main(argv: list[str] | None = None) -> int:
    """Measure the node's latency per method and whether it sustains the front-frame rate."""
    args = parse_args(argv)
    try:
        figures = run(args)
    except (BenchmarkError, NodeProcessError, OSError, ValueError) as error:
        return fail(PROGRAM, error)
    print_report(figures, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
