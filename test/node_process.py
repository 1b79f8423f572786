"""Test helpers around the child-process harness: start a node or tool, spin, list sockets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import subprocess
import sys
import time

from antispoof_ros.tools.harness.processes import NodeProcess

VENV_BIN = Path(__file__).resolve().parent.parent / '.venv' / 'bin'
REPO = Path(__file__).resolve().parent.parent


def start_node(executable: str, *arguments: str) -> NodeProcess:
    """Start a node executable of the venv, its output captured, named after it."""
    return NodeProcess(executable, [str(VENV_BIN / executable), *arguments], cwd=REPO)


def start_module(module: str, *arguments: str) -> NodeProcess:
    """Start ``python -m module``, its output captured, named after the module's last part."""
    return NodeProcess(module.rsplit('.', 1)[-1], [sys.executable, '-m', module, *arguments],
                       cwd=REPO)


def internet_sockets(pid: int) -> list[str]:
    """Every UDP or TCP socket line that ``ss`` attributes to ``pid`` (any state)."""
    lines = []
    for flag in ('-uapn', '-tapn'):
        listing = subprocess.run(['ss', flag], capture_output=True, text=True, check=True).stdout
        lines += [line for line in listing.splitlines() if f'pid={pid},' in line]
    return lines


def spin_until(executor: object, done: Callable[[], bool], timeout: float,
               step: float = 0.02) -> bool:
    """Spin ``executor`` until ``done()`` is true (True) or ``timeout`` s pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=step)
        if done():
            return True
    return False
