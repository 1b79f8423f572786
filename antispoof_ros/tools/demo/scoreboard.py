"""Verdicts of the liveness node per scenario: a table row as each scenario ends, a summary.

The source (emulator folder, bag, rig) decides which scenario a result belongs to; this
module only counts. Pair verdicts count every result of a real pair, including UNKNOWN ones
(no corners, dropped pair): a scenario the pipeline could not judge shows as unknown, not as
missing. The fused decision of a scenario is the node's decision on its last pair.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from antispoof_ros.msg import LivenessResult
from antispoof_ros.nodes.messages import stamp_nanoseconds

DECISIONS = {LivenessResult.DECISION_LIVE: 'LIVE', LivenessResult.DECISION_SPOOF: 'SPOOF',
             LivenessResult.DECISION_UNKNOWN: 'UNKNOWN'}
HEADER = ('   #  scenario                              pairs  correct wrong unknown   fused')


def verdict(species: str, decision: int) -> str:
    """'correct' / 'wrong' / 'unknown' for a decision on a presentation of ``species``."""
    if decision == LivenessResult.DECISION_UNKNOWN:
        return 'unknown'
    live = decision == LivenessResult.DECISION_LIVE
    return 'correct' if live == (species == 'live') else 'wrong'


def is_pair_result(result: Any) -> bool:
    """False for the node's timeout notices, which name no frame pair."""
    return result.frame_counter_b != 0


def scenario_name(labels: dict[str, object]) -> str:
    """The scenario id of synthetic labels (unique), else a description from the labels."""
    if labels.get('scenario'):
        return str(labels['scenario'])
    mask = f'm{int(labels["mask_id"]):02d}' if 'mask_id' in labels else None
    parts = (labels['species'], labels.get('print_kind'), mask, labels['lighting'],
             labels.get('pose'), labels.get('subject'))
    return ' '.join(str(part) for part in parts if part)


def percentiles(values: Sequence[float]) -> str:
    """'p50 X ms, p99 Y ms' over the finite values, or 'no data'."""
    finite = np.array([v for v in values if np.isfinite(v)])
    if not finite.size:
        return 'no data'
    return f'p50 {np.percentile(finite, 50):.2f} ms, p99 {np.percentile(finite, 99):.2f} ms'


class Scoreboard:
    """Results filed by scenario; rows printed in scenario order as scenarios finish."""

    def __init__(self, labels: Sequence[dict[str, object]],
                 expected_pairs: Sequence[int] | None = None,
                 write: Callable[[str], None] = print) -> None:
        self.labels = list(labels)
        self.expected_pairs = expected_pairs  # per scenario, where the source knows it
        self.write = write
        self.results: dict[int, list[LivenessResult]] = defaultdict(list)
        self.result_latencies_ms: list[float] = []
        self.node_latencies_ms: list[float] = []
        self.printed = 0

    def add(self, scenario: int, result: LivenessResult, arrival_ns: int | None) -> None:
        """File a pair result; ``arrival_ns`` (wall clock) None when stamps are not live."""
        self.results[scenario].append(result)
        self.node_latencies_ms.append(result.latency_ms)
        if arrival_ns is not None:
            self.result_latencies_ms.append((arrival_ns - stamp_nanoseconds(result.stamp_b)) / 1e6)

    @property
    def complete(self) -> bool:
        """Every scenario got at least one verdict (UNKNOWN counts)."""
        return all(self.results.get(i) for i in range(len(self.labels)))

    def print_finished(self, final: bool = False) -> int:
        """Print the rows no further result can arrive for; how many rows are printed now."""
        newest = max(self.results, default=-1)
        while self.printed < len(self.labels) and (self.printed < newest or final):
            self.write(self._row(self.printed))
            self.printed += 1
        return self.printed

    def _row(self, index: int) -> str:
        labels = self.labels[index]
        results = self.results.get(index, [])
        pairs = Counter(verdict(str(labels['species']), r.pair_decision) for r in results)
        fused = DECISIONS[results[-1].decision] if results else '- (no result)'
        count = str(len(results)) if self.expected_pairs is None else \
            f'{len(results)}/{self.expected_pairs[index]}'
        return (f'  {index + 1:2d}  {scenario_name(labels):<36} {count:>7}  '
                f'{pairs["correct"]:7d} {pairs["wrong"]:5d} {pairs["unknown"]:7d}   {fused}')

    def summary(self) -> list[str]:
        """Per species totals of pairs and fused scenario decisions, and the latencies."""
        per_species: dict[str, Counter] = defaultdict(Counter)
        for index, labels in enumerate(self.labels):
            species = str(labels['species'])
            results = self.results.get(index, [])
            per_species[species].update(verdict(species, r.pair_decision) for r in results)
            fused = verdict(species, results[-1].decision) if results else 'unknown'
            per_species[species]['scenario ' + fused] += 1
        lines = ['summary per species (pairs; fused decision at each scenario end):']
        for species, counts in sorted(per_species.items()):
            lines.append(
                f'  {species:<7} pairs correct {counts["correct"]}, wrong {counts["wrong"]}, '
                f'unknown {counts["unknown"]}; scenarios correct {counts["scenario correct"]}, '
                f'wrong {counts["scenario wrong"]}, unknown {counts["scenario unknown"]}')
        lines.append('  latency, liveness_node (frame B arrival -> result published): '
                     + percentiles(self.node_latencies_ms))
        if self.result_latencies_ms:
            lines.append('  latency, end to end (frame B stamp -> result received here): '
                         + percentiles(self.result_latencies_ms))
        return lines
