"""Recorder benchmark: does ``bagtools.record`` keep up with the camera, at what cost.

Writes a source bag of 1920x1200 mono8 flash frames (synthetic NIR faces) at the camera
rate, replays it at recorded speed (``bagtools.replay --rate 1.0``) into the recorder, both
started as child processes on shared-memory-only DDS. The replay is lossless and slows
down instead of dropping when the recorder does not acknowledge, so keeping up means: the
replay took the bag's duration, and the recorded frame counters have no gap. Reported:
frames sent and written, counter gaps, the replay's frame rate, MB/s written, bag size and
its ratio to the uncompressed source, and the recorder's CPU share (of one core).

    python -m antispoof_ros.tools.benchmarks.record [--seconds 60] [--compression none|zstd]
        [--rate-hz 120] [--work DIR]
"""

from __future__ import annotations

from pathlib import Path
import re
import shutil
import sys
import tempfile
import time

from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader

from antispoof_ros.flash import DEFAULT_PATTERN
from antispoof_ros.msg import FlashFrame
from antispoof_ros.nodes.image_conversion import image_to_array
from antispoof_ros.offline.bagtools.writer import COMPRESSIONS, FlashBagWriter, partial_path
from antispoof_ros.offline.cli import EXIT_FAILED, OneLineArgumentParser, fail, positive_number
from antispoof_ros.tools.harness.local_dds import apply_local_dds_environment
from antispoof_ros.tools.harness.processes import NodeProcessError, NodeProcesses

PROGRAM = 'antispoof_ros.tools.benchmarks.record'
LABELS = {'subject': 'benchmark', 'species': 'live', 'lighting': 'office'}
SOURCE_START_NS = 1_800_000_000 * 1_000_000_000
STARTUP_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 120.0
IDLE_CHECK_S = 1.0
_WROTE = re.compile(r'wrote .*?: (?P<counts>.*); frame counter gaps: (?P<gaps>\d+)')
_REPLAYED = re.compile(r'replayed (?P<sent>\d+) of \d+ messages .* in (?P<seconds>[\d.]+) s')


def distinct_frames(work: Path) -> list:
    """One flash cycle of rendered synthetic frames (pixels), reused for the whole source."""
    from antispoof_ros.offline.bagtools.synthetic_bag import write_synthetic_bag
    from antispoof_ros.offline.synthetic.protocol import (
        ProtocolConfig,
        build_protocol,
        pick_pylon_scenarios,
    )

    protocol = build_protocol(ProtocolConfig())
    scenario = pick_pylon_scenarios([s for s in protocol.scenarios
                                     if s.split.value == 'test'], 1)
    rendered = work / 'rendered'
    write_synthetic_bag(rendered, scenario, 1, progress=False)
    with Reader(rendered) as reader:
        frames = [deserialize_message(raw, FlashFrame) for c, _, raw in reader.messages()
                  if c.msgtype == 'antispoof_ros/msg/FlashFrame']
    shutil.rmtree(rendered)
    return [image_to_array(frame.image) for frame in sorted(frames,
                                                            key=lambda f: f.frame_counter)]


def write_source(path: Path, seconds: float, rate_hz: float, work: Path) -> int:
    """The bag to replay: ``seconds`` of frames at ``rate_hz``; returns frames written."""
    pixels = distinct_frames(work)
    count = round(seconds * rate_hz)
    period_ns = round(1e9 / rate_hz)
    with FlashBagWriter(path, LABELS, start_ns=SOURCE_START_NS) as writer:
        for counter in range(count):
            writer.write_frame(DEFAULT_PATTERN[counter % len(DEFAULT_PATTERN)],
                               pixels[counter % len(pixels)], counter,
                               SOURCE_START_NS + counter * period_ns)
    return count


def folder_bytes(path: Path) -> int:
    """Size of every file under ``path``."""
    return sum(f.stat().st_size for f in path.rglob('*') if f.is_file())


def wait_until_written(partial: Path, timeout_s: float) -> float:
    """When the recorder's file stopped growing: it has written its backlog (monotonic).

    Stopping the recorder earlier would drop what its DDS reader still holds. The file size,
    not the CPU, tells: a recorder waiting for a saturated disk uses hardly any CPU.
    """
    deadline = time.monotonic() + timeout_s
    size, grew = folder_bytes(partial), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(IDLE_CHECK_S)
        size, before = folder_bytes(partial), size
        if size == before:
            return grew
        grew = time.monotonic()
    raise NodeProcessError(f'the recording still grows {timeout_s:g} s after the replay')


