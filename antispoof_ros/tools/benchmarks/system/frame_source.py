"""The benchmark's camera: a cached synthetic bag, loaded once, published in a loop at 120 Hz.

pylon's emulator tops out near 90 frames/s at 1920x1200, so the frames come from a bag
rendered once with the synthetic tools (a live subject under office light looking into the
camera: dlib finds that face in every frame) and kept in memory as ready images, which
``harness.frame_player`` plays: the frame counter and cycle index continue monotonically
across loops, and the header stamp is the frame's nominal capture time (start + k / 120 s on
the host clock), as a camera stamps exposures: exactly 8.33 ms apart, whatever this process's
scheduling jitter, so the nodes pair them as they would a camera's. Latency downstream is
measured from that stamp and so includes any lateness of the publish. Deadlines are absolute:
a late frame does not delay the ones after it. On SIGINT or SIGTERM (or after ``--seconds``)
the loop ends and the counter, stamp, phase and lateness of every frame sent, with the loop's
wall and CPU time, go to ``--stats`` (written atomically). ``--wait-for-subscribers N`` is
for a subscriber that must get every frame (a recorder): the schedule starts once N of them
listen on every phase topic and have acknowledged the first cycle, and the source ends once
they have acknowledged the last frames. ``--rate-hz`` plays at another rate.
"""

from __future__ import annotations

from dataclasses import replace
import os
from pathlib import Path
import shutil
import sys
import time

import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.publisher import Publisher
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
from antispoof_ros.offline.cli import (
    EXIT_BAD_INPUT,
    OneLineArgumentParser,
    fail,
    positive_number,
)
from antispoof_ros.offline.synthetic.protocol import ProtocolConfig, build_protocol
from antispoof_ros.offline.synthetic.scene import Lighting, Pose, Species, Split
from antispoof_ros.tools.harness.frame_player import FramePlayer

FRAME_RATE_HZ = 120.0
BAG_SCENARIO = (Species.LIVE, Lighting.OFFICE, Pose.CAMERA, Split.TEST)
BAG_CYCLES = 60  # 2 s of camera time, 240 frames, 553 MB in memory
PROGRAM = 'antispoof_ros.tools.benchmarks.system.frame_source'
MATCH_POLL_S = 0.05


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
                 rate_hz: float = FRAME_RATE_HZ, count: int | None = None,
                 subscribers: int = 0) -> dict[str, np.ndarray]:
    """Publish ``frames`` cyclically until ``stop`` (or ``count`` slots); the per-frame record.

    Per frame: counter, phase, stamp, lateness; for the loop: ``play_s`` (wall) and ``cpu_s``
    (this whole process, DDS threads included). With ``subscribers``, every frame sent is
    meant to reach that many subscribers (a recorder): see ``_deliver_first_cycle``, and the
    last frames are acknowledged before the loop returns.
    """
    images = {phase: [frame.image for frame in frames if frame.phase == phase]
              for phase in DEFAULT_PATTERN}
    # REP-2003 system default QoS, as camera_node
    player = FramePlayer(node, images, rate_hz, qos=qos_profile_system_default)
    publishers = list(player.publishers.values())
    while not stop.requested and any(publisher.get_subscription_count() < subscribers
                                     for publisher in publishers):
        time.sleep(MATCH_POLL_S)
    print(f'{PROGRAM}: playing at {rate_hz:g} Hz', flush=True)
    started_s, cpu_before_s = time.monotonic(), time.process_time()
    if subscribers > 0:
        _deliver_first_cycle(player, stop)
    player.run(lambda: stop.requested or (count is not None and player.next_counter >= count))
    if subscribers > 0:
        _wait_until_acknowledged(publishers, stop)
    play_s, cpu_s = time.monotonic() - started_s, time.process_time() - cpu_before_s
    sent = player.ledger
    return {'counter': np.array([slot.counter for slot in sent], dtype=np.int64),
            'phase': np.array([slot.phase for slot in sent], dtype=np.uint8),
            'stamp_ns': np.array([slot.stamp_ns for slot in sent], dtype=np.int64),
            'late_ns': np.array([slot.late_ns for slot in sent], dtype=np.int64),
            'play_s': np.float64(play_s), 'cpu_s': np.float64(cpu_s)}


def _deliver_first_cycle(player: FramePlayer, stop: StopRequest) -> None:
    """Play one cycle and hold the schedule until every subscriber has acknowledged it.

    A subscriber the publisher already counts may not know the publisher yet and drops what
    comes first; its acknowledgement of the reliable first cycle shows both sides matched.
    """
    first_cycle = len(player.pattern)
    player.run(lambda: stop.requested or player.next_counter >= first_cycle)
    _wait_until_acknowledged(list(player.publishers.values()), stop)
    player.restart_at(player.next_counter)


def _wait_until_acknowledged(publishers: list[Publisher], stop: StopRequest) -> None:
    """Return once every subscriber has acknowledged every frame published, or on ``stop``."""
    timeout = Duration(seconds=MATCH_POLL_S)
    while not stop.requested and not all(publisher.wait_for_all_acked(timeout)
                                         for publisher in publishers):
        pass


def write_stats(path: Path, stats: dict[str, np.ndarray]) -> None:
    """Save the per-frame record; a reader never sees a half-written file."""
    partial = path.with_name(path.name + '.partial.npz')
    np.savez(partial, **stats)
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    """Publish the bag's frames until SIGINT/SIGTERM or --seconds, then write the statistics."""
    parser = OneLineArgumentParser(prog=PROGRAM, description=__doc__.split('\n')[0])
    parser.add_argument('bag', type=Path, help='rosbag2 with whole flash cycles')
    parser.add_argument('--stats', type=Path, required=True, help='per-frame record (.npz)')
    parser.add_argument('--rate-hz', type=positive_number, default=FRAME_RATE_HZ)
    parser.add_argument('--seconds', type=positive_number,
                        help='stop after this much camera time (default: at SIGINT/SIGTERM)')
    parser.add_argument('--wait-for-subscribers', type=int, default=0, metavar='N',
                        help='hold the first frame until N subscribers listen on every topic')
    args = parser.parse_args(argv)
    stop = StopRequest().install()
    try:
        frames = load_frames(args.bag)
    except FrameSourceError as error:
        return fail(PROGRAM, error, EXIT_BAD_INPUT)
    count = None if args.seconds is None else round(args.seconds * args.rate_hz)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('system_benchmark_frame_source')
    try:
        stats = publish_loop(node, frames, stop, args.rate_hz, count, args.wait_for_subscribers)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    write_stats(args.stats, stats)
    return 0


if __name__ == '__main__':
    sys.exit(main())
