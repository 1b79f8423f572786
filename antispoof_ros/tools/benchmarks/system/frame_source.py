"""The benchmark's camera: a cached synthetic bag, loaded once, published in a loop at 120 Hz.

pylon's emulator tops out near 90 frames/s at 1920x1200, so the frames come from a bag
rendered once with the synthetic tools (a live subject under office light looking into the
camera: dlib finds that face in every frame) and kept in memory as ready images, which
``harness.frame_player`` plays: the frame counter and cycle index continue monotonically
across loops, and the header stamp is the frame's nominal capture time (start + k / 120 s on
the host clock), as a camera stamps exposures: exactly 8.33 ms apart, whatever this process's
scheduling jitter, so the nodes pair them as they would a camera's. Latency downstream is
measured from that stamp and so includes any lateness of the publish. Deadlines are absolute:
a late frame does not delay the ones after it. On SIGINT or SIGTERM the loop ends and the
counter, stamp, phase and lateness of every frame sent go to ``--stats`` (written atomically).
"""

from __future__ import annotations

from dataclasses import replace
import os
from pathlib import Path
import shutil
import sys

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_system_default
from rclpy.serialization import deserialize_message
from rclpy.signals import SignalHandlerOptions
from rosbags.rosbag2 import Reader

from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.msg import FlashFrame
from antispoof_ros.nodes.entrypoint import StopRequest
from antispoof_ros.nodes.topics import flash_frame_topic
from antispoof_ros.offline.bagtools.synthetic_bag import write_synthetic_bag
from antispoof_ros.offline.bagtools.writer import partial_path
from antispoof_ros.offline.cli import EXIT_BAD_INPUT, OneLineArgumentParser, fail
from antispoof_ros.offline.synthetic.protocol import ProtocolConfig, build_protocol
from antispoof_ros.offline.synthetic.scene import Lighting, Pose, Species, Split
from antispoof_ros.tools.harness.frame_player import FramePlayer

FRAME_RATE_HZ = 120.0
BAG_SCENARIO = (Species.LIVE, Lighting.OFFICE, Pose.CAMERA, Split.TEST)
BAG_CYCLES = 60  # 2 s of camera time, 240 frames, 553 MB in memory
PROGRAM = 'antispoof_ros.tools.benchmarks.system.frame_source'


class FrameSourceError(RuntimeError):
    """The frames cannot be prepared; the message is a complete one-line reason."""


def cached_bag(cache_dir: Path, cycles: int = BAG_CYCLES, progress: bool = True) -> Path:
    """The benchmark bag under ``cache_dir``, rendered on first use (about 40 s for 60 cycles)."""
    spec = next(s for s in build_protocol(ProtocolConfig(seed=0)).scenarios
                if (s.species, s.lighting, s.pose, s.split) == BAG_SCENARIO)
    bag = cache_dir / f'{spec.scenario_id}_{cycles}cycles_continuous'
    if bag.is_dir():
        return bag
    cache_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(partial_path(bag), ignore_errors=True)  # left by an interrupted render
    # one continuous take that loops without a jump: a head that moved to a new random place
    # in every cycle would cost the tracker a full detection on 10 % of the front frames
    write_synthetic_bag(bag, [replace(spec, n_cycles=cycles)], cycles, progress=progress,
                        continuous=True)
    return bag


def load_frames(bag: Path) -> list[FlashFrame]:
    """Every FlashFrame of ``bag`` in recording order; whole flash cycles, dark first."""
    topics = {f'/{flash_frame_topic(phase)}' for phase in Phase}
    try:
        with Reader(bag) as reader:
            connections = [c for c in reader.connections if c.topic in topics]
            frames = [deserialize_message(bytes(data), FlashFrame)
                      for _, _, data in reader.messages(connections=connections)]
    except (OSError, ValueError, KeyError) as error:
        raise FrameSourceError(f'{bag}: not a readable bag ({error})') from None
    phases = tuple(Phase(frame.phase) for frame in frames)
    cycles = len(frames) // len(DEFAULT_PATTERN)
    if cycles == 0 or phases != DEFAULT_PATTERN * cycles:
        pattern = '/'.join(phase.label for phase in DEFAULT_PATTERN)
        raise FrameSourceError(f'{bag}: expected whole {pattern} cycles of FlashFrames, '
                               f'found {len(frames)} frames')
    return frames


def publish_loop(node: Node, frames: list[FlashFrame], stop: StopRequest,
                 rate_hz: float = FRAME_RATE_HZ) -> dict[str, np.ndarray]:
    """Publish ``frames`` cyclically until ``stop``; per frame: counter, phase, stamp, lateness."""
    images = {phase: [frame.image for frame in frames if frame.phase == phase]
              for phase in DEFAULT_PATTERN}
    # REP-2003 system default QoS, as camera_node
    player = FramePlayer(node, images, rate_hz, qos=qos_profile_system_default)
    player.run(lambda: stop.requested)
    sent = player.ledger
    return {'counter': np.array([slot.counter for slot in sent], dtype=np.int64),
            'phase': np.array([slot.phase for slot in sent], dtype=np.uint8),
            'stamp_ns': np.array([slot.stamp_ns for slot in sent], dtype=np.int64),
            'late_ns': np.array([slot.late_ns for slot in sent], dtype=np.int64)}


def write_stats(path: Path, stats: dict[str, np.ndarray]) -> None:
    """Save the per-frame record; a reader never sees a half-written file."""
    partial = path.with_name(path.name + '.partial.npz')
    np.savez(partial, **stats)
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    """Publish the bag's frames at 120 Hz until SIGINT/SIGTERM, then write the statistics."""
    parser = OneLineArgumentParser(prog=PROGRAM, description=__doc__.split('\n')[0])
    parser.add_argument('bag', type=Path, help='rosbag2 with whole flash cycles')
    parser.add_argument('--stats', type=Path, required=True, help='per-frame record (.npz)')
    args = parser.parse_args(argv)
    stop = StopRequest().install()
    try:
        frames = load_frames(args.bag)
    except FrameSourceError as error:
        return fail(PROGRAM, error, EXIT_BAD_INPUT)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('system_benchmark_frame_source')
    try:
        stats = publish_loop(node, frames, stop)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    write_stats(args.stats, stats)
    return 0


if __name__ == '__main__':
    sys.exit(main())
