"""One benchmark run of a layout: start the processes, observe the topics, measure, stop, clean up.

The frame source (``frame_source``), the nodes (two processes, or one ``antispoof_pipeline
--nodes landmark,liveness``) and this observer run in separate processes over the
shared-memory-only DDS profile. The observer receives ``landmarks/eye_corners``,
``liveness/result`` and ``/diagnostics`` (small messages, never the frames). The
measurement starts once the first result with a pair and both nodes' diagnostics arrived
and the warm-up (first detections, DDS discovery) has passed; frames, answers and
latencies are then counted by their stamps inside the window, so a frame published at its
end still gets the drain time to come through. The source shows one face throughout, so the
time to verdict is taken once per run, from the first front frame sent (the face appears to
the nodes, which are subscribed before the first frame goes out) to the first fused LIVE or
SPOOF received.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
import signal
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from tqdm import tqdm
import yaml

from antispoof_ros.flash import DEFAULT_PATTERN, PAIR_CONFIGS, PairConfig, Phase
from antispoof_ros.msg import EyeCorners, LivenessResult
from antispoof_ros.nodes.messages import stamp_nanoseconds
from antispoof_ros.nodes.topics import EYE_CORNERS, LIVENESS_RESULT
from antispoof_ros.paths import SOURCE_TREE
from antispoof_ros.tools.benchmarks.system import statistics
from antispoof_ros.tools.benchmarks.system.statistics import NS_PER_S, in_window, latency_summary
from antispoof_ros.tools.harness.local_dds import local_dds_environment
from antispoof_ros.tools.harness.processes import NodeProcess, NodeProcesses, log_folder

REPO = SOURCE_TREE
DEFAULT_PARAMS = REPO / 'config' / 'antispoof.yaml'
LAYOUTS = ('separate', 'single')
FRAME_SOURCE = 'frame_source'
STARTUP_TIMEOUT_S = 120.0  # frame loading, dlib and onnxruntime start on a busy machine
DRAIN_S = 2.0
MINUTE_S = 60.0
# /diagnostics status names end with these (``<node name>: landmarks`` / ``: liveness``)
LANDMARK_STATUS, LIVENESS_STATUS = ': landmarks', ': liveness'
RESULT_QOS = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
DECISIONS = {LivenessResult.DECISION_UNKNOWN: 'unknown', LivenessResult.DECISION_LIVE: 'live',
             LivenessResult.DECISION_SPOOF: 'spoof'}


class BenchmarkError(RuntimeError):
    """The benchmark cannot go on; the message is a complete one-line reason."""


@dataclass(frozen=True)
class RunSettings:
    """What every layout's run shares."""

    seconds: float
    bag: Path
    warmup_s: float = 5.0
    soak: bool = False
    params_file: Path = DEFAULT_PARAMS
    progress: bool = True


def measured_pair(params_file: Path) -> tuple[PairConfig, Phase]:
    """The liveness node's pair and the landmark node's phase, as the params file sets them."""
    try:
        params = yaml.safe_load(params_file.read_text()) or {}
        liveness = params.get('liveness_node', {}).get('ros__parameters', {})
        landmark = params.get('landmark_node', {}).get('ros__parameters', {})
        return (PAIR_CONFIGS[liveness.get('pair', 'P2')],
                Phase.from_name(landmark.get('phase', 'front')))
    except (OSError, yaml.YAMLError, AttributeError, KeyError, ValueError) as error:
        raise BenchmarkError(f'unusable params file {params_file}: {error}') from None


def layout_commands(layout: str, params_file: Path) -> dict[str, list[str]]:
    """The node processes of ``layout``, by process name (the executables beside python)."""
    executables = Path(sys.executable).parent
    ros_args = ['--ros-args', '--params-file', str(params_file)]
    if layout == 'separate':
        return {name: [str(executables / name), *ros_args]
                for name in ('landmark_node', 'liveness_node')}
    if layout == 'single':
        return {'antispoof_pipeline': [str(executables / 'antispoof_pipeline'),
                                       '--nodes', 'landmark,liveness', *ros_args]}
    raise ValueError(f"unknown layout '{layout}' (known: {', '.join(LAYOUTS)})")


