"""Judging a scenario: /diagnostics counters across restarts, every result, the report."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
import math

from antispoof_ros.flash import Phase
from antispoof_ros.liveness.pairing import DropReason, StreamAnomaly
from antispoof_ros.liveness.pipeline import Unusable
from antispoof_ros.msg import LivenessResult
from antispoof_ros.tools.fault_injection.feed import Ledger
from antispoof_ros.tools.fault_injection.scenarios import Expectation, FaultWindow

SOURCE_COUNTERS = ('source_untrusted_onsets', 'source_tick_discontinuities')
# Per node: the counter that shows progress (a fall means a restart) and the anomaly counters.
PROGRESS_COUNTERS = {
    'liveness_node': 'pairs_accepted',
    'landmark_node': 'frames_total',
    'camera_node': 'frames_published',
}
ANOMALY_COUNTERS = {
    'liveness_node': (*(f'pairs_{reason.value}' for reason in (*DropReason, *Unusable)),
                      *(f'input_{anomaly.value}' for anomaly in StreamAnomaly),
                      *SOURCE_COUNTERS),
    'landmark_node': ('bad_input_total', *SOURCE_COUNTERS),
    'camera_node': ('failed_grabs', 'skipped_frames', 'grab_timeouts', 'phase_errors',
                    'reconnects'),
}
Totals = dict[tuple[str, str], int]  # (node, counter) -> total since the run began


class CumulativeCounters:
    """Counter totals per node that survive restarts: a counter that falls restarted at 0."""

    def __init__(self) -> None:
        self._last: dict[str, dict[str, int]] = {}
        self._carried: dict[tuple[str, str], int] = defaultdict(int)
        self.restarts: Counter[str] = Counter()
        self.reports: Counter[str] = Counter()

    def update(self, node: str, values: dict[str, str]) -> None:
        """Take one diagnostics report of ``node``; a counter that fell means a restart."""
        keys = (PROGRESS_COUNTERS[node], *ANOMALY_COUNTERS[node])
        current = {key: int(values[key]) for key in keys if key in values}
        last = self._last.get(node, {})
        if any(current[key] < last.get(key, 0) for key in current):
            self.restarts[node] += 1
            for key, value in last.items():
                self._carried[node, key] += value
        self._last[node] = current
        self.reports[node] += 1

    def snapshot(self) -> Totals:
        """Totals per (node, counter), restarts included as (node, 'restarts')."""
        totals = {(node, key): self._carried[node, key] + value
                  for node, values in self._last.items() for key, value in values.items()}
        totals.update({(node, 'restarts'): count for node, count in self.restarts.items()})
        return totals


def anomaly_increase(before: Totals, after: Totals) -> dict[str, int]:
    """Anomaly counters (and restarts) that went up between two snapshots."""
    return {f'{node}.{key}': value - before.get((node, key), 0)
            for (node, key), value in sorted(after.items())
            if key != PROGRESS_COUNTERS[node] and value > before.get((node, key), 0)}


@dataclass
class ScenarioResult:
    """One row of the report, and the expectations that did not hold."""

    fault: str
    injected: int
    unit: str
    crashes: int = 0
    unknown_during: int = 0
    valid_during: int = 0
    bad_during: int = 0
    mispaired: int = 0
    #: Why each mis-paired result was one ('scored twice' or a ``Ledger.pair_problem``).
    mispaired_why: Counter[str] = field(default_factory=Counter)
    mislabelled: int = 0
    #: Results, and LIVE results, that arrived while the fault lasted (start to end).
    results_during_fault: int = 0
    live_during_fault: int = 0
    #: First answer of the restarted node (else end of the fault) -> first valid LIVE/SPOOF.
    recovery_s: float | None = None
    #: Spawn -> first answer of a restarted node; None where no node was restarted.
    startup_s: float | None = None
    counters_up: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every expectation held."""
        return not self.failures

    def row(self) -> str:
        """The report line."""
        recovery = f'{self.recovery_s:.2f} s' if self.recovery_s is not None else 'never'
        startup = f'{self.startup_s:.2f} s' if self.startup_s is not None else '-'
        counters = ', '.join(f'{k} +{v}' for k, v in self.counters_up.items()) or 'none'
        return (f'{self.fault:<18} {self.injected:>4} {self.unit:<10} {self.crashes:>7} '
                f'{self.unknown_during:>7} {self.valid_during:>5} {self.bad_during:>3} '
                f'{self.mispaired:>10} {self.mislabelled:>11} {recovery:>9} {startup:>8}  '
                f'{counters}')


