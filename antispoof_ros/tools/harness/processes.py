"""The one way tools and tests run a node (or any program) as a child process.

A child runs in its own process session (a terminal's Ctrl-C reaches only the parent, which
stops its children in order), behind ``setpriv --pdeathsig TERM`` where available (a parent
that dies without stopping it takes it along; the signal follows the *thread* that started
the child, so start long-lived children from the main thread), unbuffered, and writes
straight into a file (its log, else an anonymous one), never into a pipe that a busy parent
would have to drain. Errors are one line naming the process, its exit code, its last error
line and its log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import IO, Self

from antispoof_ros.tools.harness.local_dds import fast_dds_files, remove_fast_dds_files
from antispoof_ros.tools.harness.process_stats import process_cpu_seconds, process_memory_kib

STOP_TIMEOUT_S = 15.0
POLL_S = 0.02
# ROS log levels, Python exceptions (the last line of a traceback) and argparse errors
_ERROR_LINE = re.compile(r'\[(ERROR|FATAL)\]|^\w*(Error|Exception)\b|: error: ')
_READ_CHUNK = 1 << 16


class NodeProcessError(RuntimeError):
    """A child process ended early or did not get ready; the message is one complete line."""


def node_command(node: str, params_file: Path, overrides: dict[str, object] | None = None,
                 remaps: Sequence[str] = ()) -> list[str]:
    """Command line of a node module: the params file, then ``-p`` overrides and ``-r`` remaps."""
    command = [sys.executable, '-m', f'antispoof_ros.nodes.{node}', '--ros-args',
               '--params-file', str(params_file)]
    for name, value in (overrides or {}).items():
        command += ['-p', f'{name}:={value}']
    for remap in remaps:
        command += ['-r', remap]
    return command


@contextmanager
def log_folder(prefix: str) -> Iterator[Path]:
    """A temporary folder for process logs: removed after success, kept after an exception."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _death_guard() -> list[str]:
    """``setpriv --pdeathsig TERM --`` where available: the child ends when its parent dies."""
    setpriv = shutil.which('setpriv')
    return [setpriv, '--pdeathsig', 'TERM', '--'] if setpriv else []