@dataclass
class Observer:
    """Records every EyeCorners, LivenessResult and the newest /diagnostics per node."""

    node: Node
    corners: list[tuple[int, int, int]] = field(default_factory=list)  # stamp, arrival, status
    # (frame B stamp ns or 0 without a pair, arrival ns, score, fused decision, the liveness
    # node's own latency_ms: frame B arrival -> result published)
    results: list[tuple[int, int, float, int, float]] = field(default_factory=list)
    diagnostics: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.node.create_subscription(EyeCorners, EYE_CORNERS, self.on_corners, RESULT_QOS)
        self.node.create_subscription(LivenessResult, LIVENESS_RESULT, self.on_result,
                                      RESULT_QOS)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.on_diagnostics, 10)

    def on_corners(self, message: EyeCorners) -> None:  # noqa: D102
        self.corners.append((stamp_nanoseconds(message.header.stamp), time.time_ns(),
                             message.status))

    def on_result(self, message: LivenessResult) -> None:  # noqa: D102
        arrival_ns = time.time_ns()
        stamp_b = stamp_nanoseconds(message.stamp_b)
        self.results.append((stamp_b, arrival_ns, message.score, message.decision,
                             message.latency_ms))

    def on_diagnostics(self, message: DiagnosticArray) -> None:  # noqa: D102
        for status in message.status:
            self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}

    @property
    def ready(self) -> bool:
        """A result with a pair and both nodes' diagnostics arrived: the chain works."""
        return (any(result[0] for result in self.results)
                and all(any(name.endswith(suffix) for name in self.diagnostics)
                        for suffix in (LANDMARK_STATUS, LIVENESS_STATUS)))


class Spinner:
    """Spins the observer while watching that every child still runs."""

    def __init__(self, executor: SingleThreadedExecutor, children: list[NodeProcess]) -> None:
        self.executor = executor
        self.children = children

    def until(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Spin until ``done()``; BenchmarkError when a child dies or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while not done():
            for child in self.children:
                if problem := child.problem():
                    raise BenchmarkError(problem)
            if time.monotonic() > deadline:
                raise BenchmarkError(f'{what} after {timeout_s:.0f} s')
            self.executor.spin_once(timeout_sec=0.05)

    def for_seconds(self, seconds: float,
                    tick: Callable[[float], None] | None = None) -> None:
        """Spin for ``seconds``, calling ``tick(elapsed seconds)`` on every pass."""
        start = time.monotonic()

        def done() -> bool:
            elapsed = time.monotonic() - start
            if tick is not None:
                tick(elapsed)
            return elapsed >= seconds

        self.until(done, seconds + 1.0, 'spinning did not end')


@dataclass
class Window:
    """What was sampled from the processes over the measurement window."""

    start_ns: int = 0
    end_ns: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)
    peak_kib: dict[str, int] = field(default_factory=dict)
    rss_kib: dict[str, list[int]] = field(default_factory=dict)  # window start, each minute, end
    diagnostics: list[dict[str, dict[str, str]]] = field(default_factory=list)  # start, end

    @property
    def seconds(self) -> float:
        """Length of the window."""
        return (self.end_ns - self.start_ns) / NS_PER_S

    def sample_rss(self, children: list[NodeProcess]) -> None:
        """Append every process's current resident memory."""
        for child in children:
            self.rss_kib.setdefault(child.name, []).append(child.rss_kib())


def distinct_domains(count: int) -> list[int]:
    """``count`` different random local-only domain ids, one per layout.

    A layout never meets what is left of the one before on its domain (participants still
    being torn down, shared-memory files the clean-up unlinked).
    """
    domains: set[int] = set()
    while len(domains) < count:
        domains.add(int(local_dds_environment()['ROS_DOMAIN_ID']))
    return list(domains)


def run_layout(layout: str, settings: RunSettings, domain_id: int) -> dict:
    """Run ``layout`` on ``domain_id`` and return its report (see ``build_report``).

    The shared-memory-only profile must already be in this process's environment
    (``local_dds.apply_local_dds_environment``) before its first participant starts. The
    processes' logs stay in a temporary folder when the run fails, named in the error.
    """
    pair, landmark_phase = measured_pair(settings.params_file)
    commands = layout_commands(layout, settings.params_file)
    with (log_folder('system_benchmark_') as folder,
          NodeProcesses(folder, local_dds_environment(domain_id)) as processes):
        stats_file = folder / 'frames.npz'
        context = Context()
        try:
            nodes = [processes.start(name, command, cwd=REPO)
                     for name, command in commands.items()]
            # started last, so stopped first: no frames while the nodes stop
            source = processes.start(FRAME_SOURCE, [
                sys.executable, '-m', 'antispoof_ros.tools.benchmarks.system.frame_source',
                str(settings.bag), '--stats', str(stats_file)], cwd=REPO)
            # no rclpy handler: Ctrl-C is a plain KeyboardInterrupt, cleaned up below
            rclpy.init(context=context, domain_id=domain_id,
                       signal_handler_options=SignalHandlerOptions.NO)
            observer, window = _observe(layout, settings, source, nodes, context)
            source.stop()  # writes the per-frame record
            if source.exit_code != 0 or not stats_file.is_file():
                raise BenchmarkError(source.problem() or 'frame source wrote no statistics')
            frames = dict(np.load(stats_file))
        finally:
            rclpy.try_shutdown(context=context)
    report = build_report(layout, settings, pair, landmark_phase, frames, observer, window,
                          list(commands))
    report['pids'] = {process.name: process.pid for process in processes}  # all ended now
    return report


