"""Fault injection against the real node executables (issue #8): one row per fault.

Each scenario runs liveness_node (the shipped P2 face model) and, where the fault needs it,
landmark_node as separate processes on shared-memory-only DDS with a random domain id. A frame
source in this process plays camera: 640x400 frames of a real face photo whose flash phase is
also coded in the pixels (``camera.phase_coded_images``), four phases at 120 Hz with counters
and stamps, plus the face's eye corners where landmark_node is not the one to find them. The
camera fault runs camera_node in this process on pylon's emulated camera fed the same frames,
and unplugs it with the emulator's own device-removal event (``FirePnPCallback``).

The source keeps a ledger of what it really sent, so every LivenessResult can be checked: a
scored pair must be a front frame and the right frame after it, both sent intact, with the
corners of that front frame, and scored only once. Per scenario the row says how many faults
were injected, how many node processes died on their own, what was decided during the fault
(UNKNOWN, LIVE/SPOOF from valid pairs, LIVE/SPOOF from bad pairs), mis-paired and mislabelled
messages, the recovery time (end of the fault -> first LIVE/SPOOF on a valid pair sent after
it) and which anomaly counters of /diagnostics went up.

    python -m antispoof_ros.tools.fault_injection [--only NAME ...]

Exit status 0 only when every expectation of every scenario held.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
import contextlib
import copy
from dataclasses import dataclass, field
from functools import partial
import math
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from builtin_interfaces.msg import Time
import cv2
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point32
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.executors import SingleThreadedExecutor
import rclpy.logging
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_system_default
from std_msgs.msg import Header
from tqdm import tqdm

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.liveness.pairing import DropReason, StreamAnomaly
from antispoof_ros.msg import EyeCorners, FlashFrame, LivenessResult
from antispoof_ros.nodes.camera_node import CameraNode
from antispoof_ros.nodes.image_conversion import array_to_image, image_to_array
from antispoof_ros.nodes.liveness_node import Unusable
from antispoof_ros.nodes.messages import stamp_nanoseconds
from antispoof_ros.nodes.topics import EYE_CORNERS, LIVENESS_RESULT, flash_frame_topic
from antispoof_ros.offline.landmark_training.samples import load_sample_faces, place_in_frame
from antispoof_ros.offline.synthetic.phase_coded_images import decode_phase, phase_coded_frame
from antispoof_ros.tools.harness.local_dds import (
    apply_local_dds_environment,
    fast_dds_files,
    remove_fast_dds_files,
)

FRAME_WIDTH, FRAME_HEIGHT = 640, 400
FACE_SCALE = 1.3  # the astronaut's face ~280 px wide in a 640x400 frame
FRAME_PERIOD_NS = 8_333_333  # 120 Hz
PATTERN = DEFAULT_PATTERN
FAULT_CYCLES = 24  # 0.8 s at 30 cycles/s: longer than liveness_node's timeout_s (0.5 s)
RECOVERY_LIMIT_S = 1.0
RECOVERY_WAIT_S = 3.0
START_TIMEOUT_S = 30.0
DIAGNOSTICS_PERIOD_S = 0.25
# The 640x400 frames hold a ~280 px face: detect at 1/2 scale instead of the default 1/4.
LIVENESS_ARGUMENTS = ('-p', f'diagnostics_period_s:={DIAGNOSTICS_PERIOD_S}')
LANDMARK_ARGUMENTS = ('-p', 'min_face_px:=160', *LIVENESS_ARGUMENTS)
# Where a remapped landmark_node answers while the source provides the corners itself.
SIDE_CORNERS_TOPIC = 'fault_injection/landmark_corners'
UNPLUGS = 3
UNPLUG_SPACING_S = 0.3

# Cumulative diagnostics counters: progress (restart detection) and anomalies, per node.
PROGRESS_COUNTERS = {
    'liveness_node': 'pairs_accepted',
    'landmark_node': 'frames_total',
    'camera_node': 'frames_published',
}
ANOMALY_COUNTERS = {
    'liveness_node': (*(f'pairs_{reason.value}' for reason in (*DropReason, *Unusable)),
                      *(f'input_{anomaly.value}' for anomaly in StreamAnomaly)),
    'landmark_node': ('bad_input_total',),
    'camera_node': ('failed_grabs', 'skipped_frames', 'grab_timeouts', 'phase_errors',
                    'reconnects'),
}

SCENARIOS = ('camera_disconnect', 'landmark_kill', 'liveness_restart', 'frames_dropped',
             'frames_duplicated', 'frames_reordered', 'malformed_burst')


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


# -- scene -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scene:
    """One flash cycle of frames (phase code + face) and the face's eye corners."""

    frames: dict[Phase, np.ndarray]
    corners: EyeCornerPoints

    def flash_frame(self, counter: int, header: Header) -> FlashFrame:
        """The FlashFrame with this counter, labelled as camera_node would label it."""
        position = counter % len(PATTERN)
        return FlashFrame(
            header=header, phase=int(PATTERN[position]), frame_counter=counter,
            cycle_index=counter // len(PATTERN), position_in_cycle=position,
            phase_source=FlashFrame.SOURCE_FRAME_COUNTER,
            image=array_to_image(self.frames[PATTERN[position]], 'mono8', header),
        )

    def eye_corners(self, counter: int, header: Header) -> EyeCorners:
        """The face's EyeCorners, as landmark_node would answer the front frame ``counter``."""
        points = {name: Point32(x=float(x), y=float(y), z=0.0) for name, (x, y) in zip(
            ('right_eye_outer', 'right_eye_inner', 'left_eye_outer', 'left_eye_inner'),
            self.corners.as_array(), strict=True)}
        return EyeCorners(header=header, status=EyeCorners.STATUS_OK, frame_counter=counter,
                          confidence=1.0, face_count=1, method=EyeCorners.METHOD_DETECTED,
                          **points)


