"""The main job (``make demo``): synthetic live faces, prints and masks through the real node.

    python -m antispoof_ros.demo [--scenarios 8] [--cycles 10] [--out runs/demo]

1. Renders a rosbag2 (MCAP) of unseen test-split scenarios of the synthetic protocol:
   full 1920x1200 multi-flash cycles as the camera publishes them, with ground-truth eye
   corners and scenario labels (once; kept in ``--out``).
2. Starts ``liveness_node`` with the shipped P2 face model, its landmark input remapped to
   the ground-truth corners (the dlib landmark model is made for real faces and often
   misses the synthetic mannequin faces: see README, known limits), over
   shared-memory-only DDS.
3. Replays the bag at camera speed (120 Hz) and prints one line per scenario as its results
   arrive, then a summary: per species, pairs judged correctly / wrongly / unknown, the
   fused decision at each scenario's end, and the node's latency.
"""

from __future__ import annotations

import argparse
from bisect import bisect_right
from collections import Counter, defaultdict
from pathlib import Path
import sys

import numpy as np

from antispoof_ros.bagtools.labels import read_label_segments
from antispoof_ros.bagtools.synthetic_bag import main as synthetic_bag_main
from antispoof_ros.evaluation.node_replay import NodeReplayError, replay_through_liveness_node
from antispoof_ros.msg import LivenessResult
from antispoof_ros.nodes.liveness_node import SHIPPED_MODELS

DECISIONS = {LivenessResult.DECISION_LIVE: 'LIVE', LivenessResult.DECISION_SPOOF: 'SPOOF',
             LivenessResult.DECISION_UNKNOWN: 'UNKNOWN'}
DEFAULT_OUT = Path('runs/demo')


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line of the demo."""
    parser = argparse.ArgumentParser(prog='antispoof-demo', description=__doc__.split('\n')[0])
    parser.add_argument('--scenarios', type=int, default=8, help='test scenarios to play')
    parser.add_argument('--cycles', type=int, default=10, help='flash cycles per scenario')
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT, help='work folder')
    parser.add_argument('--model', type=Path, default=SHIPPED_MODELS / 'p2_face.onnx')
    args = parser.parse_args(argv)
    if args.scenarios < 1 or args.cycles < 2:
        parser.error('--scenarios must be at least 1 and --cycles at least 2')
    if not args.model.is_file():
        parser.error(f'no such model: {args.model}')
    return args


def verdict(species: str, decision: int) -> str:
    """'correct' / 'wrong' / 'unknown' for a decision on a presentation of ``species``."""
    if decision == LivenessResult.DECISION_UNKNOWN:
        return 'unknown'
    live = decision == LivenessResult.DECISION_LIVE
    return 'correct' if live == (species == 'live') else 'wrong'


class Scoreboard:
    """Results grouped by scenario, printed as each scenario completes."""

    def __init__(self, bag: Path) -> None:
        self.segments = read_label_segments(bag)
        self.starts = [segment.start_ns for segment in self.segments]
        self.results: dict[int, list[LivenessResult]] = defaultdict(list)
        self.printed = 0

    def add(self, result: LivenessResult) -> None:
        """File a result under the scenario its frame B belongs to."""
        if not result.frame_counter_b:
            return  # a timeout notice, not a pair
        stamp = result.stamp_b.sec * 1_000_000_000 + result.stamp_b.nanosec
        self.results[max(bisect_right(self.starts, stamp) - 1, 0)].append(result)

    def print_finished(self, final: bool = False) -> None:
        """Print the scenarios no further result can arrive for."""
        newest = max(self.results, default=-1)
        while self.printed < len(self.segments) and (self.printed < newest or final):
            self._print_row(self.printed)
            self.printed += 1

    def _print_row(self, index: int) -> None:
        labels = self.segments[index].labels
        results = self.results.get(index, [])
        pairs = Counter(verdict(labels['species'], r.pair_decision) for r in results)
        fused = DECISIONS[results[-1].decision] if results else '-'
        what = ' '.join(str(labels.get(k, '')) for k in ('species', 'print_kind', 'lighting',
                                                         'pose') if labels.get(k))
        print(f'  {index + 1:2d}  {what:<28} {len(results):5d}  {pairs["correct"]:7d} '
              f'{pairs["wrong"]:5d} {pairs["unknown"]:7d}   {fused:<8}', flush=True)

    def summary(self) -> None:
        """Per species totals and latency."""
        per_species: dict[str, Counter] = defaultdict(Counter)
        latencies = []
        for index, results in self.results.items():
            species = self.segments[index].labels['species']
            for result in results:
                per_species[species][verdict(species, result.pair_decision)] += 1
                latencies.append(result.latency_ms)
            if results:
                per_species[species]['scenario ' + verdict(species, results[-1].decision)] += 1
        print('\nsummary per species (pairs; fused decision at each scenario end):')
        for species, counts in sorted(per_species.items()):
            print(f'  {species:<7} pairs correct {counts["correct"]}, wrong {counts["wrong"]}, '
                  f'unknown {counts["unknown"]}; scenarios correct '
                  f'{counts["scenario correct"]}, wrong {counts["scenario wrong"]}, unknown '
                  f'{counts["scenario unknown"]}')
        if latencies:
            finite = np.array([v for v in latencies if np.isfinite(v)])
            print(f'  liveness_node latency (frame B arrival -> result): p50 '
                  f'{np.percentile(finite, 50):.2f} ms, p99 {np.percentile(finite, 99):.2f} ms')


def main(argv: list[str] | None = None) -> int:
    """Run the demo; exit code 0 when every scenario got results."""
    args = parse_args(argv)
    bag = args.out / f'test_{args.scenarios}x{args.cycles}'
    if not bag.is_dir():
        args.out.mkdir(parents=True, exist_ok=True)
        print(f'rendering {args.scenarios} unseen test scenarios x {args.cycles} flash cycles '
              f'(1920x1200, 120 Hz) into {bag} ...', flush=True)
        if synthetic_bag_main(['--out', str(bag), '--scenarios', str(args.scenarios),
                               '--cycles', str(args.cycles)]) != 0:
            return 1
    print(f'liveness_node with {args.model.name} (shared-memory DDS); replaying at camera '
          'speed', flush=True)
    board = Scoreboard(bag)
    print('\n   #  scenario                     pairs  correct wrong unknown   fused')
    try:
        replay_through_liveness_node(bag, args.model, board.add, rate=1.0,
                                     on_tick=board.print_finished)
    except NodeReplayError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    board.print_finished(final=True)
    board.summary()
    return 0 if len(board.results) == len(board.segments) else 1


if __name__ == '__main__':
    sys.exit(main())
