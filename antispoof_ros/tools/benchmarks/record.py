"""Recorder benchmark: does ``bagtools.record`` keep up with the camera, at what cost.

The camera's stand-in is the system benchmark's frame source in a process of its own: one
rendered flash cycle of 1920x1200 mono8 frames (a synthetic NIR face) held in memory and
published cyclically at the camera rate with nominal stamps, increasing frame counters and
the camera's QoS, as camera_node does, from the moment the recorder listens on all four
topics. Both run as child processes on shared-memory-only DDS. Like a camera, the source
does not wait for a slow recorder: frames the recorder cannot take are lost, so keeping up
means every frame sent was written and the recorded frame counters have no gap. Reported:
frames sent and written, counter gaps, the source's frame rate and CPU share, MB/s written,
bag size and its ratio to the uncompressed frames, and the recorder's CPU share (of one core).

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

import numpy as np

from antispoof_ros.flash import DEFAULT_PATTERN
from antispoof_ros.offline.bagtools.writer import COMPRESSIONS, partial_path
from antispoof_ros.offline.cli import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    OneLineArgumentParser,
    fail,
    positive_number,
)
from antispoof_ros.tools.benchmarks.system.frame_source import FRAME_RATE_HZ, cached_bag
from antispoof_ros.tools.harness.local_dds import apply_local_dds_environment
from antispoof_ros.tools.harness.processes import NodeProcessError, NodeProcesses

PROGRAM = 'antispoof_ros.tools.benchmarks.record'
LABELS = {'subject': 'benchmark', 'species': 'live', 'lighting': 'office'}
SOURCE_CYCLES = 1  # the frames the source cycles through: one flash cycle
FRAME_BYTES = 1920 * 1200
STARTUP_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 120.0
IDLE_CHECK_S = 1.0
_WROTE = re.compile(r'wrote .*?: (?P<counts>.*); frame counter gaps: (?P<gaps>\d+)')


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
    raise NodeProcessError(f'the recording still grows {timeout_s:g} s after the source')


def run(seconds: float, rate_hz: float, compression: str, work: Path) -> str:
    """Play the frame source into the recorder; the report lines."""
    frames = round(seconds * rate_hz)
    needed = frames * FRAME_BYTES * 1.1
    if shutil.disk_usage(work).free < needed:
        raise OSError(f'{work} has less than the {needed / 1e9:.0f} GB free that the recording '
                      'needs')
    source_bag = cached_bag(work / 'frames', SOURCE_CYCLES, progress=False)
    frame_size = folder_bytes(source_bag) / (SOURCE_CYCLES * len(DEFAULT_PATTERN))
    recorded, stats_file = work / 'recorded', work / 'source.npz'
    with NodeProcesses(log_dir=work / 'logs') as processes:
        recorder = processes.start('record', [
            sys.executable, '-m', 'antispoof_ros.offline.bagtools.record', '--out',
            str(recorded), *(f'--{k}={v}' for k, v in LABELS.items()),
            f'--compression={compression}'])
        recorder.wait_ready(lambda: recorder.count_lines('recording') > 0, STARTUP_TIMEOUT_S,
                            'did not start recording')
        source = processes.start('source', [
            sys.executable, '-m', 'antispoof_ros.tools.benchmarks.system.frame_source',
            str(source_bag), '--stats', str(stats_file), f'--rate-hz={rate_hz}',
            f'--seconds={seconds}', '--wait-for-subscribers=1'])
        source.wait_ready(lambda: source.count_lines('playing') > 0, STARTUP_TIMEOUT_S,
                          'saw no recorder subscribe to every camera topic')
        cpu_before, started = recorder.cpu_seconds(), time.monotonic()
        if source.wait(timeout=STARTUP_TIMEOUT_S + seconds * 2) != 0:
            raise NodeProcessError(source.problem() or 'frame source failed')
        # the recorder's CPU while frames arrived
        cpu_share = (recorder.cpu_seconds() - cpu_before) / (time.monotonic() - started)
        writing_s = wait_until_written(partial_path(recorded), DRAIN_TIMEOUT_S) - started
        if recorder.stop(DRAIN_TIMEOUT_S) != 0:
            raise NodeProcessError(recorder.problem() or 'recorder failed')
    wrote = _WROTE.search(recorder.output)
    if wrote is None or not stats_file.is_file():
        raise NodeProcessError(f'unexpected output (logs: {work / "logs"})')
    written = sum(int(part.rsplit(' ', 1)[1]) for part in wrote['counts'].split(', ')
                  if part.startswith('/camera/'))
    with np.load(stats_file) as stats:
        sent, play_s, source_cpu_s = (len(stats['counter']), float(stats['play_s']),
                                      float(stats['cpu_s']))
        late_ms = np.percentile(stats['late_ns'], 99) / 1e6 if sent else float('nan')
    size = folder_bytes(recorded)
    return '\n'.join([
        f'recorder benchmark: {frames} frames 1920x1200 mono8 at {rate_hz:g} Hz '
        f'({seconds:g} s), compression {compression}',
        f'frames sent {sent}, written {written}, counter gaps {wrote["gaps"]}',
        f'source took {play_s:.1f} s for {frames / rate_hz:.1f} s of frames '
        f'({sent / play_s:.1f} frames/s, p99 {late_ms:.1f} ms late), '
        f'source CPU {source_cpu_s / play_s * 100:.0f} % of one core',
        f'recorder done writing {writing_s:.1f} s after the source started '
        f'(+-{IDLE_CHECK_S:g} s): {size / 1e6 / writing_s:.0f} MB/s written; '
        f'bag {size / 1e9:.2f} GB, '
        f'{size / (frame_size * written):.3f} of the same frames uncompressed',
        f'recorder CPU {cpu_share * 100:.0f} % of one core',
    ])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark once; exit 2 on bad arguments, 1 when it could not run."""
    parser = OneLineArgumentParser(prog=PROGRAM, description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=positive_number, default=60.0)
    parser.add_argument('--compression', choices=COMPRESSIONS, default='none')
    parser.add_argument('--rate-hz', type=positive_number, default=FRAME_RATE_HZ)
    parser.add_argument('--work', type=Path, default=None,
                        help='folder for the frames and the recording (default: a temporary one, '
                             'removed after)')
    args = parser.parse_args(argv)
    try:
        work = Path(tempfile.mkdtemp(prefix='record_benchmark_', dir=args.work))
    except OSError as error:
        return fail(PROGRAM, f'--work: {error}', EXIT_BAD_INPUT)
    apply_local_dds_environment()
    try:
        print(run(args.seconds, args.rate_hz, args.compression, work), flush=True)
    except (NodeProcessError, OSError) as error:
        return fail(PROGRAM, error, EXIT_FAILED)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