def run(seconds: float, rate_hz: float, compression: str, work: Path) -> str:
    """Replay a source bag into the recorder; the report lines."""
    frames = round(seconds * rate_hz)
    needed = frames * 2.31e6 * 2.2
    if shutil.disk_usage(work).free < needed:
        raise OSError(f'{work} has less than the {needed / 1e9:.0f} GB free that source and '
                      'recording need')
    source = work / 'source'
    write_source(source, seconds, rate_hz, work)
    recorded = work / 'recorded'
    with NodeProcesses(log_dir=work / 'logs') as processes:
        recorder = processes.start('record', [
            sys.executable, '-m', 'antispoof_ros.offline.bagtools.record', '--out',
            str(recorded), *(f'--{k}={v}' for k, v in LABELS.items()),
            f'--compression={compression}'])
        recorder.wait_ready(lambda: recorder.count_lines('recording') > 0, STARTUP_TIMEOUT_S,
                            'did not start recording')
        replay = processes.start('replay', [
            sys.executable, '-m', 'antispoof_ros.offline.bagtools.replay', str(source),
            '--rate', '1.0', '--wait-for-subscribers', '1'])
        cpu_before, started = recorder.cpu_seconds(), time.monotonic()
        if replay.wait(timeout=STARTUP_TIMEOUT_S + seconds * 4) != 0:
            raise NodeProcessError(replay.problem() or 'replay failed')
        # the recorder's CPU while frames arrived; subscriber matching time included
        cpu_share = (recorder.cpu_seconds() - cpu_before) / (time.monotonic() - started)
        writing_s = wait_until_written(partial_path(recorded), DRAIN_TIMEOUT_S) - started
        if recorder.stop(DRAIN_TIMEOUT_S) != 0:
            raise NodeProcessError(recorder.problem() or 'recorder failed')
    sent = _REPLAYED.search(replay.output)
    wrote = _WROTE.search(recorder.output)
    if sent is None or wrote is None:
        raise NodeProcessError(f'unexpected output (logs: {work / "logs"})')
    written = sum(int(part.rsplit(' ', 1)[1]) for part in wrote['counts'].split(', ')
                  if part.startswith('/camera/'))
    replay_s = float(sent['seconds'])
    size, source_size = folder_bytes(recorded), folder_bytes(source)
    return '\n'.join([
        f'recorder benchmark: {frames} frames 1920x1200 mono8 at {rate_hz:g} Hz '
        f'({seconds:g} s), compression {compression}',
        f'frames sent {frames}, written {written}, counter gaps {wrote["gaps"]}',
        f'replay took {replay_s:.1f} s for {frames / rate_hz:.1f} s of frames '
        f'({frames / replay_s:.1f} frames/s)',
        f'recorder done writing {writing_s:.1f} s after the replay started '
        f'(+-{IDLE_CHECK_S:g} s): {size / 1e6 / writing_s:.0f} MB/s written; '
        f'bag {size / 1e9:.2f} GB, '
        f'{size / (source_size * written / frames):.3f} of the same frames uncompressed',
        f'recorder CPU {cpu_share * 100:.0f} % of one core',
    ])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark once; exit 1 when it could not run."""
    parser = OneLineArgumentParser(prog=PROGRAM, description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=positive_number, default=60.0)
    parser.add_argument('--compression', choices=COMPRESSIONS, default='none')
    parser.add_argument('--rate-hz', type=positive_number, default=120.0)
    parser.add_argument('--work', type=Path, default=None,
                        help='folder for the bags (default: a temporary one, removed after)')
    args = parser.parse_args(argv)
    apply_local_dds_environment()
    work = Path(tempfile.mkdtemp(prefix='record_benchmark_', dir=args.work))
    try:
        print(run(args.seconds, args.rate_hz, args.compression, work), flush=True)
    except (NodeProcessError, OSError) as error:
        return fail(PROGRAM, error, EXIT_FAILED)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