def frame_header(counter: int, epoch_ns: int = 0) -> Header:
    """Header of the frame with this counter: stamps 1/120 s apart from ``epoch_ns``."""
    seconds, nanoseconds = divmod(epoch_ns + counter * FRAME_PERIOD_NS, 1_000_000_000)
    return Header(stamp=Time(sec=seconds, nanosec=nanoseconds),
                  frame_id='nir_camera_optical_frame')


def make_scene(width: int = FRAME_WIDTH, height: int = FRAME_HEIGHT) -> Scene:
    """The astronaut photo on each phase's coded background, at the same place."""
    face = next(f for f in load_sample_faces() if f.name == 'astronaut').cropped()
    frames, corners = {}, None
    for index, phase in enumerate(PATTERN):
        background = phase_coded_frame(phase, width, height, seed=index)
        frames[phase], corners = place_in_frame(face, np.random.default_rng(index),
                                                scale=FACE_SCALE, frame=background)
    return Scene(frames, corners)


def write_emulator_folder(scene: Scene, folder: Path) -> None:
    """BMPs in firing order (alphabetical), as pylon's emulated camera replays them."""
    for index, phase in enumerate(PATTERN):
        path = folder / f'{index:06d}_{phase.label}.bmp'
        if not cv2.imwrite(str(path), scene.frames[phase]):
            raise FaultInjectionError(f'cannot write {path}')


