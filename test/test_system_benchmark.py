"""System benchmark: its statistics and verdicts, argument errors, the frame source, the
pipeline's ``--nodes`` selection, and a smoke run of both layouts through the real nodes."""

from __future__ import annotations

from pathlib import Path
import threading
from types import SimpleNamespace

from node_process import REPO, start_node
import numpy as np
import pytest
import rclpy
from rclpy.context import Context

from antispoof_ros.flash import DEFAULT_PATTERN, PAIR_CONFIGS, Phase
from antispoof_ros.msg import EyeCorners, LivenessResult
from antispoof_ros.nodes import antispoof_pipeline as pipeline
from antispoof_ros.nodes.camera_node import CameraNode
from antispoof_ros.nodes.landmark_node import LandmarkNode
from antispoof_ros.nodes.liveness_node import LivenessNode
from antispoof_ros.offline.bagtools.writer import FlashBagWriter
from antispoof_ros.tools.benchmarks.system import __main__ as cli
from antispoof_ros.tools.benchmarks.system import frame_source, statistics
from antispoof_ros.tools.benchmarks.system.runner import (
    RunSettings,
    Window,
    build_report,
    distinct_domains,
    layout_commands,
    run_layout,
    soak_report,
)

PARAMS = REPO / 'config' / 'antispoof.yaml'
S = statistics.NS_PER_S


# -- statistics ---------------------------------------------------------------------------
def test_latency_summary_of_known_values_and_of_none() -> None:
    summary = statistics.latency_summary(float(v) for v in range(1, 101))
    assert summary == {'count': 100, 'p50_ms': 50.5, 'p99_ms': pytest.approx(99.01),
                       'max_ms': 100.0}
    empty = statistics.latency_summary([])
    assert empty['count'] == 0 and np.isnan(empty['p99_ms']) and np.isnan(empty['max_ms'])


def test_verdict_time_summary_and_its_line() -> None:
    summary = statistics.verdict_time_summary([400.0, 300.0, 1000.0, 500.0])
    assert summary == {'count': 4, 'p50_ms': 450.0, 'p90_ms': pytest.approx(850.0),
                       'max_ms': 1000.0}
    assert statistics.describe_verdict_times(summary, without_verdict=1) == \
        'p50 450 ms, p90 850 ms, max 1000 ms (n=4, 1 without a verdict)'
    none = statistics.verdict_time_summary([])
    assert none['count'] == 0 and np.isnan(none['p90_ms'])
    assert statistics.describe_verdict_times(none, 2) == 'no verdict (n=0, 2 without a verdict)'
    one = statistics.verdict_time_summary([1234.4])
    assert statistics.describe_verdict_times(one) == '1234 ms (n=1)'


def test_window_is_half_open() -> None:
    stamps = np.array([9, 10, 15, 20, 21], dtype=np.int64)
    assert statistics.in_window(stamps, 10, 20).tolist() == [False, True, True, False, False]


def test_growth_percent() -> None:
    assert statistics.growth_percent(200, 210) == pytest.approx(5.0)
    assert statistics.growth_percent(200, 190) == pytest.approx(-5.0)
    with pytest.raises(ValueError, match='positive start'):
        statistics.growth_percent(0, 10)


def test_memory_growth_limit_is_five_percent_per_process() -> None:
    start = {'landmark_node': 100_000, 'liveness_node': 200_000}
    within = statistics.memory_growth(start, {'landmark_node': 105_000, 'liveness_node': 190_000})
    assert within['pass'] and within['percent']['liveness_node'] == pytest.approx(-5.0)
    beyond = statistics.memory_growth(start, {'landmark_node': 105_100, 'liveness_node': 200_000})
    assert not beyond['pass'] and beyond['percent']['landmark_node'] == pytest.approx(5.1)


