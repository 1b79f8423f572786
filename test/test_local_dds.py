"""Clean-up of Fast DDS shared-memory files: ours go, those another process uses stay."""

import os
from pathlib import Path
import subprocess
import sys
import uuid

import pytest

from antispoof_ros.tools.harness.local_dds import (
    SHARED_MEMORY,
    fast_dds_files,
    remove_fast_dds_files,
    shared_memory_in_use,
)

pytestmark = pytest.mark.skipif(not SHARED_MEMORY.is_dir(), reason='no /dev/shm')


def test_files_in_use_by_a_live_process_survive_the_clean_up() -> None:
    before = fast_dds_files()
    name = uuid.uuid4().hex
    unused = SHARED_MEMORY / f'fastdds_test_unused_{name}'
    held = SHARED_MEMORY / f'fastdds_test_held_{name}'
    unused.write_bytes(b'x')
    held.write_bytes(b'x')
    holder = subprocess.Popen(
        [sys.executable, '-c', f'import sys, time; f = open({str(held)!r}); '
         'print("open", flush=True); time.sleep(60)'], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'open'
        assert held in shared_memory_in_use()
        remove_fast_dds_files(before)
        assert not unused.exists()
        assert held.exists()
    finally:
        holder.kill()
        holder.wait()
        remove_fast_dds_files(before)
    assert not held.exists()


def test_files_present_before_are_left_alone() -> None:
    older = SHARED_MEMORY / f'fastdds_test_older_{uuid.uuid4().hex}'
    older.write_bytes(b'x')
    try:
        remove_fast_dds_files(fast_dds_files())
        assert older.exists()
    finally:
        older.unlink()


def test_in_use_scan_sees_this_process_open_files() -> None:
    path = Path(SHARED_MEMORY) / f'fastdds_test_self_{uuid.uuid4().hex}'
    descriptor = os.open(path, os.O_CREAT | os.O_RDWR)
    try:
        assert path in shared_memory_in_use()
    finally:
        os.close(descriptor)
        path.unlink()
