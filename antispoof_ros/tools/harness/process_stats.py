"""CPU time and memory of a running process, from Linux /proc (used by the benchmarks)."""

from __future__ import annotations

import os
from pathlib import Path


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads so far."""
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def process_memory_kib(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` memory figure such as VmRSS or VmHWM, in KiB."""
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith(f'{key}:'):
            return int(line.split()[1])
    raise ValueError(f'process {pid} reports no {key}')
