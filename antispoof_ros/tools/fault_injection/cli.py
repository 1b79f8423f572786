"""Command line: run the scenarios, print the table; exit 0 only if every expectation held."""

from __future__ import annotations

import argparse
import sys

from antispoof_ros.tools.fault_injection.errors import FaultInjectionError
from antispoof_ros.tools.fault_injection.report import report
from antispoof_ros.tools.fault_injection.runner import run_scenarios
from antispoof_ros.tools.fault_injection.scenarios import SCENARIOS
from antispoof_ros.tools.harness.local_dds import (
    apply_local_dds_environment,
    fast_dds_files,
    remove_fast_dds_files,
)


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios named on the command line (all by default); 0, 1 or 2."""
    parser = argparse.ArgumentParser(
        prog='python -m antispoof_ros.tools.fault_injection',
        description='Inject faults into the running nodes and check they degrade to UNKNOWN, '
                    'never mis-pair, recover within a second and count every anomaly.')
    parser.add_argument('--only', nargs='+', choices=SCENARIOS, metavar='NAME',
                        help=f'run only these scenarios (of: {", ".join(SCENARIOS)})')
    args = parser.parse_args(argv)
    apply_local_dds_environment()  # before rclpy.init: shared memory only, random domain
    shared_memory_before = fast_dds_files()
    try:
        results = run_scenarios(args.only or SCENARIOS, progress=True)
    except FaultInjectionError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130
    finally:
        remove_fast_dds_files(shared_memory_before)
    print(report(results))
    return 0 if all(result.ok for result in results) else 1
