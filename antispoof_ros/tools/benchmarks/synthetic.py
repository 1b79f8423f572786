"""Generator speed: cycles per second at the crop resolution and at 1920x1200.

Renders a species mix taken from the default protocol (one process, as ``--workers 1``),
times npz compression of the crop cycles, and projects the time of the default set.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import tempfile
import time

import cv2
import numpy as np

from antispoof_ros.offline.synthetic.protocol import ProtocolConfig, build_protocol, write_shard
from antispoof_ros.offline.synthetic.render import render_cycle
from antispoof_ros.offline.synthetic.scene import CROP_MODE, FULL_MODE, RenderMode, ScenarioSpec


def _sample(scenarios: list[ScenarioSpec], count: int) -> list[ScenarioSpec]:
    """Evenly spaced scenarios, so the species mix matches the protocol's."""
    picks = np.linspace(0, len(scenarios) - 1, count).round().astype(int)
    return [scenarios[i] for i in picks]


def time_cycles(specs: list[ScenarioSpec], mode: RenderMode, seed: int, per_scenario: int
                ) -> tuple[float, list]:
    """Seconds per cycle of consecutive cycles of each scenario.

    Cycle 0 of every scenario is rendered untimed first: it builds the subject's surfaces and
    print content, which a real run amortises over hundreds of cycles per subject.
    """
    cycles, elapsed = [], 0.0
    for spec in specs:
        render_cycle(spec, 0, mode, seed)
        start = time.perf_counter()
        cycles += [render_cycle(spec, i, mode, seed) for i in range(1, per_scenario + 1)]
        elapsed += time.perf_counter() - start
    return elapsed / len(cycles), cycles


def main(argv: list[str] | None = None) -> int:
    """Print rendering speed and the projected time of the default training set."""
    parser = argparse.ArgumentParser(
        prog='antispoof_ros.tools.benchmarks.synthetic', description=__doc__)
    parser.add_argument('--scenarios', type=int, default=12, help='scenarios sampled')
    parser.add_argument('--crop-cycles', type=int, default=5, help='timed cycles per scenario')
    parser.add_argument('--full-cycles', type=int, default=1, help='timed cycles per scenario')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.scenarios, args.crop_cycles, args.full_cycles) < 1:
        parser.exit(2, f'{parser.prog}: error: cycle counts must be positive\n')
    cv2.setNumThreads(1)
    protocol = build_protocol(ProtocolConfig(seed=args.seed))
    specs = _sample(protocol.scenarios, args.scenarios)
    crop_s, cycles = time_cycles(specs, CROP_MODE, args.seed, args.crop_cycles)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        write_shard(Path(folder) / 'shard.npz', cycles)
        compress_s = (time.perf_counter() - start) / len(cycles)
    full_s, _ = time_cycles(specs[::3], FULL_MODE, args.seed, args.full_cycles)
    total = protocol.n_cycles * (crop_s + compress_s)
    print(f'crop {CROP_MODE.width}x{CROP_MODE.height} (scale {CROP_MODE.scale}): '
          f'{1 / crop_s:.1f} cycles/s ({1000 * crop_s:.1f} ms/cycle), '
          f'npz shard writing {1000 * compress_s:.1f} ms/cycle')
    print(f'full {FULL_MODE.width}x{FULL_MODE.height}: {1 / full_s:.2f} cycles/s '
          f'({1000 * full_s:.0f} ms/cycle, without PNG writing)')
    print(f'default training set: {protocol.n_cycles} cycles, projected {total / 60:.1f} min '
          f'with 1 worker, about {total / 120:.1f} min with --workers 2 on 2 idle cores')
    return 0


if __name__ == '__main__':
    sys.exit(main())
