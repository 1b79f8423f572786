"""Shared test set-up: every ROS participant of a test run stays on this machine.

The shared-memory-only Fast DDS profile and a random domain id are put into the
environment before anything imports rclpy, so in-process nodes and every child process
started by a test inherit them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from antispoof_ros.local_dds import apply_local_dds_environment

DDS_ENVIRONMENT = apply_local_dds_environment()

import rclpy  # noqa: E402  (after the DDS environment is set)
from rclpy.context import Context  # noqa: E402


@pytest.fixture
def ros_context() -> Iterator[Context]:
    """A private, initialised rclpy context, shut down after the test."""
    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)


SHARED_MEMORY = Path('/dev/shm')


def _fast_dds_files() -> set[Path]:
    """Fast DDS' shared-memory segments, port files and semaphores."""
    if not SHARED_MEMORY.is_dir():
        return set()
    return {path for path in SHARED_MEMORY.iterdir()
            if path.name.startswith(('fastdds_', 'sem.fastdds_'))}


@pytest.fixture(scope='session', autouse=True)
def remove_fast_dds_files_of_this_run() -> Iterator[None]:
    """Fast DDS leaves 64 MB segments in /dev/shm; remove the ones this test run created.

    Runs after every test, when the nodes this run started have ended; a segment still
    mapped by a process stays usable for it after the unlink.
    """
    before = _fast_dds_files()
    yield
    for path in _fast_dds_files() - before:
        path.unlink(missing_ok=True)
