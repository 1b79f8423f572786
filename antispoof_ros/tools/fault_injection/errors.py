"""Errors of the harness itself, as opposed to expectations a scenario did not meet."""

from __future__ import annotations

from pathlib import Path


class FaultInjectionError(RuntimeError):
    """The harness itself could not run a scenario (not a failed expectation)."""


class SharedMemoryLostError(FaultInjectionError):
    """Another process deleted this run's Fast DDS shared-memory files mid-run."""


def deleted_shared_memory() -> list[str]:
    """Fast DDS files this process still maps but another process has deleted.

    ``local_dds.remove_fast_dds_files`` of a concurrent run (another test session ending)
    removes every Fast DDS file created while it ran, this run's included; participants
    started afterwards open new files and never discover the ones still using the old.
    """
    try:
        maps = Path('/proc/self/maps').read_text()
    except OSError:
        return []
    return sorted({line.split()[-2] for line in maps.splitlines()
                   if '/dev/shm/fastdds_' in line and line.endswith('(deleted)')})


def connection_error(text: str) -> FaultInjectionError:
    """The error for nodes that cannot be reached, naming deleted shared memory as the cause."""
    deleted = deleted_shared_memory()
    if deleted:
        return SharedMemoryLostError(
            f'{text}: another process deleted {len(deleted)} Fast DDS file(s) of this run '
            f'({", ".join(deleted[:3])})')
    return FaultInjectionError(text)
