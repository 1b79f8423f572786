"""Environment that confines ROS 2 / Fast DDS traffic to this machine.

Fast DDS' environment shortcuts (localhost discovery, FASTDDS_BUILTIN_TRANSPORTS=SHM)
still open a UDP socket on the external interface, so tests, the demo and CI load the
shared-memory-only participant profile in ``config/fastdds_local_only.xml`` instead.
"""

from __future__ import annotations

import os
from pathlib import Path
import random

from antispoof_ros.paths import PACKAGE_DIR, SOURCE_TREE

_PROFILE = Path('config') / 'fastdds_local_only.xml'
# A source checkout has config/ beside the package; an install (colcon, CMake) has it in
# <prefix>/share/antispoof_ros, the package being <prefix>/lib/pythonX.Y/site-packages/...
_INSTALL_SHARE = [prefix / 'share' / 'antispoof_ros' for prefix in PACKAGE_DIR.parents[3:4]]
PROFILE_FILE = next((base / _PROFILE for base in (SOURCE_TREE, *_INSTALL_SHARE)
                     if (base / _PROFILE).is_file()), SOURCE_TREE / _PROFILE)

# glibc keeps large (multi-MB) image buffers in the heap instead of mmapping and
# unmapping them for every message; measured to remove p99 latency spikes at 120 Hz.
_MALLOC_TUNING = {
    'MALLOC_MMAP_THRESHOLD_': '33554432',
    'MALLOC_TRIM_THRESHOLD_': '268435456',
}

# Domain ids 1..101 are usable without colliding with the rig's default 0.
_DOMAIN_RANGE = (1, 101)


def local_dds_environment(domain_id: int | None = None) -> dict[str, str]:
    """Variables that make every ROS process started with them use shared memory only."""
    if not PROFILE_FILE.is_file():
        raise FileNotFoundError(f'Fast DDS profile missing: {PROFILE_FILE}')
    if domain_id is None:
        domain_id = random.SystemRandom().randint(*_DOMAIN_RANGE)
    return {
        'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp',
        'FASTDDS_DEFAULT_PROFILES_FILE': str(PROFILE_FILE),
        'ROS_DOMAIN_ID': str(domain_id),
        **_MALLOC_TUNING,
    }


SHARED_MEMORY = Path('/dev/shm')


def fast_dds_files() -> set[Path]:
    """Fast DDS' shared-memory segments, port files and semaphores in /dev/shm."""
    if not SHARED_MEMORY.is_dir():
        return set()
    return {path for path in SHARED_MEMORY.iterdir()
            if path.name.startswith(('fastdds_', 'sem.fastdds_'))}


def shared_memory_in_use() -> set[Path]:
    """Files in /dev/shm that a running process (readable to us) has mapped or open."""
    in_use: set[Path] = set()
    prefix = f'{SHARED_MEMORY}/'
    for process in Path('/proc').iterdir():
        if not process.name.isdigit():
            continue
        try:
            for line in (process / 'maps').read_text().splitlines():
                start = line.find(prefix)
                if start >= 0:
                    in_use.add(Path(line[start:].removesuffix(' (deleted)')))
            for descriptor in (process / 'fd').iterdir():
                target = os.readlink(descriptor)
                if target.startswith(prefix):
                    in_use.add(Path(target))
        except OSError:  # the process ended meanwhile, or is not ours to read
            continue
    return in_use


def remove_fast_dds_files(created_after: set[Path]) -> None:
    """Remove the Fast DDS files that are not in ``created_after`` (a ``fast_dds_files()``).

    Fast DDS leaves its 64 MB segments behind when participants end; call this once the
    processes that made them are gone. Files that some running process still maps or holds
    open stay: they may belong to another run on the same machine, whose participants
    find each other through them by name.
    """
    for path in fast_dds_files() - created_after - shared_memory_in_use():
        path.unlink(missing_ok=True)


def apply_local_dds_environment(domain_id: int | None = None) -> dict[str, str]:
    """Set the local-only variables in this process (before ``rclpy.init``) and return them."""
    env = local_dds_environment(domain_id)
    os.environ.update(env)
    return env
