"""Run a node executable as a child process and watch its output, sockets and exit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
import re
import signal
import subprocess
import threading
import time

VENV_BIN = Path(__file__).resolve().parent.parent / '.venv' / 'bin'
REPO = Path(__file__).resolve().parent.parent


class NodeProcess:
    """A started executable whose combined stdout/stderr is collected line by line."""

    def __init__(self, command: Sequence[str], cwd: Path = REPO) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            list(command),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip('\n'))
                self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        with self._changed:
            return '\n'.join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 20.0) -> bool:
        """Wait until a line matches ``pattern`` (regex); False on timeout or exit."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(regex.search(line) for line in self.lines):
                remaining = deadline - time.monotonic()
                finished = self.process.poll() is not None and not self._reader.is_alive()
                if remaining <= 0 or finished:
                    return False
                self._changed.wait(min(remaining, 0.1))
        return True

    def interrupt(self, timeout: float = 15.0) -> int:
        """Send SIGINT (Ctrl-C) and return the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def wait(self, timeout: float = 15.0) -> int:
        """Wait for exit (kill after ``timeout``) and for all output to be read."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        self._reader.join(timeout=5)
        return code

    def stop(self) -> None:
        """Make sure the process is gone (test clean-up)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


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