def test_minute_buckets_split_by_stamp() -> None:
    start = 1_000 * S
    stamps = start + np.array([0, 59 * S, 60 * S, 125 * S, 181 * S])
    buckets = statistics.minute_buckets(stamps, np.arange(5.0), start, minutes=3)
    assert [bucket.tolist() for bucket in buckets] == [[0.0, 1.0], [2.0], [3.0]]


def test_latency_drift_passes_noise_and_fails_a_rise() -> None:
    rng = np.random.default_rng(0)
    first = rng.normal(5.0, 0.5, 1800)
    steady = statistics.latency_drift(first, first + 0.3)
    assert steady['pass'] and steady['rise_ms']['p50_ms'] == pytest.approx(0.3)
    drifted = statistics.latency_drift(first, first + 3.0)
    assert not drifted['pass']
    assert drifted['last_minute']['p50_ms'] == pytest.approx(steady['first_minute']['p50_ms']
                                                              + 3.0)
    with pytest.raises(ValueError, match='first and the last minute'):
        statistics.latency_drift(first, [])


@pytest.mark.parametrize(
    ('lost', 'cycles', 'pairs', 'p99', 'cores', 'failed'),
    [
        ({'eye_corners': 0, 'pairs': 0}, 1800, 1800, 12.0, 0.8, set()),
        ({'eye_corners': 1, 'pairs': 0}, 1800, 1800, 12.0, 0.8, {'no_frame_lost'}),
        ({'eye_corners': 0, 'pairs': 3}, 1800, 1797, 12.0, 0.8,
         {'no_frame_lost', 'every_cycle_evaluated'}),
        ({'eye_corners': 0, 'pairs': 0}, 0, 0, float('nan'), 0.1,
         {'every_cycle_evaluated', 'latency_p99_le_20ms'}),
        ({'eye_corners': 0, 'pairs': 0}, 1800, 1800, 20.5, 1.3,
         {'latency_p99_le_20ms', 'total_cpu_le_1.2_cores'}),
    ],
)
def test_target_verdicts(lost: dict, cycles: int, pairs: int, p99: float, cores: float,
                         failed: set[str]) -> None:
    verdicts = statistics.target_verdicts(lost, cycles, pairs, p99, cores)
    assert len(verdicts) == 4
    assert {key for key, ok in verdicts.items() if not ok} == failed


# -- report from recorded streams --------------------------------------------------------
def _diagnostics(frames: int, accepted: int, missing: int) -> dict[str, dict[str, str]]:
    return {'landmark_node: landmarks': {'frames_total': str(frames), 'frame_rate_hz': '30.0'},
            'liveness_node: liveness': {'pairs_per_s': '30.0', 'pairs_accepted': str(accepted),
                                        'pairs_no_face': '0', 'input_missing': str(missing)}}