# -- malformed messages ----------------------------------------------------------------------
def _truncate(frame: FlashFrame) -> None:
    frame.image.data = frame.image.data[: len(frame.image.data) // 2]


def _claim_colour(frame: FlashFrame) -> None:
    frame.image.encoding, frame.image.step = 'bgr8', frame.image.width


def _empty(frame: FlashFrame) -> None:
    frame.image.height = frame.image.width = frame.image.step = 0
    frame.image.data = []


def _absurd_size(frame: FlashFrame) -> None:
    frame.image.height = frame.image.width = frame.image.step = 100_000


def _set(field_name: str, value: object) -> Callable[[object], None]:
    return lambda message: setattr(message, field_name, value)


def _set_image(field_name: str, value: object) -> Callable[[FlashFrame], None]:
    return lambda frame: setattr(frame.image, field_name, value)


def _corner_coordinates(value: float) -> Callable[[EyeCorners], None]:
    def change(corners: EyeCorners) -> None:
        corners.right_eye_outer.x = corners.left_eye_inner.y = value
    return change


# What can be wrong with a FlashFrame / EyeCorners message, by name: each changes a copy.
FRAME_DEFECTS: dict[str, Callable[[FlashFrame], None]] = {
    'wrong_encoding': _set_image('encoding', 'yuv422'),
    'colour_claimed': _claim_colour,
    'step_too_short': lambda frame: setattr(frame.image, 'step', frame.image.width - 1),
    'truncated_data': _truncate,
    'zero_size': _empty,
    'absurd_size': _absurd_size,
    'unknown_phase': _set('phase', 7),
    'position_out_of_cycle': _set('position_in_cycle', 200),
    'huge_counter': _set('frame_counter', 2**64 - 1),
}
CORNER_DEFECTS: dict[str, Callable[[EyeCorners], None]] = {
    'nan_corners': _corner_coordinates(math.nan),
    'inf_corners': _corner_coordinates(math.inf),
    'corners_outside_frame': _corner_coordinates(1e7),
    'unknown_status': _set('status', 9),
    'huge_counter': _set('frame_counter', 2**64 - 1),
}


def malformed(message: FlashFrame | EyeCorners, defect: str) -> FlashFrame | EyeCorners:
    """A copy of a valid message with one of ``FRAME_DEFECTS`` or ``CORNER_DEFECTS``."""
    defects = CORNER_DEFECTS if isinstance(message, EyeCorners) else FRAME_DEFECTS
    broken = copy.deepcopy(message)
    defects[defect](broken)
    return broken


# -- ledger of what was really sent -----------------------------------------------------------
@dataclass
class Ledger:
    """Genuine frames and corners that reached the topics; counters of broken messages."""

    frames: dict[int, int] = field(default_factory=dict)  # counter -> phase
    stamps: dict[int, int] = field(default_factory=dict)  # counter -> header stamp (ns)
    corners: set[int] = field(default_factory=set)
    tainted: set[int] = field(default_factory=set)

    def add_frame(self, counter: int, phase: int, stamp_ns: int) -> None:
        """A frame sent (or seen) intact."""
        self.frames[counter] = phase
        self.stamps[counter] = stamp_ns

    def pair_problem(self, counter_a: int, counter_b: int) -> str:
        """What keeps two frames from being a valid pair ('' when they are one).

        Valid: a front frame, the right frame after it and that front frame's corners, all
        intact.
        """
        if {counter_a, counter_b} & self.tainted:
            return 'a broken frame'
        if counter_b != counter_a + 1:
            return 'frames not consecutive'
        if (self.frames.get(counter_a), self.frames.get(counter_b)) != (Phase.FRONT, Phase.RIGHT):
            return 'not a front + right pair of sent frames'
        if counter_a not in self.corners:
            return 'no corners of the front frame seen'
        return ''

    def valid_pair(self, counter_a: int, counter_b: int) -> bool:
        """``pair_problem`` finds nothing."""
        return not self.pair_problem(counter_a, counter_b)


# -- node processes --------------------------------------------------------------------------
class ChildNode:
    """A node executable run as a child process; dying without being asked is a crash."""

    def __init__(self, executable: str, arguments: tuple[str, ...]) -> None:
        path = shutil.which(executable, path=str(Path(sys.executable).parent))
        if path is None:
            raise FaultInjectionError(
                f'{executable} not found next to {sys.executable}: install the package first')
        self.name = executable
        self.arguments = arguments
        self._log = tempfile.TemporaryFile(mode='w+')
        # setpriv: the node gets SIGTERM should this process die without stopping it
        setpriv = shutil.which('setpriv')
        guard = [setpriv, '--pdeathsig', 'TERM', '--'] if setpriv else []
        self.process = subprocess.Popen([*guard, path, '--ros-args', *arguments],
                                        stdout=self._log, stderr=subprocess.STDOUT,
                                        env=os.environ.copy())
        self.expected_exit = False

    @property
    def crashed(self) -> bool:
        """Exited without being told to, or exited non-zero after a polite request."""
        code = self.process.poll()
        return code is not None and (not self.expected_exit or code not in (0, -signal.SIGKILL))

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        self.expected_exit = True
        self.process.kill()
        self.process.wait()

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM and wait; the node executables exit 0 on it. Killed after ``timeout_s``."""
        if self.process.poll() is None:
            self.expected_exit = True
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def output_tail(self, lines: int = 5) -> str:
        """Last lines of the node's output, for error messages."""
        self._log.flush()
        self._log.seek(0)
        return ' | '.join(self._log.read().strip().splitlines()[-lines:])


# -- diagnostics -----------------------------------------------------------------------------
class CumulativeCounters:
    """The nodes' cumulative /diagnostics counters, added up across node restarts."""

    def __init__(self) -> None:
        self._last: dict[str, dict[str, int]] = {}
        self._carried: dict[tuple[str, str], int] = defaultdict(int)
        self.restarts: Counter[str] = Counter()
        self.reports: Counter[str] = Counter()

    def update(self, node: str, values: dict[str, str]) -> None:
        """Take one diagnostics report of ``node``; a counter that fell means a restart."""
        keys = (PROGRESS_COUNTERS[node], *ANOMALY_COUNTERS[node])
        current = {key: int(values[key]) for key in keys if key in values}
        last = self._last.get(node, {})
        if any(current[key] < last.get(key, 0) for key in current):
            self.restarts[node] += 1
            for key, value in last.items():
                self._carried[node, key] += value
        self._last[node] = current
        self.reports[node] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        """Totals per (node, counter), restarts included as (node, 'restarts')."""
        totals = {(node, key): self._carried[node, key] + value
                  for node, values in self._last.items() for key, value in values.items()}
        totals.update({(node, 'restarts'): count for node, count in self.restarts.items()})
        return totals


def anomaly_increase(before: dict[tuple[str, str], int],
                     after: dict[tuple[str, str], int]) -> dict[str, int]:
    """Anomaly counters (and restarts) that went up between two snapshots."""
    rises = {}
    for (node, key), value in sorted(after.items()):
        if key != PROGRESS_COUNTERS[node] and value > before.get((node, key), 0):
            rises[f'{node}.{key}'] = value - before.get((node, key), 0)
    return rises


# -- scenario outcome ------------------------------------------------------------------------
@dataclass
class ScenarioResult:
    """One row of the report, and the expectations that did not hold."""

    fault: str
    injected: int
    unit: str
    crashes: int = 0
    unknown_during: int = 0
    valid_during: int = 0
    bad_during: int = 0
    mispaired: int = 0
    #: Why each mis-paired result was one ('scored twice' or a ``Ledger.pair_problem``).
    mispaired_why: Counter[str] = field(default_factory=Counter)
    mislabelled: int = 0
    recovery_s: float | None = None
    counters_up: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every expectation held."""
        return not self.failures

    def row(self) -> str:
        """The report line."""
        recovery = f'{self.recovery_s:.2f} s' if self.recovery_s is not None else 'never'
        counters = ', '.join(f'{k} +{v}' for k, v in self.counters_up.items()) or 'none'
        return (f'{self.fault:<18} {self.injected:>4} {self.unit:<10} {self.crashes:>7} '
                f'{self.unknown_during:>7} {self.valid_during:>5} {self.bad_during:>3} '
                f'{self.mispaired:>10} {self.mislabelled:>11} {recovery:>9}  {counters}')


HEADER = (f'{"fault":<18} {"injected":<15} {"crashes":>7} {"unknown":>7} {"valid":>5} '
          f'{"bad":>3} {"mis-paired":>10} {"mislabelled":>11} {"recovery":>9}  '
          'diagnostics counters up')


@dataclass(frozen=True)
class Expectation:
    """What a scenario must show besides no crash, no mis-pairing and no bad decision."""

    counters: tuple[str, ...]  # 'node.counter' that must go up
    unknown: bool  # the fault starves the node of valid pairs longer than its timeout


# Duplicates are absorbed by the synchronizer (the set was already emitted): nothing degrades.
EXPECTATIONS = {
    'camera_disconnect': Expectation(('camera_node.reconnects', 'camera_node.failed_grabs'),
                                     unknown=False),
    'landmark_kill': Expectation(('landmark_node.restarts', 'liveness_node.input_missing'),
                                 unknown=True),
    'liveness_restart': Expectation(('liveness_node.restarts',), unknown=False),
    'frames_dropped': Expectation(('liveness_node.input_missing',), unknown=True),
    'frames_duplicated': Expectation(('liveness_node.input_duplicate',), unknown=False),
    'frames_reordered': Expectation(('liveness_node.input_out_of_order',
                                     'liveness_node.pairs_out_of_order'), unknown=True),
    'malformed_burst': Expectation(('liveness_node.pairs_bad_image',
                                    'liveness_node.pairs_corners_outside_frame',
                                    'liveness_node.pairs_bad_input',
                                    'liveness_node.pairs_wrong_phase',
                                    'landmark_node.bad_input_total'), unknown=True),
}


# -- this process's ROS side -----------------------------------------------------------------
@dataclass
class Outgoing:
    """One message the source is about to send for a frame slot."""

    topic: str
    message: object
    counter: int  # the frame slot it belongs to
    genuine: bool = True


class Harness:
    """Publishers of the frame source and everything observed on the topics."""

    def __init__(self, context: Context) -> None:
        self.node = Node('fault_injection', context=context)
        self.matched: Counter[str] = Counter()  # topic -> endpoints ever matched
        self.publishers = {
            flash_frame_topic(phase): self.node.create_publisher(
                FlashFrame, flash_frame_topic(phase), qos_profile_system_default,
                event_callbacks=self._matched_callbacks(flash_frame_topic(phase)))
            for phase in PATTERN
        }
        self.publishers[EYE_CORNERS] = self.node.create_publisher(
            EyeCorners, EYE_CORNERS, 10, event_callbacks=self._matched_callbacks(EYE_CORNERS))
        self.results: list[tuple[float, LivenessResult]] = []
        self.node.create_subscription(
            LivenessResult, LIVENESS_RESULT, self._on_result, 100,
            event_callbacks=SubscriptionEventCallbacks(
                matched=partial(self._on_matched, LIVENESS_RESULT)))
        self.answers: dict[str, list[EyeCorners]] = {EYE_CORNERS: [], SIDE_CORNERS_TOPIC: []}
        for topic, answers in self.answers.items():
            self.node.create_subscription(EyeCorners, topic, answers.append, 100)
        self.counters = CumulativeCounters()
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._spinner = threading.Thread(target=self._spin, name='harness_spin', daemon=True)
        self._spinner.start()

    def _matched_callbacks(self, topic: str) -> PublisherEventCallbacks:
        return PublisherEventCallbacks(matched=partial(self._on_matched, topic))

    def _on_matched(self, topic: str, info: object) -> None:
        self.matched[topic] = max(self.matched[topic], int(info.total_count))

    def _on_result(self, result: LivenessResult) -> None:
        self.results.append((time.monotonic(), result))

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        for status in message.status:
            node = status.name.split(':')[0]
            if node in PROGRESS_COUNTERS:
                self.counters.update(node, {kv.key: kv.value for kv in status.values})

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def publish(self, item: Outgoing) -> None:
        """Send one message on its topic."""
        self.publishers[item.topic].publish(item.message)

    def close(self) -> None:
        """Stop spinning and destroy the node."""
        self._stop.set()
        self._spinner.join(timeout=5.0)
        self.executor.shutdown()
        self.node.destroy_node()


Injector = Callable[[int, list[Outgoing]], list[Outgoing]]


class FrameSource:
    """Publishes the scene's four phases at 120 Hz with counters and stamps, like camera_node.

    Sends the corners of every front frame too unless ``with_corners`` is off (landmark_node
    answers then). An ``injector`` may rewrite what goes out for each frame slot.
    """

    def __init__(self, harness: Harness, scene: Scene, ledger: Ledger) -> None:
        self.harness, self.scene, self.ledger = harness, scene, ledger
        self.with_corners = True
        self.injector: Injector | None = None
        self.next_counter = 0
        self.sent_at: dict[int, float] = {}  # counter -> monotonic time its slot went out
        self._epoch_ns = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the publishing thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Publish from the next cycle after every counter seen so far."""
        newest = max(self.ledger.frames, default=-1)
        self.next_counter = (newest // len(PATTERN) + 1) * len(PATTERN)
        self._epoch_ns = time.time_ns() - self.next_counter * FRAME_PERIOD_NS
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name='frame_source', daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing (no-op when not running)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _slot(self, counter: int) -> list[Outgoing]:
        phase = PATTERN[counter % len(PATTERN)]
        header = frame_header(counter, self._epoch_ns)
        outgoing = [Outgoing(flash_frame_topic(phase), self.scene.flash_frame(counter, header),
                             counter)]
        if phase == Phase.FRONT and self.with_corners:
            outgoing.append(Outgoing(EYE_CORNERS, self.scene.eye_corners(counter, header),
                                     counter))
        return outgoing

    def _run(self) -> None:
        first, started = self.next_counter, time.monotonic()
        while not self._stop.is_set():
            counter = self.next_counter
            delay = started + (counter - first) * FRAME_PERIOD_NS / 1e9 - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            outgoing = self._slot(counter)
            if self.injector is not None:
                outgoing = self.injector(counter, outgoing)
            for item in outgoing:
                self._record(item)
                self.harness.publish(item)
            self.sent_at[counter] = time.monotonic()
            self.next_counter += 1

    def _record(self, item: Outgoing) -> None:
        message = item.message
        if not item.genuine:
            self.ledger.tainted.update({item.counter, int(message.frame_counter)})
        elif isinstance(message, EyeCorners):
            self.ledger.corners.add(item.counter)
        else:
            self.ledger.add_frame(item.counter, int(message.phase),
                                  stamp_nanoseconds(message.header.stamp))


# -- injectors -------------------------------------------------------------------------------
class WindowInjector:
    """Rewrites the source's messages for the frame slots of a window of whole cycles."""

    unit = 'messages'

    def __init__(self, first_counter: int, cycles: int = FAULT_CYCLES) -> None:
        self.first = first_counter
        self.end = first_counter + cycles * len(PATTERN)
        self.injected = 0

    def __call__(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Rewrite inside the window, pass through outside it."""
        if self.first <= counter < self.end:
            return self.rewrite(counter, outgoing)
        return outgoing

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """What goes out instead of ``outgoing`` for this slot."""
        raise NotImplementedError


class DropFrames(WindowInjector):
    """Every right frame and a random 30 % of the others are lost."""

    unit = 'frames'

    def __init__(self, first_counter: int, seed: int = 0) -> None:
        super().__init__(first_counter)
        self._rng = np.random.default_rng(seed)

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Drop the frame (its corners stay: the landmark node saw it)."""
        phase = PATTERN[counter % len(PATTERN)]
        if phase == Phase.RIGHT or self._rng.random() < 0.3:
            self.injected += 1
            return [item for item in outgoing if item.topic == EYE_CORNERS]
        return outgoing


class DuplicateMessages(WindowInjector):
    """Every frame and corners message is delivered twice."""

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Each message, then the same again."""
        self.injected += len(outgoing)
        return outgoing + outgoing


class ReorderCycles(WindowInjector):
    """Every other cycle is held back and delivered after the cycle that follows it."""

    unit = 'cycles'

    def __init__(self, first_counter: int) -> None:
        super().__init__(first_counter)
        self._held: list[Outgoing] = []

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Hold even cycles of the window; release them at the end of the next one."""
        cycle, position = divmod(counter - self.first, len(PATTERN))
        if cycle % 2 == 0:
            self._held += outgoing
            return []
        if position < len(PATTERN) - 1:
            return outgoing
        late, self._held = self._held, []
        self.injected += 1
        return outgoing + late


class MalformedBurst(WindowInjector):
    """One broken message per cycle, every kind in turn, in place of the genuine one."""

    def rewrite(self, counter: int, outgoing: list[Outgoing]) -> list[Outgoing]:
        """Replace the front frame, right frame or corners of the cycle by a broken copy."""
        cycle = (counter - self.first) // len(PATTERN)
        topic, defect = MALFORMED_KINDS[cycle % len(MALFORMED_KINDS)]
        rewritten = []
        for item in outgoing:
            if item.topic == topic:
                item = Outgoing(topic, malformed(item.message, defect), counter, genuine=False)
                self.injected += 1
            rewritten.append(item)
        return rewritten


MALFORMED_KINDS = (
    *((flash_frame_topic(Phase.FRONT), defect) for defect in FRAME_DEFECTS),
    *((flash_frame_topic(Phase.RIGHT), defect) for defect in FRAME_DEFECTS),
    *((EYE_CORNERS, defect) for defect in CORNER_DEFECTS),
)


# -- scenarios -------------------------------------------------------------------------------
LIVENESS_ONLY = {'liveness_node': LIVENESS_ARGUMENTS}
WITH_LANDMARKS = {**LIVENESS_ONLY, 'landmark_node': LANDMARK_ARGUMENTS}
WITH_LANDMARKS_ASIDE = {
    **LIVENESS_ONLY,
    'landmark_node': (*LANDMARK_ARGUMENTS, '-r', f'{EYE_CORNERS}:={SIDE_CORNERS_TOPIC}'),
}
# Topics on which this process sees a node's endpoints match once the node is up.
ENDPOINTS = {
    'liveness_node': (flash_frame_topic(Phase.FRONT), flash_frame_topic(Phase.RIGHT),
                      EYE_CORNERS, LIVENESS_RESULT),
    'landmark_node': (flash_frame_topic(Phase.FRONT),),
}


@dataclass
class Fault:
    """An injected fault: what, how much, when it began and ended (monotonic seconds)."""

    injected: int
    unit: str
    start: float
    end: float
    counter_after: int  # pairs from this frame counter on were sent after the fault
    before: dict[tuple[str, str], int]  # diagnostics counters when it began


class FaultInjection:
    """Runs scenarios one after another; node processes and the frame source carry over."""

    def __init__(self, context: Context, workdir: Path) -> None:
        self.context, self.workdir = context, workdir
        self.scene = make_scene()
        self.ledger = Ledger()
        self.harness = Harness(context)
        self.source = FrameSource(self.harness, self.scene, self.ledger)
        self.children: dict[str, ChildNode] = {}
        self._retired: list[ChildNode] = []
        self._crashed: set[int] = set()  # pids already counted
        self.mislabelled = 0
        self.landmark_answers: str | None = None  # topic where landmark_node answers
        self._answers_read = 0
        self._camera_running = False

    # -- processes -------------------------------------------------------------------------
    def _require(self, wanted: dict[str, tuple[str, ...]]) -> None:
        """Run exactly these executables with these arguments, and wait until they are up."""
        for name, child in list(self.children.items()):
            if wanted.get(name) != child.arguments:
                self._retire(name).stop()
        self._start([name for name in wanted if name not in self.children], wanted)

    def _start(self, names: list[str], arguments: dict[str, tuple[str, ...]]) -> None:
        matched_before = self.harness.matched.copy()
        for name in names:
            self.children[name] = ChildNode(name, arguments[name])
        needed = Counter(topic for name in names for topic in ENDPOINTS[name])
        deadline = time.monotonic() + START_TIMEOUT_S
        while any(self.harness.matched[topic] - matched_before[topic] < count
                  for topic, count in needed.items()):
            for name in names:
                child = self.children[name]
                if child.process.poll() is not None:
                    raise FaultInjectionError(
                        f'{name} exited with {child.process.returncode} while starting: '
                        f'{child.output_tail()}')
            if time.monotonic() > deadline:
                raise connection_error(
                    f'{", ".join(names)} not connected after {START_TIMEOUT_S:.0f} s '
                    f'(endpoints matched: {dict(self.harness.matched - matched_before)})')
            time.sleep(0.02)

    def _retire(self, name: str) -> ChildNode:
        child = self.children.pop(name)
        self._retired.append(child)
        return child

    def _process_states(self) -> str:
        return '; '.join(
            f'{name}: {"running" if child.process.poll() is None else "exited"} '
            f'{child.output_tail(2)}' for name, child in self.children.items())

    def _crashes(self) -> int:
        """Node processes that died on their own since the last call."""
        crashed = [child for child in (*self.children.values(), *self._retired)
                   if child.crashed and child.process.pid not in self._crashed]
        self._crashed.update(child.process.pid for child in crashed)
        return len(crashed)

    def close(self) -> None:
        """Stop the source and every node process, destroy the ROS side."""
        self.source.stop()
        for name in list(self.children):
            self._retire(name).stop()
        self.harness.close()

    # -- observations ----------------------------------------------------------------------
    def _on_camera_frame(self, frame: FlashFrame) -> None:
        counter, position = int(frame.frame_counter), int(frame.position_in_cycle)
        shown = decode_phase(image_to_array(frame.image))
        if (frame.phase != PATTERN[counter % len(PATTERN)] or shown != frame.phase
                or position != counter % len(PATTERN)
                or frame.cycle_index != counter // len(PATTERN)):
            self.mislabelled += 1
            self.ledger.tainted.add(counter)
        else:
            self.ledger.add_frame(counter, int(frame.phase), stamp_nanoseconds(frame.header.stamp))

    def _read_landmark_answers(self) -> None:
        """Check new answers of landmark_node; its corners of intact front frames count."""
        if self.landmark_answers is None:
            return
        answers = self.harness.answers[self.landmark_answers]
        for answer in answers[self._answers_read:]:
            counter = int(answer.frame_counter)
            if counter in self.ledger.tainted:
                continue
            if (self.ledger.frames.get(counter) != Phase.FRONT
                    or self.ledger.stamps[counter] != stamp_nanoseconds(answer.header.stamp)):
                self.mislabelled += 1
            elif answer.status == EyeCorners.STATUS_OK:
                self.ledger.corners.add(counter)
        self._answers_read = len(answers)

    def _listen_to_landmarks(self, topic: str | None) -> None:
        self._read_landmark_answers()  # those of a landmark_node retired just now
        self.landmark_answers = topic
        self._answers_read = len(self.harness.answers[topic]) if topic else 0

    def _first_decision(self, since: float, min_counter: int) -> float | None:
        """Arrival of the first LIVE/SPOOF on a valid pair from ``min_counter`` on."""
        self._read_landmark_answers()
        for arrival, result in list(self.harness.results):
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
            time.sleep(0.02)
        return None

    def _newest_counter(self) -> int:
        return max(self.ledger.frames, default=0)

    def _baseline(self) -> None:
        """Wait until the pipeline decides on valid pairs, so the fault hits a working system."""
        if self._await_decision(time.monotonic(), self._newest_counter(),
                                START_TIMEOUT_S) is None:
            raise connection_error(
                f'no LIVE/SPOOF decision before the fault ({self._process_states()})')

    def _fresh_counters(self) -> dict[tuple[str, str], int]:
        """Counter totals from diagnostics reports made after now (two per node)."""
        nodes = {*self.children, *(['camera_node'] if self._camera_running else [])}
        wanted = {node: self.harness.counters.reports[node] + 2 for node in nodes}
        deadline = time.monotonic() + 10 * DIAGNOSTICS_PERIOD_S + 2.0
        while any(self.harness.counters.reports[node] < count for node, count in wanted.items()):
            if time.monotonic() > deadline:
                silent = sorted(node for node, count in wanted.items()
                                if self.harness.counters.reports[node] < count)
                raise connection_error(f'no diagnostics from {", ".join(silent)} '
                                       f'({self._process_states()})')
            time.sleep(0.02)
        return self.harness.counters.snapshot()

    # -- the scenarios ---------------------------------------------------------------------
    def run(self, name: str) -> ScenarioResult:
        """Run one scenario and judge it."""
        first_result = len(self.harness.results)
        mislabelled_before = self.mislabelled
        with getattr(self, f'_{name}')() as fault:
            recovered_at = self._await_decision(fault.end, fault.counter_after, RECOVERY_WAIT_S)
            after = self._fresh_counters()
        self._read_landmark_answers()
        result = ScenarioResult(name, fault.injected, fault.unit, crashes=self._crashes(),
                                mislabelled=self.mislabelled - mislabelled_before,
                                counters_up=anomaly_increase(fault.before, after))
        if recovered_at is not None:
            result.recovery_s = recovered_at - fault.end
        self._judge_results(result, fault, self.harness.results[first_result:], recovered_at)
        self._check_expectations(result, EXPECTATIONS[name])
        return result

    def _judge_results(self, result: ScenarioResult, fault: Fault,
                       results: list[tuple[float, LivenessResult]],
                       recovered_at: float | None) -> None:
        degraded_until = recovered_at if recovered_at is not None else math.inf
        scored: Counter[tuple[int, int]] = Counter()
        for arrival, message in results:
            pair = (int(message.frame_counter_a), int(message.frame_counter_b))
            is_scored = not math.isnan(message.score)
            scored[pair] += is_scored
            problem = self._result_problem(message, pair, scored[pair])
            good = is_scored and not problem
            decided = message.decision != LivenessResult.DECISION_UNKNOWN
            if is_scored and problem:
                result.mispaired += 1
                result.mispaired_why[problem] += 1
            result.bad_during += decided and not good
            if fault.start <= arrival <= degraded_until:
                result.unknown_during += not decided
                result.valid_during += decided and good

    def _result_problem(self, message: LivenessResult, pair: tuple[int, int],
                        times_scored: int) -> str:
        """Why a result is not the one score of a valid pair ('' when it is)."""
        if times_scored > 1:
            return 'scored twice'
        if (message.phase_a, message.phase_b) != (Phase.FRONT, Phase.RIGHT):
            return 'phases not front + right'
        return self.ledger.pair_problem(*pair)

    @staticmethod
    def _check_expectations(result: ScenarioResult, expectation: Expectation) -> None:
        checks = [
            (result.crashes == 0, f'{result.crashes} node process(es) died'),
            (result.mispaired == 0, f'{result.mispaired} mis-paired result(s): ' + ', '.join(
                f'{why} x{count}' for why, count in result.mispaired_why.items())),
            (result.mislabelled == 0, f'{result.mislabelled} mislabelled message(s)'),
            (result.bad_during == 0, f'{result.bad_during} LIVE/SPOOF from a bad pair'),
            (result.unknown_during > 0 or not expectation.unknown, 'no UNKNOWN while degraded'),
            (result.recovery_s is not None and result.recovery_s <= RECOVERY_LIMIT_S,
             f'no recovery within {RECOVERY_LIMIT_S:.1f} s'),
            *((counter in result.counters_up, f'{counter} did not go up')
              for counter in expectation.counters),
        ]
        result.failures = [text for ok, text in checks if not ok]

    def _use_source(self, with_corners: bool) -> None:
        self.source.with_corners = with_corners
        if not self.source.running:
            self.source.start()

    @contextlib.contextmanager
    def _camera(self) -> Iterator[CameraNode]:
        """camera_node in this process on pylon's emulated camera, replaying the scene."""
        folder = self.workdir / 'emulator_frames'
        folder.mkdir(exist_ok=True)
        write_emulator_folder(self.scene, folder)
        parameters = {'emulated_cameras': 1, 'emulator_image_dir': str(folder),
                      'width': FRAME_WIDTH, 'height': FRAME_HEIGHT, 'retry_delay_s': 0.1,
                      'diagnostics_period_s': DIAGNOSTICS_PERIOD_S}
        # its parameter dump and reconnect messages would interleave with the report table
        rclpy.logging.set_logger_level('camera_node', rclpy.logging.LoggingSeverity.FATAL)
        camera = CameraNode(context=self.context, parameter_overrides=[
            Parameter(name, value=value) for name, value in parameters.items()])
        subscriptions = [self.harness.node.create_subscription(
            FlashFrame, flash_frame_topic(phase), self._on_camera_frame, 100)
            for phase in PATTERN]
        self.harness.executor.add_node(camera)
        self._camera_running = True
        try:
            yield camera
        finally:
            self._camera_running = False
            self.harness.executor.remove_node(camera)
            camera.destroy_node()
            for subscription in subscriptions:
                self.harness.node.destroy_subscription(subscription)

    @contextlib.contextmanager
    def _camera_disconnect(self) -> Iterator[Fault]:
        self.source.stop()
        self._require(WITH_LANDMARKS)
        self._listen_to_landmarks(EYE_CORNERS)
        with self._camera() as camera:
            self._baseline()
            before = self._fresh_counters()
            statistics = camera.stream.statistics
            start = time.monotonic()
            for unplug in range(UNPLUGS):
                time.sleep(UNPLUG_SPACING_S if unplug else 0.0)
                reconnects = statistics.reconnects
                camera.stream.camera.camera.FirePnPCallback.Execute()  # the emulator's removal
                deadline = time.monotonic() + START_TIMEOUT_S
                while statistics.reconnects == reconnects:
                    if time.monotonic() > deadline:
                        raise FaultInjectionError('the emulated camera did not reconnect')
                    time.sleep(0.005)
            yield Fault(UNPLUGS, 'unplugs', start, time.monotonic(), self._newest_counter() + 1,
                        before)

    @contextlib.contextmanager
    def _landmark_kill(self) -> Iterator[Fault]:
        self._require(WITH_LANDMARKS)
        self._use_source(with_corners=False)
        self._listen_to_landmarks(EYE_CORNERS)
        self._baseline()
        before = self._fresh_counters()
        start = time.monotonic()
        self._retire('landmark_node').kill()
        time.sleep(FAULT_CYCLES / 30)  # out as long as the other faults last
        self._start(['landmark_node'], WITH_LANDMARKS)
        yield Fault(1, 'SIGKILL', start, time.monotonic(), self.source.next_counter, before)

    @contextlib.contextmanager
    def _liveness_restart(self) -> Iterator[Fault]:
        self._require(LIVENESS_ONLY)
        self._use_source(with_corners=True)
        self._listen_to_landmarks(None)
        self._baseline()
        before = self._fresh_counters()
        start = time.monotonic()
        self._retire('liveness_node').stop()
        self._start(['liveness_node'], LIVENESS_ONLY)
        yield Fault(1, 'restart', start, time.monotonic(), self.source.next_counter, before)

    @contextlib.contextmanager
    def _window_fault(self, make_injector: Callable[[int], WindowInjector],
                      nodes: dict[str, tuple[str, ...]],
                      landmark_answers: str | None = None) -> Iterator[Fault]:
        """A fault the source injects into a window of cycles."""
        self._require(nodes)
        self._use_source(with_corners=True)
        self._listen_to_landmarks(landmark_answers)
        self._baseline()
        before = self._fresh_counters()
        first = (self.source.next_counter // len(PATTERN) + 2) * len(PATTERN)
        injector = make_injector(first)
        self.source.injector = injector
        while self.source.next_counter <= injector.end:
            time.sleep(0.01)
        self.source.injector = None
        yield Fault(injector.injected, injector.unit, self.source.sent_at[first],
                    self.source.sent_at[injector.end - 1], injector.end, before)

    def _frames_dropped(self) -> contextlib.AbstractContextManager[Fault]:
        return self._window_fault(DropFrames, LIVENESS_ONLY)

    def _frames_duplicated(self) -> contextlib.AbstractContextManager[Fault]:
        return self._window_fault(DuplicateMessages, LIVENESS_ONLY)

    def _frames_reordered(self) -> contextlib.AbstractContextManager[Fault]:
        return self._window_fault(ReorderCycles, LIVENESS_ONLY)

    def _malformed_burst(self) -> contextlib.AbstractContextManager[Fault]:
        return self._window_fault(MalformedBurst, WITH_LANDMARKS_ASIDE, SIDE_CORNERS_TOPIC)


def run_scenarios(names: list[str] | tuple[str, ...] = SCENARIOS,
                  progress: bool = False) -> list[ScenarioResult]:
    """Run the named scenarios in their canonical order and return one result each.

    Needs the local-only DDS environment in ``os.environ`` (``apply_local_dds_environment``).
    A scenario whose shared memory another process deleted is repeated once with fresh
    participants: the fault lies with the machine, not with the nodes.
    """
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise FaultInjectionError(f'unknown scenario(s): {", ".join(unknown)}')
    ordered = [name for name in SCENARIOS if name in names]
    results = []
    with tempfile.TemporaryDirectory(prefix='fault_injection_') as workdir:
        session = _Session(Path(workdir))
        try:
            for name in tqdm(ordered, desc='fault scenarios', unit='scenario',
                             disable=not progress):
                try:
                    results.append(session.injection.run(name))
                except SharedMemoryLostError as error:
                    print(f'repeating {name} with fresh participants: {error}',
                          file=sys.stderr)
                    session.close()
                    session = _Session(Path(workdir))
                    results.append(session.injection.run(name))
        finally:
            session.close()
    return results


class _Session:
    """A private rclpy context with a FaultInjection on it."""

    def __init__(self, workdir: Path) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        try:
            self.injection = FaultInjection(self.context, workdir)
        except BaseException:
            rclpy.try_shutdown(context=self.context)
            raise

    def close(self) -> None:
        try:
            self.injection.close()
        finally:
            rclpy.try_shutdown(context=self.context)


def report(results: list[ScenarioResult]) -> str:
    """The table, a summary line, and every expectation that did not hold."""
    lines = [HEADER, *(result.row() for result in results)]
    recoveries = [r.recovery_s for r in results if r.recovery_s is not None]
    worst = f'{max(recoveries):.2f} s' if recoveries else 'n/a'
    lines.append(
        f'{len(results)} scenarios, {sum(r.injected for r in results)} faults injected, '
        f'crashes {sum(r.crashes for r in results)}, mis-paired '
        f'{sum(r.mispaired for r in results)}, mislabelled {sum(r.mislabelled for r in results)}, '
        f'LIVE/SPOOF from bad pairs {sum(r.bad_during for r in results)}, worst recovery {worst}')
    failed = [r for r in results if not r.ok]
    lines += [f'FAILED {r.fault}: {"; ".join(r.failures)}' for r in failed]
    lines.append('all expectations held' if not failed else f'{len(failed)} scenario(s) failed')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: run the scenarios, print the table; exit 0 only if all held."""
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


if __name__ == '__main__':
    sys.exit(main())
