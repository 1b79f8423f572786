"""Verdicts of the liveness node per scenario: a table row as each scenario ends, a summary.

The source (emulator folder, bag, rig) decides which scenario a result belongs to; this
module only counts. Pair verdicts count every result of a real pair, including UNKNOWN ones
(no corners, dropped pair): a scenario the pipeline could not judge shows as unknown, not as
missing. The fused decision of a scenario is the node's decision on its last pair. Where the
source says when a scenario's face appeared, the summary gives the time from then to the
scenario's first fused LIVE or SPOOF: what the fusion settings trade against safety.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from antispoof_ros.msg import LivenessResult
from antispoof_ros.nodes.messages import stamp_nanoseconds
from antispoof_ros.tools.benchmarks.system.statistics import (
    describe_verdict_times,
    verdict_time_summary,
)

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


def stamp_of_counter(result: Any, counter: int, fallback_period_ns: float) -> int:
    """Stamp of frame ``counter``, extrapolated from the stamps of the result's two frames.

    A and B are whole frame periods apart; a single-frame pair shows no period, so
    ``fallback_period_ns`` is used there.
    """
    counters = result.frame_counter_b - result.frame_counter_a
    stamp_b = stamp_nanoseconds(result.stamp_b)
    period_ns = ((stamp_b - stamp_nanoseconds(result.stamp_a)) / counters if counters
                 else fallback_period_ns)
    return round(stamp_b - (result.frame_counter_b - counter) * period_ns)


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
        self.face_since_ns: dict[int, int] = {}  # scenario -> stamp of its first face frame
        self.first_verdict_ns: dict[int, int] = {}  # scenario -> its first LIVE/SPOOF received
        self.printed = 0

    def face_appeared(self, scenario: int, stamp_ns: int) -> None:
        """Note when ``scenario``'s face appeared (the stamp of its first frame)."""
        self.face_since_ns.setdefault(scenario, stamp_ns)

    def add(self, scenario: int, result: LivenessResult, arrival_ns: int | None) -> None:
        """File a pair result; ``arrival_ns`` (wall clock) None when stamps are not live."""
        self.results[scenario].append(result)
        self.node_latencies_ms.append(result.latency_ms)
        if result.decision != LivenessResult.DECISION_UNKNOWN:
            self.first_verdict_ns.setdefault(
                scenario, stamp_nanoseconds(result.stamp_b) if arrival_ns is None else arrival_ns)
        if arrival_ns is not None:
            self.result_latencies_ms.append((arrival_ns - stamp_nanoseconds(result.stamp_b)) / 1e6)

    def times_to_verdict_ms(self) -> list[float]:
        """Per scenario whose face appearance is known and that got a verdict, in order."""
        return [(self.first_verdict_ns[i] - since) / 1e6
                for i, since in sorted(self.face_since_ns.items())
                if i in self.first_verdict_ns]

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
        if self.face_since_ns:
            times = self.times_to_verdict_ms()
            lines.append('  time to verdict (face appears -> first fused LIVE or SPOOF '
                         'received): ' + describe_verdict_times(
                             verdict_time_summary(times), len(self.face_since_ns) - len(times)))
        return lines