def test_report_counts_losses_latency_and_counters_inside_the_window() -> None:
    period = S // 120
    start = 1_000 * S
    stamps = start - S + period * np.arange(360, dtype=np.int64)  # 1 s before to 2 s after
    phases = np.array([int(DEFAULT_PATTERN[i % 4]) for i in range(360)], dtype=np.uint8)
    frames = {'phase': phases, 'stamp_ns': stamps, 'late_ns': np.full(360, 200_000)}
    window = Window(start_ns=start, end_ns=start + S, cpu_s={'frame_source': 0.1,
                                                              'landmark_node': 0.3,
                                                              'liveness_node': 0.5},
                    peak_kib={'frame_source': 2048, 'landmark_node': 1024,
                              'liveness_node': 1024},
                    diagnostics=[_diagnostics(100, 90, 0), _diagnostics(130, 117, 1)])
    front = stamps[phases == Phase.FRONT]
    right = stamps[phases == Phase.RIGHT]
    in_window = (right >= start) & (right < start + S)
    corners = [(int(t), int(t) + 7_000_000, EyeCorners.STATUS_OK)
               for t in front if t != front[40]]  # one lost
    answered = right[in_window][2:]  # the first two cycles of the window unanswered
    results = [(int(t), int(t) + 5_000_000, 0.4, LivenessResult.DECISION_UNKNOWN, 3.0)
               for t in answered[:5]]  # warming up
    results += [(int(t), int(t) + 5_000_000, 0.9, LivenessResult.DECISION_LIVE, 3.0)
                for t in answered[5:]]
    results.append((0, start + S // 2, float('nan'), LivenessResult.DECISION_UNKNOWN, 0.0))
    observer = SimpleNamespace(corners=corners, results=results)
    report = build_report('separate', RunSettings(seconds=1.0, bag=Path('bag')),
                          PAIR_CONFIGS['P2'], Phase.FRONT, frames, observer, window,
                          ['landmark_node', 'liveness_node'])
    assert report['frames_sent'] == {'dark': 30, 'front': 30, 'right': 30, 'left': 30}
    assert report['frames_lost'] == {'eye_corners': 1, 'pairs': 2}
    assert report['results_with_pair'] == report['pairs_scored'] == 28
    assert report['results_without_pair'] == 1
    assert report['decisions'] == {'unknown': 5, 'live': 23, 'spoof': 0}
    # from the first front frame sent (1 s before the window) to the first LIVE received:
    # the sixth answered cycle's frame B + 5 ms
    assert report['time_to_verdict_ms']['count'] == 1
    assert report['time_to_verdict_ms']['max_ms'] == pytest.approx(
        (answered[5] + 5_000_000 - front[0]) / 1e6)
    assert report['latency_ms']['p50_ms'] == pytest.approx(5.0)
    assert report['eye_corners_latency_ms']['p99_ms'] == pytest.approx(7.0)
    assert report['liveness_node_latency_ms']['count'] == 28
    assert report['liveness_node_latency_ms']['max_ms'] == pytest.approx(3.0)
    assert report['publisher_late_ms']['max_ms'] == pytest.approx(0.2)
    assert report['pair_rate_per_s'] == pytest.approx(28.0)
    assert report['total_node_cpu_cores'] == pytest.approx(0.8)
    assert report['cpu_percent_of_one_core']['frame_source'] == pytest.approx(10.0)
    assert report['node_counters'] == {'landmark': {'frames_total': 30},
                                       'liveness': {'pairs_accepted': 27, 'input_missing': 1}}
    assert report['targets'] == {'no_frame_lost': False, 'every_cycle_evaluated': False,
                                 'latency_p99_le_20ms': True, 'total_cpu_le_1.2_cores': True}


def test_soak_report_growth_and_drift() -> None:
    start = 1_000 * S
    window = Window(start_ns=start, end_ns=start + 180 * S,
                    rss_kib={'antispoof_pipeline': [400_000, 404_000, 410_000, 430_000],
                             'frame_source': [900_000] * 4})
    stamps = start + np.arange(5400, dtype=np.int64) * 60 * S // 1800  # 30 per second
    latencies = np.where(stamps < start + 120 * S, 5.0, 9.0)  # slower in the last minute
    soak = soak_report(window, stamps, latencies, ['antispoof_pipeline'])
    assert soak['memory_growth_percent'] == {'antispoof_pipeline': pytest.approx(7.5)}
    assert [m['count'] for m in soak['latency_per_minute']] == [1800, 1800, 1800]
    assert soak['latency_drift']['rise_ms']['p50_ms'] == pytest.approx(4.0)
    assert soak['targets'] == {'memory_growth_le_5pct': False, 'no_latency_drift': False}
    assert soak['rss_mib']['frame_source'][0] == pytest.approx(900_000 / 1024)


# -- command line -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ('argv', 'message'),
    [
        (['--seconds', '0'], "'0' is not a positive number"),
        (['--layout', 'triple'], "invalid choice: 'triple'"),
        (['--soak', '--seconds', '60'], '--soak needs --seconds >= 120'),
        (['--warmup', '-1'], '--warmup must be 0 or more'),
        (['--json', '/no/such/folder/figures.json'], 'folder /no/such/folder does not exist'),
    ],
)
def test_bad_arguments_give_one_error_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_arguments_defaults_and_soak_window() -> None:
    plain = cli.parse_args([])
    assert plain.layouts == ['separate', 'single'] and plain.seconds == 60.0
    soak = cli.parse_args(['--soak', '--layout', 'single'])
    assert soak.layouts == ['single'] and soak.seconds == 600.0 and soak.soak


def test_layouts_get_distinct_domains() -> None:
    domains = distinct_domains(2)
    assert len(set(domains)) == 2 and all(1 <= domain <= 232 for domain in domains)


def test_layout_commands() -> None:
    separate = layout_commands('separate', PARAMS)
    assert list(separate) == ['landmark_node', 'liveness_node']
    single = layout_commands('single', PARAMS)['antispoof_pipeline']
    assert single[1:4] == ['--nodes', 'landmark,liveness', '--ros-args']
    with pytest.raises(ValueError, match="unknown layout 'both'"):
        layout_commands('both', PARAMS)


# -- pipeline node selection --------------------------------------------------------------
def test_pipeline_runs_all_three_nodes_by_default() -> None:
    assert pipeline.select_nodes(['antispoof_pipeline', '--ros-args', '-p', 'x:=1']) == [
        CameraNode, LandmarkNode, LivenessNode]


@pytest.mark.parametrize('selection', [['--nodes', 'liveness,landmark'],
                                       ['--nodes=landmark,liveness']])
def test_pipeline_node_subset_keeps_pipeline_order(selection: list[str]) -> None:
    assert pipeline.select_nodes(['antispoof_pipeline', *selection, '--ros-args']) == [
        LandmarkNode, LivenessNode]


@pytest.mark.parametrize(
    ('arguments', 'message'),
    [
        (['--nodes', 'camera,radar'], "unknown node(s) 'radar' in --nodes"),
        (['--nodes', 'landmark,landmark'], 'names a node twice'),
        (['--nodes'], "unexpected arguments '--nodes'"),
        (['--verbose'], "unexpected arguments '--verbose'"),
    ],
)
def test_pipeline_bad_selection_is_one_error_line_and_exit_2(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pipeline.main(['antispoof_pipeline', *arguments, '--ros-args']) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('[ERROR] antispoof_pipeline: ')
    assert message in lines[0]


@pytest.mark.ros
def test_pipeline_without_camera_starts_only_the_named_nodes() -> None:
    node = start_node('antispoof_pipeline', '--nodes', 'landmark,liveness',
                      '--ros-args', '--params-file', str(PARAMS))
    try:
        assert node.wait_for_line(r'\[landmark_node\]: parameters:', timeout=60), node.output
        assert node.wait_for_line(r'\[liveness_node\]: parameters:', timeout=60), node.output
        assert node.stop() == 0, node.output
    finally:
        node.stop()
    assert '[camera_node]' not in node.output and 'Traceback' not in node.output


# -- frame source -------------------------------------------------------------------------
def _tiny_bag(path: Path, frames: int) -> Path:
    """A bag of ``frames`` 16x12 frames in the default flash pattern."""
    with FlashBagWriter(path, {'subject': 's001', 'species': 'live', 'lighting': 'office'},
                        start_ns=0) as writer:
        for counter in range(frames):
            pixels = np.full((12, 16), counter, dtype=np.uint8)
            writer.write_frame(DEFAULT_PATTERN[counter % 4], pixels, counter, counter * 8_333_333)
    return path


def test_load_frames_needs_whole_cycles(tmp_path: Path) -> None:
    frames = frame_source.load_frames(_tiny_bag(tmp_path / 'two_cycles', 8))
    assert [Phase(f.phase) for f in frames] == list(DEFAULT_PATTERN) * 2
    with pytest.raises(frame_source.FrameSourceError, match='whole dark/front/right/left'):
        frame_source.load_frames(_tiny_bag(tmp_path / 'broken_cycle', 6))
    with pytest.raises(frame_source.FrameSourceError, match='not a readable bag'):
        frame_source.load_frames(tmp_path / 'missing')


def test_frame_source_command_refuses_a_missing_bag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = tmp_path / 'stats.npz'
    assert frame_source.main([str(tmp_path / 'missing'), '--stats', str(stats)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and 'not a readable bag' in lines[0]
    assert not stats.exists()


@pytest.mark.ros
def test_publish_loop_keeps_counters_phases_and_schedule(tmp_path: Path,
                                                         ros_context: Context) -> None:
    frames = frame_source.load_frames(_tiny_bag(tmp_path / 'bag', 8))
    node = rclpy.create_node('publish_loop_test', context=ros_context)
    stop = frame_source.StopRequest()
    timer = threading.Timer(0.5, lambda: setattr(stop, 'requested', True))
    timer.start()
    try:
        record = frame_source.publish_loop(node, frames, stop)
    finally:
        timer.cancel()
        node.destroy_node()
    sent = len(record['phase'])
    assert 50 <= sent <= 70  # 0.5 s at 120 Hz; absolute deadlines catch up after a stall
    assert record['phase'].tolist() == [int(DEFAULT_PATTERN[i % 4]) for i in range(sent)]
    assert np.all(np.diff(record['stamp_ns']) > 0)
    assert record['counter'].tolist() == list(range(sent))  # on past the bag's end
    assert np.median(record['late_ns']) < 5_000_000


# -- smoke run of both layouts --------------------------------------------------------------
REPORT_KEYS = {
    'layout', 'pair', 'window_s', 'warmup_s', 'frames_sent', 'publisher_late_ms',
    'front_frames_sent', 'eye_corners_received', 'no_face', 'cycles_sent', 'results_with_pair',
    'pairs_scored', 'results_without_pair', 'decisions', 'frames_lost', 'node_counters',
    'pair_rate_per_s', 'latency_ms', 'time_to_verdict_ms', 'eye_corners_latency_ms',
    'liveness_node_latency_ms',
    'cpu_percent_of_one_core', 'total_node_cpu_cores',
    'peak_memory_mib', 'node_processes', 'targets', 'pids',
}


@pytest.mark.slow
@pytest.mark.ros
@pytest.mark.parametrize('layout', ['separate', 'single'])
def test_smoke_run_gets_results_reports_every_field_and_ends_its_processes(
    layout: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    bag = frame_source.cached_bag(tmp_path_factory.getbasetemp() / 'system_benchmark_bag',
                                  cycles=4, progress=False)  # cached for the second layout
    settings = RunSettings(seconds=3.0, bag=bag, warmup_s=2.0, progress=False)
    report = run_layout(layout, settings, distinct_domains(1)[0])
    assert set(report) == REPORT_KEYS
    assert report['results_with_pair'] > 0 and report['latency_ms']['count'] > 0
    verdict = report['time_to_verdict_ms']  # min_valid_pairs 6 pairs at 30 per second
    assert verdict['count'] == 1 and verdict['max_ms'] > 5 * 1000 / 30, verdict
    assert report['eye_corners_received'] > 0 and report['front_frames_sent'] > 0
    assert report['node_counters']['landmark']['frames_total'] > 0  # from /diagnostics
    assert report['node_counters']['liveness']['pairs_accepted'] > 0
    assert set(report['cpu_percent_of_one_core']) == set(report['pids'])
    assert set(report['peak_memory_mib']) == set(report['pids'])
    assert len(report['pids']) == {'separate': 3, 'single': 2}[layout]
    assert set(report['targets']) == {'no_frame_lost', 'every_cycle_evaluated',
                                      'latency_p99_le_20ms', 'total_cpu_le_1.2_cores'}
    for pid in report['pids'].values():
        assert not Path(f'/proc/{pid}').exists(), f'process {pid} still exists'
