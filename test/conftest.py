"""Shared test set-up: every ROS participant of a test run stays on this machine.

The shared-memory-only Fast DDS profile and a random domain id are put into the
environment before anything imports rclpy, so in-process nodes and every child process
started by a test inherit them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from antispoof_ros.tools.harness.local_dds import (
    apply_local_dds_environment,
    fast_dds_files,
    remove_fast_dds_files,
)

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


@pytest.fixture(scope='module')
def coded_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two flash cycles of phase-coded frames, an ``emulator_image_dir`` for pylon's camera."""
    from antispoof_ros.flash import DEFAULT_PATTERN
    from antispoof_ros.offline.synthetic.phase_coded_images import write_phase_coded_folder

    folder = tmp_path_factory.mktemp('emulator_images')
    write_phase_coded_folder(folder, DEFAULT_PATTERN, cycles=2)
    return folder


@pytest.fixture(scope='session', autouse=True)
def remove_fast_dds_files_of_this_run() -> Iterator[None]:
    """Remove the Fast DDS shared-memory files this test run created, after every test."""
    before = fast_dds_files()
    yield
    remove_fast_dds_files(before)