class NodeProcess:
    """One started child process and its output; a context manager that stops it."""

    def __init__(self, name: str, command: Sequence[str], log_file: Path | None = None,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.command = list(command)
        self.log_file = log_file
        self._output: IO[bytes] = (log_file.open('w+b') if log_file is not None
                                   else tempfile.TemporaryFile())
        self._read_offset = 0
        self._partial = b''
        self._lines: list[str] = []
        self._asked_to_end = False
        self.process = subprocess.Popen(
            [*_death_guard(), *self.command], stdout=self._output, stderr=subprocess.STDOUT,
            cwd=cwd, env={**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})},
            start_new_session=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """Process id (setpriv execs the command, so it is the command's own)."""
        return self.process.pid

    @property
    def exit_code(self) -> int | None:
        """Exit code; None while the process runs (negative: ended by that signal)."""
        return self.process.poll()

    @property
    def running(self) -> bool:
        """The process has not exited yet."""
        return self.exit_code is None

    @property
    def crashed(self) -> bool:
        """Exited without being asked to, or failed when asked (a SIGKILL we sent is fine)."""
        code = self.exit_code
        return code is not None and (not self._asked_to_end or code not in (0, -signal.SIGKILL))

    @property
    def lines(self) -> list[str]:
        """Every complete line the process has written so far."""
        self._read_new_output()
        return list(self._lines)

    @property
    def output(self) -> str:
        """Everything the process has written so far, the unfinished last line included."""
        self._read_new_output()
        return '\n'.join([*self._lines, self._partial.decode(errors='replace')]).rstrip('\n')

    @property
    def where_logged(self) -> str:
        """The log file, for error messages."""
        return str(self.log_file) if self.log_file is not None else 'captured output'

    def last_error_line(self) -> str:
        """The newest line that reads like an error, else the newest line, else 'no output'."""
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        errors = [line for line in lines if _ERROR_LINE.search(line)]
        return (errors or lines or ['no output'])[-1]

    def count_lines(self, text: str) -> int:
        """How many lines contain ``text``."""
        return sum(text in line for line in self.lines)

    def problem(self) -> str | None:
        """One line on why the process has ended, or None while it runs."""
        if self.running:
            return None
        return (f'{self.name} exited with code {self.exit_code}: {self.last_error_line()} '
                f'(log: {self.where_logged})')

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        return process_cpu_seconds(self.pid)

    def peak_memory_kib(self) -> int:
        """Peak resident memory (VmHWM) so far."""
        return process_memory_kib(self.pid, 'VmHWM')

    def rss_kib(self) -> int:
        """Current resident memory (VmRSS)."""
        return process_memory_kib(self.pid, 'VmRSS')

    def wait_for_line(self, pattern: str, timeout: float = 20.0) -> bool:
        """Wait until a line matches ``pattern`` (regex); False on timeout or exit."""
        regex = re.compile(pattern)
        checked = 0
        deadline = time.monotonic() + timeout
        while True:
            ended = not self.running  # read after this, so nothing written before is missed
            lines = self.lines
            if any(regex.search(line) for line in lines[checked:]):
                return True
            checked = len(lines)
            if ended or time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)

    def wait_ready(self, ready: Callable[[], bool], timeout: float,
                   what: str = 'not ready') -> None:
        """Call ``ready()`` until it is true; NodeProcessError when the process ends first."""
        deadline = time.monotonic() + timeout
        while not ready():
            if problem := self.problem():
                raise NodeProcessError(problem)
            if time.monotonic() > deadline:
                raise NodeProcessError(
                    f'{self.name} {what} after {timeout:g} s: {self.last_error_line()} '
                    f'(log: {self.where_logged})')
            time.sleep(POLL_S)

    def wait(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """Exit code of a program that ends by itself; killed and NodeProcessError on timeout."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise NodeProcessError(
                f'{self.name} did not exit within {timeout:g} s: {self.last_error_line()} '
                f'(log: {self.where_logged})') from None

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` (an expected ending) without waiting."""
        if self.running:
            self._asked_to_end = True
            self.process.send_signal(sig)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGINT (the nodes exit cleanly on it), SIGKILL after ``timeout``; the exit code."""
        return self._end(signal.SIGINT, timeout)

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, SIGKILL after ``timeout``; the exit code."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int:
        """SIGKILL: no chance to clean up; the exit code."""
        return self._end(signal.SIGKILL, STOP_TIMEOUT_S)

    def _end(self, sig: int, timeout: float) -> int:
        self.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def _read_new_output(self) -> None:
        """Take what the child appended to its output file since the last read."""
        while chunk := os.pread(self._output.fileno(), _READ_CHUNK, self._read_offset):
            self._read_offset += len(chunk)
            *complete, self._partial = (self._partial + chunk).split(b'\n')
            self._lines += [line.decode(errors='replace').rstrip('\r') for line in complete]


class NodeProcesses:
    """Started processes by name; a context manager that always stops them and cleans up."""

    def __init__(self, log_dir: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.env = env
        self.processes: dict[str, NodeProcess] = {}
        self._shared_memory_before: set[Path] = set()

    def __enter__(self) -> Self:
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        self._shared_memory_before = fast_dds_files()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
        remove_fast_dds_files(self._shared_memory_before)

    def __getitem__(self, name: str) -> NodeProcess:
        return self.processes[name]

    def __iter__(self) -> Iterator[NodeProcess]:
        return iter(self.processes.values())

    def start(self, name: str, command: Sequence[str], cwd: Path | None = None) -> NodeProcess:
        """Start ``command`` as process ``name`` (its log: ``log_dir/<name>.log``)."""
        log_file = self.log_dir / f'{name}.log' if self.log_dir is not None else None
        self.processes[name] = NodeProcess(name, command, log_file, self.env, cwd)
        return self.processes[name]

    def check(self, names: Iterable[str] | None = None) -> None:
        """NodeProcessError naming the first of ``names`` (default: all) that has ended."""
        for name in names or list(self.processes):
            if problem := self.processes[name].problem():
                raise NodeProcessError(problem)

    def wait_ready(self, ready: Callable[[], bool], timeout: float, what: str,
                   names: Iterable[str] | None = None) -> None:
        """Call ``ready()`` until it is true; NodeProcessError when a process ends or time's up."""
        watched = list(names or self.processes)
        deadline = time.monotonic() + timeout
        while not ready():
            self.check(watched)
            if time.monotonic() > deadline:
                raise NodeProcessError(f'{what} after {timeout:g} s')
            time.sleep(POLL_S)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGINT to every running process (newest first), then wait; SIGKILL what hangs."""
        processes = list(reversed(self.processes.values()))
        for process in processes:
            process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for process in processes:
            process.stop(max(deadline - time.monotonic(), 0.1))