def judge_results(result: ScenarioResult, fault: FaultWindow, ledger: Ledger,
                  results: list[tuple[float, LivenessResult]],
                  recovered_at: float | None) -> None:
    """Count mis-paired results, bad decisions, and what was decided while degraded."""
    degraded_until = recovered_at if recovered_at is not None else math.inf
    scored: Counter[tuple[int, int]] = Counter()
    for arrival, message in results:
        pair = (int(message.frame_counter_a), int(message.frame_counter_b))
        is_scored = not math.isnan(message.score)
        scored[pair] += is_scored
        if scored[pair] > 1:
            problem = 'scored twice'
        elif (message.phase_a, message.phase_b) != (Phase.FRONT, Phase.RIGHT):
            problem = 'phases not front + right'
        else:
            problem = ledger.pair_problem(*pair)
        good = is_scored and not problem
        decided = message.decision != LivenessResult.DECISION_UNKNOWN
        if is_scored and problem:
            result.mispaired += 1
            result.mispaired_why[problem] += 1
        result.bad_during += decided and not good
        if fault.start <= arrival <= fault.end:
            result.results_during_fault += 1
            result.live_during_fault += message.decision == LivenessResult.DECISION_LIVE
        if fault.start <= arrival <= degraded_until:
            result.unknown_during += not decided
            result.valid_during += decided and good


def check_expectations(result: ScenarioResult, expectation: Expectation) -> None:
    """Fill ``result.failures`` with every expectation that did not hold."""
    checks = [
        (result.crashes == 0, f'{result.crashes} node process(es) died'),
        (result.mispaired == 0, f'{result.mispaired} mis-paired result(s): ' + ', '.join(
            f'{why} x{count}' for why, count in result.mispaired_why.items())),
        (result.mislabelled == 0, f'{result.mislabelled} mislabelled message(s)'),
        (result.bad_during == 0, f'{result.bad_during} LIVE/SPOOF from a bad pair'),
        (result.unknown_during > 0 or not expectation.unknown, 'no UNKNOWN while degraded'),
        (result.live_during_fault == 0 or not expectation.no_live,
         f'{result.live_during_fault} LIVE while the fault lasted'),
        (result.recovery_s is not None and result.recovery_s <= expectation.recovery_limit_s,
         f'no recovery within {expectation.recovery_limit_s:.1f} s'),
        *((counter in result.counters_up, f'{counter} did not go up')
          for counter in expectation.counters),
    ]
    result.failures = [text for ok, text in checks if not ok]


HEADER = (f'{"fault":<18} {"injected":<15} {"crashes":>7} {"unknown":>7} {"valid":>5} '
          f'{"bad":>3} {"mis-paired":>10} {"mislabelled":>11} {"recovery":>9} {"start-up":>8}  '
          'diagnostics counters up')


def report(results: list[ScenarioResult]) -> str:
    """The table, a summary line, and every expectation that did not hold."""
    lines = [HEADER, *(result.row() for result in results)]
    recoveries = [r.recovery_s for r in results if r.recovery_s is not None]
    startups = [r.startup_s for r in results if r.startup_s is not None]
    worst = f'{max(recoveries):.2f} s' if recoveries else 'n/a'
    slowest = f' (node start-ups up to {max(startups):.2f} s before it)' if startups else ''
    lines.append(
        f'{len(results)} scenarios, {sum(r.injected for r in results)} faults injected, '
        f'crashes {sum(r.crashes for r in results)}, mis-paired '
        f'{sum(r.mispaired for r in results)}, mislabelled {sum(r.mislabelled for r in results)}, '
        f'LIVE/SPOOF from bad pairs {sum(r.bad_during for r in results)}, '
        f'worst recovery {worst}{slowest}')
    failed = [r for r in results if not r.ok]
    lines += [f'{r.fault}: {r.injected} {r.unit} injected, {r.results_during_fault} results '
              f'while they came, LIVE {r.live_during_fault}'
              for r in results if r.fault == 'replay_injection']
    lines += [f'FAILED {r.fault}: {"; ".join(r.failures)}' for r in failed]
    lines.append('all expectations held' if not failed else f'{len(failed)} scenario(s) failed')
    return '\n'.join(lines)
