"""The nodes' cumulative /diagnostics counters, added up across node restarts."""

from __future__ import annotations

from collections import Counter, defaultdict

from antispoof_ros.liveness.pairing import DropReason, StreamAnomaly
from antispoof_ros.liveness.pipeline import Unusable

# Per node: the counter that shows progress (a fall means a restart) and the anomaly counters.
PROGRESS_COUNTERS = {
    'liveness_node': 'pairs_accepted',
    'landmark_node': 'frames_total',
    'camera_node': 'frames_published',
}
ANOMALY_COUNTERS = {
    'liveness_node': (*(f'pairs_{reason.value}' for reason in (*DropReason, *Unusable)),
                      *(f'input_{anomaly.value}' for anomaly in StreamAnomaly)),
    'landmark_node': ('bad_input_total',),
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
    rises = {}
    for (node, key), value in sorted(after.items()):
        if key != PROGRESS_COUNTERS[node] and value > before.get((node, key), 0):
            rises[f'{node}.{key}'] = value - before.get((node, key), 0)
    return rises
