"""Runs scenarios one after another (node processes and the frame source carry over); the CLI."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
import contextlib
from functools import partial
from pathlib import Path
import sys
import tempfile
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from tqdm import tqdm

from antispoof_ros.camera.phase_labels import counter_label
from antispoof_ros.flash import Phase
from antispoof_ros.msg import EyeCorners, LivenessResult
from antispoof_ros.nodes import diagnostics
from antispoof_ros.nodes.camera_node import CameraNode
from antispoof_ros.nodes.messages import stamp_nanoseconds
from antispoof_ros.nodes.topics import EYE_CORNERS, LIVENESS_RESULT
from antispoof_ros.tools.fault_injection.feed import FrameSource, Ledger, camera_node
from antispoof_ros.tools.fault_injection.judge import (
    CumulativeCounters,
    ScenarioResult,
    Totals,
    anomaly_increase,
    check_expectations,
    judge_results,
    report,
)
from antispoof_ros.tools.fault_injection.scenarios import (
    BY_NAME,
    RECOVERY_WAIT_S,
    SCENARIOS,
    SIDE_CORNERS_TOPIC,
    START_TIMEOUT_S,
    FaultInjectionError,
    Feed,
    Scenario,
)
from antispoof_ros.tools.fault_injection.scene import PATTERN, make_scene
from antispoof_ros.tools.harness.local_dds import (
    apply_local_dds_environment,
    fast_dds_files,
    remove_fast_dds_files,
)
from antispoof_ros.tools.harness.processes import NodeProcess

POLL_S = 0.02
# the /diagnostics task of each node whose status carries its counters
MAIN_TASKS = {'liveness_node': 'liveness', 'landmark_node': 'landmarks', 'camera_node': 'camera'}
SETTLE_TIMEOUT_S = 5.0


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
    if deleted := deleted_shared_memory():
        return SharedMemoryLostError(
            f'{text}: another process deleted {len(deleted)} Fast DDS file(s) of this run '
            f'({", ".join(deleted[:3])})')
    return FaultInjectionError(text)


class Observer:
    """LivenessResults, landmark answers and diagnostics counters, spun in a thread.

    Arrival times are ``time.monotonic()`` when the spin thread took the message. The node
    also carries the frame source's publishers and, in the camera scenario, camera_node.
    """

    def __init__(self, context: Context) -> None:
        self.node = Node('fault_injection', context=context)
        self.results: list[tuple[float, LivenessResult]] = []
        self.node.create_subscription(LivenessResult, LIVENESS_RESULT,
                                      partial(self._arrived, self.results), 100)
        self.answers: dict[str, list[tuple[float, EyeCorners]]] = {
            EYE_CORNERS: [], SIDE_CORNERS_TOPIC: []}
        for topic, answers in self.answers.items():
            self.node.create_subscription(EyeCorners, topic, partial(self._arrived, answers),
                                          100)
        self.counters = CumulativeCounters()
        self.node.create_subscription(DiagnosticArray, diagnostics.TOPIC, self._on_diagnostics,
                                      50)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._spinner = threading.Thread(target=self._spin, name='observer_spin', daemon=True)
        self._spinner.start()

    @staticmethod
    def _arrived(messages: list[tuple[float, object]], message: object) -> None:
        messages.append((time.monotonic(), message))

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        for status in message.status:
            node, _, task = status.name.partition(': ')
            if MAIN_TASKS.get(node) == task:
                self.counters.update(node, {kv.key: kv.value for kv in status.values})

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        """Stop spinning and destroy the node."""
        self._stop.set()
        self._spinner.join(timeout=5.0)
        self.executor.shutdown()
        self.node.destroy_node()


class ScenarioRunner:
    """Runs and judges scenarios against node processes fed by a source in this process."""

    def __init__(self, context: Context, workdir: Path) -> None:
        self.context, self.workdir = context, workdir
        self.scene = make_scene()
        self.ledger = Ledger()
        self.observer = Observer(context)
        self.source = FrameSource(self.observer.node, self.scene, self.ledger)
        self.camera: CameraNode | None = None  # while a scenario's feed is the camera
        self.processes: dict[str, NodeProcess] = {}
        self._arguments: dict[str, tuple[str, ...]] = {}  # node -> ROS arguments, for restarts
        self._retired: list[NodeProcess] = []
        self._crashed: set[int] = set()  # pids already counted
        self._answers_read = dict.fromkeys(self.observer.answers, 0)  # per topic
        self._newest_answer = -1  # highest frame counter answered intact

    def run(self, scenario: Scenario) -> ScenarioResult:
        """Set up, inject the fault, wait for recovery, and judge."""
        first_result = len(self.observer.results)
        mislabelled_before = self.ledger.mislabelled
        self._require(scenario.nodes)
        with self._feed(scenario.feed):
            self._baseline()
            before = self._fresh_counters()
            fault = scenario.fault.inject(self)
            recovered_at = self._await_decision(fault.end, fault.counter_after,
                                                RECOVERY_WAIT_S)
            after = self._fresh_counters()
        self._read_answers()
        result = ScenarioResult(scenario.name, fault.injected, fault.unit,
                                crashes=self._crashes(),
                                mislabelled=self.ledger.mislabelled - mislabelled_before,
                                startup_s=fault.startup_s,
                                counters_up=anomaly_increase(before, after))
        if recovered_at is not None:
            result.recovery_s = recovered_at - fault.end
        judge_results(result, fault, self.ledger, self.observer.results[first_result:],
                      recovered_at)
        check_expectations(result, scenario.expectation)
        return result

    def close(self) -> None:
        """Stop the source and every node process, destroy the ROS side."""
        self.source.close()
        for name in list(self.processes):
            self.retire(name).terminate()
        self.observer.close()

    def _require(self, wanted: dict[str, tuple[str, ...]]) -> None:
        """Run exactly these executables with these arguments."""
        for name, arguments in self._arguments.items():
            if name in self.processes and wanted.get(name) != arguments:
                self._settle()
                self.retire(name).terminate()
        self._arguments = dict(wanted)
        self.start([name for name in wanted if name not in self.processes])

    def _settle(self) -> None:
        """Pause the frame source until the last front frame it sent is answered.

        A node that ends cleanly leaves the DDS graph at once, and Fast DDS drops the
        samples of a departed writer that a reader has not taken yet: this process would
        miss corners that liveness_node got, and judge the pairs they completed as pairs
        without corners. With nothing in flight, nothing is missed.
        """
        if not self.source.running:
            return
        self.source.stop()
        newest = self.ledger.newest_counter
        last_front = next(counter for counter in range(newest, newest - len(PATTERN), -1)
                          if counter_label(counter, PATTERN).phase == Phase.FRONT)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            self._read_answers()
            if last_front in self.ledger.corners or self._newest_answer >= last_front:
                return
            time.sleep(POLL_S)

    def start(self, names: Sequence[str]) -> None:
        """Start these nodes; the waits for a decision or a first answer watch them."""
        for name in names:
            self.processes[name] = NodeProcess(name, [
                sys.executable, '-m', f'antispoof_ros.nodes.{name}', '--ros-args',
                *self._arguments[name]])

    def _check_running(self) -> None:
        """FaultInjectionError naming the first node process that has ended."""
        for process in self.processes.values():
            if problem := process.problem():
                raise FaultInjectionError(problem)

    def retire(self, name: str) -> NodeProcess:
        """Take a node out of the running set (its exit is still checked for a crash)."""
        process = self.processes.pop(name)
        self._retired.append(process)
        return process

    def _process_states(self) -> str:
        return '; '.join(f'{process.problem() or f"{name} running"}'
                         for name, process in self.processes.items())

    def _crashes(self) -> int:
        """Node processes that died on their own since the last call."""
        crashed = [process for process in (*self.processes.values(), *self._retired)
                   if process.crashed and process.pid not in self._crashed]
        self._crashed.update(process.pid for process in crashed)
        return len(crashed)

    @contextlib.contextmanager
    def _feed(self, feed: Feed) -> Iterator[None]:
        """The frame source (started where it is not running) or camera_node."""
        if feed is not Feed.CAMERA:
            self.source.with_corners = feed is Feed.FRAMES_AND_CORNERS
            if not self.source.running:
                self.source.start()
            yield
            return
        self.source.close()
        with camera_node(self.context, self.observer.node, self.observer.executor, self.scene,
                         self.ledger, self.workdir / 'emulator_frames') as self.camera:
            try:
                yield
            finally:
                self.camera = None

    def _read_answers(self) -> None:
        """Check every EyeCorners seen since the last call against the ledger.

        Corners on EYE_CORNERS are the ones liveness_node may have used, whoever sent them
        and whenever they arrive (a landmark_node retired just now included): intact ones of
        a front frame count as its corners. Any other answer must name a front frame with
        its stamp, else it is mislabelled. Skipped: broken messages, and corners already in
        the ledger (this process receives the frame source's own). camera_node's frames
        reach the ledger through this process's own subscription, which can run after the
        answer's: an answer about a front frame newer than any entered waits for the next
        call (front frames arrive in order, so a newer one entered means this one is in or
        lost).
        """
        ledger = self.ledger
        for topic, answers in self.observer.answers.items():
            read = self._answers_read[topic]
            for _, answer in answers[read:]:
                counter = int(answer.frame_counter)
                known = topic == EYE_CORNERS and counter in ledger.corners
                if counter not in ledger.tainted and not known:
                    if counter > ledger.newest_of_phase.get(Phase.FRONT, -1):
                        break
                    if (ledger.frames.get(counter) != Phase.FRONT
                            or ledger.stamps[counter] != stamp_nanoseconds(answer.header.stamp)):
                        ledger.mislabelled += 1
                    elif answer.status == EyeCorners.STATUS_OK and topic == EYE_CORNERS:
                        ledger.corners.add(counter)
                    self._newest_answer = max(self._newest_answer, counter)
                read += 1
            self._answers_read[topic] = read

    def await_first_result(self, first_counter: int, node: str) -> tuple[float, int]:
        """Arrival and front-frame counter of the first LivenessResult from ``first_counter`` on.

        After a restart every such result rests on the restarted ``node``'s answers: it is
        liveness_node's own, or rests on landmark_node's corners, without which the
        synchronizer completes no set.
        """
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            found = next(((arrival, int(result.frame_counter_a))
                          for arrival, result in list(self.observer.results)
                          if result.frame_counter_a >= first_counter), None)
            if found is not None:
                return found
            if problem := self.processes[node].problem():
                raise FaultInjectionError(f'{problem} after its restart')
            if time.monotonic() > deadline:
                raise connection_error(f'no LivenessResult {START_TIMEOUT_S:.0f} s after '
                                       f'{node} restarted ({self._process_states()})')
            time.sleep(POLL_S)

    def _first_decision(self, since: float, min_counter: int) -> float | None:
        """Arrival of the first LIVE/SPOOF on a valid pair from ``min_counter`` on."""
        self._read_answers()
        for arrival, result in list(self.observer.results):
            if (arrival >= since and result.decision != LivenessResult.DECISION_UNKNOWN
                    and result.frame_counter_a >= min_counter
                    and self.ledger.valid_pair(result.frame_counter_a, result.frame_counter_b)):
                return arrival
        return None

    def _await_decision(self, since: float, min_counter: int, timeout_s: float) -> float | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self._first_decision(since, min_counter)
            if found is not None:
                return found
            time.sleep(POLL_S)
        return None

    def _baseline(self) -> None:
        """Wait until the pipeline decides on valid pairs, so the fault hits a working system."""
        since, min_counter = time.monotonic(), self.ledger.newest_counter
        deadline = since + START_TIMEOUT_S
        while self._first_decision(since, min_counter) is None:
            self._check_running()
            if time.monotonic() > deadline:
                raise connection_error(f'no LIVE/SPOOF decision {START_TIMEOUT_S:.0f} s after '
                                       f'the set-up ({self._process_states()})')
            time.sleep(POLL_S)

    def _fresh_counters(self) -> Totals:
        """Counter totals from diagnostics reports made after now (two per node)."""
        nodes = {*self.processes, *(['camera_node'] if self.camera is not None else [])}
        reports = self.observer.counters.reports
        wanted = {node: reports[node] + 2 for node in nodes}
        deadline = time.monotonic() + START_TIMEOUT_S
        while any(reports[node] < count for node, count in wanted.items()):
            if time.monotonic() > deadline:
                silent = sorted(node for node, count in wanted.items() if reports[node] < count)
                raise connection_error(f'no diagnostics from {", ".join(silent)} '
                                       f'({self._process_states()})')
            time.sleep(POLL_S)
        return self.observer.counters.snapshot()


def run_scenarios(names: Sequence[str] = SCENARIOS,
                  progress: bool = False) -> list[ScenarioResult]:
    """Run the named scenarios in their canonical order and return one result each.

    Needs the local-only DDS environment in ``os.environ`` (``apply_local_dds_environment``).
    A scenario whose shared memory another process deleted is repeated once with fresh
    participants: the fault lies with the machine, not with the nodes.
    """
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise FaultInjectionError(f'unknown scenario(s): {", ".join(unknown)}')
    ordered = [BY_NAME[name] for name in SCENARIOS if name in names]
    results = []
    with tempfile.TemporaryDirectory(prefix='fault_injection_') as workdir:
        session = _Session(Path(workdir))
        try:
            for scenario in tqdm(ordered, desc='fault scenarios', unit='scenario',
                                 disable=not progress):
                try:
                    results.append(session.runner.run(scenario))
                except SharedMemoryLostError as error:
                    print(f'repeating {scenario.name} with fresh participants: {error}',
                          file=sys.stderr)
                    session.close()
                    session = _Session(Path(workdir))
                    results.append(session.runner.run(scenario))
        finally:
            session.close()
    return results


class _Session:
    """A private rclpy context with a ScenarioRunner on it."""

    def __init__(self, workdir: Path) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        try:
            self.runner = ScenarioRunner(self.context, workdir)
        except BaseException:
            rclpy.try_shutdown(context=self.context)
            raise

    def close(self) -> None:
        try:
            self.runner.close()
        finally:
            rclpy.try_shutdown(context=self.context)


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
