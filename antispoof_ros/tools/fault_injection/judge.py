"""Judging a scenario: every LivenessResult against the ledger, then the expectations."""

from __future__ import annotations

from collections import Counter
import math

from antispoof_ros.flash import Phase
from antispoof_ros.msg import LivenessResult
from antispoof_ros.tools.fault_injection.faults import FaultWindow
from antispoof_ros.tools.fault_injection.ledger import Ledger
from antispoof_ros.tools.fault_injection.limits import RECOVERY_LIMIT_S
from antispoof_ros.tools.fault_injection.report import ScenarioResult
from antispoof_ros.tools.fault_injection.scenarios import Expectation


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
        problem = result_problem(message, ledger, scored[pair])
        good = is_scored and not problem
        decided = message.decision != LivenessResult.DECISION_UNKNOWN
        if is_scored and problem:
            result.mispaired += 1
            result.mispaired_why[problem] += 1
        result.bad_during += decided and not good
        if fault.start <= arrival <= degraded_until:
            result.unknown_during += not decided
            result.valid_during += decided and good


def result_problem(message: LivenessResult, ledger: Ledger, times_scored: int) -> str:
    """Why a result is not the one score of a valid pair ('' when it is)."""
    if times_scored > 1:
        return 'scored twice'
    if (message.phase_a, message.phase_b) != (Phase.FRONT, Phase.RIGHT):
        return 'phases not front + right'
    return ledger.pair_problem(int(message.frame_counter_a), int(message.frame_counter_b))


def check_expectations(result: ScenarioResult, expectation: Expectation) -> None:
    """Fill ``result.failures`` with every expectation that did not hold."""
    checks = [
        (result.crashes == 0, f'{result.crashes} node process(es) died'),
        (result.mispaired == 0, f'{result.mispaired} mis-paired result(s): ' + ', '.join(
            f'{why} x{count}' for why, count in result.mispaired_why.items())),
        (result.mislabelled == 0, f'{result.mislabelled} mislabelled message(s)'),
        (result.bad_during == 0, f'{result.bad_during} LIVE/SPOOF from a bad pair'),
        (result.unknown_during > 0 or not expectation.unknown, 'no UNKNOWN while degraded'),
        (result.recovery_s is not None and result.recovery_s <= RECOVERY_LIMIT_S,
         f'no recovery within {RECOVERY_LIMIT_S:.1f} s'),
        *((counter in result.counters_up, f'{counter} did not go up')
          for counter in expectation.counters),
    ]
    result.failures = [text for ok, text in checks if not ok]
