"""Synthetic scenarios as a rosbag2 (MCAP) recording, exactly as the camera would publish them.

    python -m antispoof_ros.offline.bagtools.synthetic_bag --out BAG [--split test]
        [--scenarios 12] [--cycles 10] [--seed 0]

Renders full 1920x1200 flash cycles of scenarios picked from the default synthetic protocol
(every species and lighting before repeating; only the given split, so an evaluation bag
holds subjects and masks the model never saw), and writes them with FlashBagWriter: the
camera topics, ground-truth eye corners of every front frame, and one label segment per
scenario. Frames are 8.33 ms apart (120 Hz); scenarios follow each other without a gap in
the frame counter.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
import sys

from tqdm import tqdm

from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.offline.bagtools import BagToolError
from antispoof_ros.offline.bagtools.writer import FlashBagWriter
from antispoof_ros.offline.cli import fail
from antispoof_ros.offline.synthetic.protocol import (
    ProtocolConfig,
    build_protocol,
    iter_cycles,
    pick_pylon_scenarios,
)
from antispoof_ros.offline.synthetic.scene import FULL_MODE, ScenarioSpec, Split

FRAME_PERIOD_NS = 1_000_000_000 // 120
START_NS = 1_800_000_000 * 1_000_000_000  # a fixed epoch: bags are reproducible byte for byte


def scenario_labels(spec: ScenarioSpec) -> dict[str, object]:
    """Bag label segment of one synthetic scenario."""
    labels: dict[str, object] = {
        'subject': f's{spec.subject_id:03d}' if spec.subject_id is not None else 'none',
        'species': spec.species.value, 'lighting': spec.lighting.value,
        'split': spec.split.value, 'scenario': spec.scenario_id,
    }
    if spec.pose is not None:  # prints have no head pose
        labels['pose'] = spec.pose.value
    if spec.print_kind is not None:
        labels['print_kind'] = spec.print_kind.value
    if spec.mask_id is not None:
        labels['mask_id'] = spec.mask_id
    return labels


def write_synthetic_bag(out: Path, scenarios: Sequence[ScenarioSpec], cycles: int,
                        seed: int = 0, progress: bool = True, continuous: bool = False) -> int:
    """Render ``cycles`` cycles of each scenario into the bag ``out``; returns frames written.

    ``continuous``: each scenario is one take whose head sways smoothly and is back at its
    start after ``cycles`` cycles, so the clip loops without a jump (as a tracker sees a real
    camera); by default every cycle is an independent sample, as in the training data.
    """
    if not scenarios:
        raise BagToolError('no scenario to write')
    front = DEFAULT_PATTERN.index(Phase.FRONT)
    counter = 0
    total = sum(min(spec.n_cycles, cycles) for spec in scenarios)
    with FlashBagWriter(out, scenario_labels(scenarios[0]), start_ns=START_NS) as writer:
        current = scenarios[0].scenario_id
        take_period_s = (cycles * len(DEFAULT_PATTERN) * FRAME_PERIOD_NS / 1e9
                         if continuous else None)
        rendered = iter_cycles(scenarios, FULL_MODE, seed, cycles_per_scenario=cycles,
                               take_period_s=take_period_s)
        for cycle in tqdm(rendered, total=total, unit='cycle', disable=not progress):
            stamp_ns = START_NS + counter * FRAME_PERIOD_NS
            if cycle.scenario.scenario_id != current:
                current = cycle.scenario.scenario_id
                writer.start_segment(scenario_labels(cycle.scenario), stamp_ns)
            for position, phase in enumerate(DEFAULT_PATTERN):
                frame_stamp = stamp_ns + position * FRAME_PERIOD_NS
                writer.write_frame(phase, cycle.frames[position], counter + position,
                                   frame_stamp)
                if position == front:
                    truth = cycle.truth[position]
                    x0, y0, x1, y1 = truth.face_box
                    writer.write_eye_corners(counter + position, frame_stamp, truth.corners,
                                             (x0, y0, x1 - x0, y1 - y0))
            counter += len(DEFAULT_PATTERN)
    return counter


def main(argv: Sequence[str] | None = None) -> int:
    """Write the bag; one error line and exit 2 on bad input."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, required=True, help='bag folder to create')
    parser.add_argument('--split', default='test', choices=[s.value for s in Split])
    parser.add_argument('--scenarios', type=int, default=12, help='scenarios to render')
    parser.add_argument('--cycles', type=int, default=10, help='flash cycles per scenario')
    parser.add_argument('--seed', type=int, default=0, help='protocol seed')
    parser.add_argument('--continuous', action='store_true',
                        help='each scenario one smoothly moving take (default: independent '
                             'cycles, as the training data)')
    parser.add_argument('--no-progress', dest='progress', action='store_false')
    args = parser.parse_args(argv)
    try:
        if args.scenarios < 1 or args.cycles < 1:
            raise BagToolError('--scenarios and --cycles must be at least 1')
        protocol = build_protocol(ProtocolConfig(seed=args.seed))
        pool = [s for s in protocol.scenarios if s.split.value == args.split]
        picked = pick_pylon_scenarios(pool, args.scenarios)
        frames = write_synthetic_bag(args.out, picked, args.cycles, args.seed, args.progress,
                                     args.continuous)
    except (BagToolError, OSError, ValueError) as error:
        return fail('antispoof_ros.offline.bagtools.synthetic_bag', error)
    print(f'wrote {frames} frames of {len(picked)} scenarios to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
