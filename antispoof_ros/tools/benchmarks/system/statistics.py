"""Pure figures of the system benchmark: latency summaries, window counts, growth, drift, verdicts.

No ROS here, so the arithmetic that decides PASS or FAIL is unit-tested without nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import math

import numpy as np

NS_PER_S = 1_000_000_000
# Targets for a 2-core machine: p99 latency, CPU of both nodes, soak memory growth.
MAX_LATENCY_P99_MS = 20.0
MAX_TOTAL_CPU_CORES = 1.2
MAX_MEMORY_GROWTH_PERCENT = 5.0
# Latency drift: the last soak minute may be this much slower than the first, relatively or
# in absolute terms, whichever is larger (one minute holds 1800 pairs: p99 is the 18th worst,
# so a quiet first minute must not turn one busy neighbour process into a FAIL).
DRIFT_TOLERANCE_FRACTION = 0.10
DRIFT_TOLERANCE_MS = 1.0


def _summary(values_ms: Iterable[float], high: int) -> dict[str, float]:
    """Count, p50, p<high> and max of milliseconds (NaN figures when there are none)."""
    values = np.fromiter(values_ms, dtype=float)
    figures = {'p50_ms': 50, f'p{high}_ms': high}
    if values.size == 0:
        return {'count': 0, **dict.fromkeys(figures, math.nan), 'max_ms': math.nan}
    return {'count': int(values.size),
            **{key: float(np.percentile(values, q)) for key, q in figures.items()},
            'max_ms': float(values.max())}


def latency_summary(values_ms: Iterable[float]) -> dict[str, float]:
    """Count, p50, p99 and max of latencies in ms (NaN figures when there are none)."""
    return _summary(values_ms, 99)


def verdict_time_summary(values_ms: Iterable[float]) -> dict[str, float]:
    """Count, p50, p90 and max of times to verdict in ms (NaN figures when there are none)."""
    return _summary(values_ms, 90)


def describe_verdict_times(summary: dict[str, float], without_verdict: int = 0) -> str:
    """'p50 X ms, p90 Y ms, max Z ms (n=N, M without a verdict)' of ``verdict_time_summary``."""
    missing = f', {without_verdict} without a verdict' if without_verdict else ''
    if not summary['count']:
        return f'no verdict (n=0{missing})'
    if summary['count'] == 1:
        return f"{summary['max_ms']:.0f} ms (n=1{missing})"
    return (f"p50 {summary['p50_ms']:.0f} ms, p90 {summary['p90_ms']:.0f} ms, "
            f"max {summary['max_ms']:.0f} ms (n={summary['count']}{missing})")


def in_window(stamps_ns: np.ndarray, start_ns: int, end_ns: int) -> np.ndarray:
    """Mask of the stamps in the half-open measurement window [start, end)."""
    return (stamps_ns >= start_ns) & (stamps_ns < end_ns)


def growth_percent(start: float, end: float) -> float:
    """Relative growth from ``start`` to ``end`` in percent (negative when it shrank)."""
    if start <= 0:
        raise ValueError(f'growth needs a positive start value, got {start}')
    return 100.0 * (end - start) / start


def minute_buckets(stamps_ns: np.ndarray, values: np.ndarray, start_ns: int,
                   minutes: int) -> list[np.ndarray]:
    """``values`` split by the minute of the window their stamp falls in (``minutes`` lists)."""
    index = (stamps_ns - start_ns) // (60 * NS_PER_S)
    return [values[index == minute] for minute in range(minutes)]


def latency_drift(first_minute_ms: Sequence[float], last_minute_ms: Sequence[float]) -> dict:
    """p50/p99 of the first and last minute and whether neither rose beyond the tolerance."""
    first, last = latency_summary(first_minute_ms), latency_summary(last_minute_ms)
    if first['count'] == 0 or last['count'] == 0:
        raise ValueError('latency drift needs results in the first and the last minute')
    rises = {key: last[key] - first[key] for key in ('p50_ms', 'p99_ms')}
    allowed = {key: max(DRIFT_TOLERANCE_FRACTION * first[key], DRIFT_TOLERANCE_MS)
               for key in rises}
    return {'first_minute': first, 'last_minute': last,
            'rise_ms': rises, 'allowed_rise_ms': allowed,
            'pass': all(rises[key] <= allowed[key] for key in rises)}


def memory_growth(rss_start_kib: dict[str, int], rss_end_kib: dict[str, int]) -> dict:
    """RSS growth per process in percent and whether every one stayed within the limit."""
    growth = {name: growth_percent(rss_start_kib[name], rss_end_kib[name])
              for name in rss_start_kib}
    return {'percent': growth,
            'pass': all(value <= MAX_MEMORY_GROWTH_PERCENT for value in growth.values())}


def target_verdicts(frames_lost: dict[str, int], cycles_sent: int, pairs_evaluated: int,
                    latency_p99_ms: float, total_cpu_cores: float) -> dict[str, bool]:
    """PASS (True) or FAIL per target; a NaN latency (no result) fails."""
    return {
        'no_frame_lost': all(lost == 0 for lost in frames_lost.values()),
        'every_cycle_evaluated': cycles_sent > 0 and pairs_evaluated >= cycles_sent,
        'latency_p99_le_20ms': bool(latency_p99_ms <= MAX_LATENCY_P99_MS),
        'total_cpu_le_1.2_cores': total_cpu_cores <= MAX_TOTAL_CPU_CORES,
    }