def _observe(layout: str, settings: RunSettings, source: NodeProcess,
             nodes: list[NodeProcess], context: Context) -> tuple[Observer, Window]:
    """Wait for the first pair, skip the warm-up, measure the window, stop frames, drain."""
    node = rclpy.create_node('system_benchmark_observer', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    children = [source, *nodes]
    try:
        observer = Observer(node)
        spinner = Spinner(executor, children)
        window = Window()
        with tqdm(total=round(settings.warmup_s + settings.seconds), unit='s',
                  desc=f'{layout}: waiting for the first pair',
                  disable=not settings.progress) as bar:
            try:
                spinner.until(lambda: observer.ready, STARTUP_TIMEOUT_S,
                              f'{layout}: no LivenessResult with a pair and diagnostics')
            except BenchmarkError as error:
                last_lines = '; '.join(f"{child.name} last logged '{child.last_error_line()}' "
                                       f'(log: {child.where_logged})' for child in nodes)
                raise BenchmarkError(
                    f'{error} (received {len(observer.corners)} EyeCorners, '
                    f'{len(observer.results)} LivenessResults, diagnostics of '
                    f"{', '.join(observer.diagnostics) or 'no node'}; {last_lines})") from None
            bar.set_description(f'{layout} (first {settings.warmup_s:g} s: warm-up)')
            spinner.for_seconds(settings.warmup_s, lambda t: bar.update(int(t) - bar.n))
            _window_edge(window, children, observer, start=True)
            next_minute = [MINUTE_S]

            def tick(elapsed: float) -> None:
                bar.update(int(settings.warmup_s + elapsed) - bar.n)
                if settings.soak and elapsed >= next_minute[0]:
                    window.sample_rss(children)
                    next_minute[0] += MINUTE_S

            spinner.for_seconds(settings.seconds, tick)
            _window_edge(window, children, observer, start=False)
        source.send_signal(signal.SIGINT)  # no new frames; answers still come
        spinner.children = nodes
        spinner.for_seconds(DRAIN_S)
        window.diagnostics.append(dict(observer.diagnostics))
        return observer, window
    finally:
        executor.shutdown()
        node.destroy_node()


def _window_edge(window: Window, children: list[NodeProcess], observer: Observer,
                 start: bool) -> None:
    """Sample time, CPU and memory at the start or the end of the measurement window."""
    now_ns = time.time_ns()
    for child in children:
        cpu = child.cpu_seconds()
        window.cpu_s[child.name] = cpu - window.cpu_s.get(child.name, 0.0) if not start else cpu
        if not start:
            window.peak_kib[child.name] = child.peak_memory_kib()
    window.sample_rss(children)
    if start:
        window.start_ns = now_ns
        window.diagnostics.append(dict(observer.diagnostics))
    else:
        window.end_ns = now_ns


def _counter_delta(diagnostics: list[dict[str, dict[str, str]]], status_suffix: str,
                   is_counter: Callable[[str], bool]) -> dict[str, int]:
    """Change over the window of the cumulative counters in one node's /diagnostics status.

    The snapshots are the newest statuses at the window's start and after the drain, so the
    counts cover up to one diagnostics period more than the window.
    """
    before, after = (next((values for name, values in snapshot.items()
                           if name.endswith(status_suffix)), {}) for snapshot in diagnostics)
    return {key: int(after[key]) - int(before[key]) for key in after
            if is_counter(key) and key in before}


def _columns(rows: list[tuple], dtypes: tuple[type, ...]) -> list[np.ndarray]:
    """The columns of ``rows`` as arrays (empty arrays when there is no row)."""
    return [np.array([row[i] for row in rows], dtype=dtype) for i, dtype in enumerate(dtypes)]


def build_report(layout: str, settings: RunSettings, pair: PairConfig, landmark_phase: Phase,
                 frames: dict[str, np.ndarray], observer: Observer, window: Window,
                 node_names: list[str]) -> dict:
    """Every figure of one layout's run, with PASS/FAIL per target."""
    start, end = window.start_ns, window.end_ns
    sent = in_window(frames['stamp_ns'], start, end)
    sent_per_phase = {phase.label: int(np.sum(sent & (frames['phase'] == phase)))
                      for phase in DEFAULT_PATTERN}
    corner_stamps, corner_arrivals, corner_status = _columns(observer.corners,
                                                             (np.int64, np.int64, int))
    corners_in = in_window(corner_stamps, start, end)
    stamps_b, arrivals, scores, decisions, node_latencies = _columns(
        observer.results, (np.int64, np.int64, float, int, float))
    with_pair = in_window(stamps_b, start, end)
    pairs = int(np.sum(with_pair))
    latencies_ms = (arrivals[with_pair] - stamps_b[with_pair]) / 1e6
    front_sent = sent_per_phase[landmark_phase.label]
    cycles_sent = sent_per_phase[pair.phase_b.label]  # a cycle is evaluated on its frame B
    frames_lost = {'eye_corners': front_sent - len(np.unique(corner_stamps[corners_in])),
                   'pairs': cycles_sent - pairs}
    cpu_percent = {name: 100 * cpu / window.seconds for name, cpu in window.cpu_s.items()}
    total_cores = sum(cpu_percent[name] for name in node_names) / 100
    latency = latency_summary(latencies_ms)
    verdicts = (stamps_b > 0) & (decisions != LivenessResult.DECISION_UNKNOWN)
    fronts = frames['stamp_ns'][frames['phase'] == landmark_phase]
    time_to_verdict = ([(arrivals[verdicts].min() - fronts.min()) / 1e6]
                       if verdicts.any() and fronts.size else [])
    # dropped or unusable sets (pairs_<reason>) and, where the node counts them, inputs it
    # saw lost, duplicated or reordered (input_<anomaly>)
    liveness_counters = _counter_delta(
        window.diagnostics, LIVENESS_STATUS,
        lambda key: key.startswith(('pairs_', 'input_')) and key != 'pairs_per_s')
    report = {
        'layout': layout,
        'pair': pair.name,
        'window_s': window.seconds,
        'warmup_s': settings.warmup_s,
        'frames_sent': sent_per_phase,
        'publisher_late_ms': latency_summary(frames['late_ns'][sent] / 1e6),
        'front_frames_sent': front_sent,
        'eye_corners_received': int(np.sum(corners_in)),
        'no_face': int(np.sum(corners_in & (corner_status == EyeCorners.STATUS_NO_FACE))),
        'cycles_sent': cycles_sent,
        'results_with_pair': pairs,
        'pairs_scored': int(np.sum(with_pair & ~np.isnan(scores))),
        'results_without_pair': int(np.sum((stamps_b == 0) & in_window(arrivals, start, end))),
        'decisions': {name: int(np.sum(with_pair & (decisions == code)))
                      for code, name in DECISIONS.items()},
        'frames_lost': frames_lost,
        'node_counters': {
            'landmark': _counter_delta(window.diagnostics, LANDMARK_STATUS,
                                       lambda key: key.endswith('_total')),
            'liveness': {key: value for key, value in liveness_counters.items()
                         if value or key == 'pairs_accepted'},
        },
        'pair_rate_per_s': pairs / window.seconds,
        'latency_ms': latency,
        'time_to_verdict_ms': statistics.verdict_time_summary(time_to_verdict),
        # where the end-to-end time goes: the corners of frame A (its stamp -> EyeCorners here;
        # frame B's stamp comes one frame period later) and the liveness node's own share
        'eye_corners_latency_ms': latency_summary(
            (corner_arrivals[corners_in] - corner_stamps[corners_in]) / 1e6),
        'liveness_node_latency_ms': latency_summary(node_latencies[with_pair]),
        'cpu_percent_of_one_core': cpu_percent,
        'total_node_cpu_cores': total_cores,
        'peak_memory_mib': {name: kib / 1024 for name, kib in window.peak_kib.items()},
        'node_processes': node_names,
        'targets': statistics.target_verdicts(frames_lost, cycles_sent, pairs,
                                              latency['p99_ms'], total_cores),
    }
    if settings.soak:
        report['soak'] = soak_report(window, stamps_b[with_pair], latencies_ms, node_names)
    return report


def soak_report(window: Window, stamps_ns: np.ndarray, latencies_ms: np.ndarray,
                node_names: list[str]) -> dict:
    """RSS and latency per minute, memory growth and latency drift over a long window."""
    minutes = int(window.seconds // MINUTE_S)
    per_minute = statistics.minute_buckets(stamps_ns, latencies_ms, window.start_ns, minutes)
    growth = statistics.memory_growth({name: window.rss_kib[name][0] for name in node_names},
                                      {name: window.rss_kib[name][-1] for name in node_names})
    drift = statistics.latency_drift(per_minute[0], per_minute[-1])
    return {
        'rss_mib': {name: [kib / 1024 for kib in values]
                    for name, values in window.rss_kib.items()},
        'latency_per_minute': [latency_summary(values) for values in per_minute],
        'memory_growth_percent': growth['percent'],
        'latency_drift': drift,
        'targets': {'memory_growth_le_5pct': growth['pass'], 'no_latency_drift': drift['pass']},
    }
