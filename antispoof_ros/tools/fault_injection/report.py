"""One row per scenario, a summary line, and every expectation that did not hold."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


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
    lines += [f'FAILED {r.fault}: {"; ".join(r.failures)}' for r in failed]
    lines.append('all expectations held' if not failed else f'{len(failed)} scenario(s) failed')
    return '\n'.join(lines)
