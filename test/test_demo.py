"""The main job: scenario pick, emulator folder, counter -> scenario attribution, and runs.

The slow tests run the real command on a small emulator folder (2 scenarios x 3 cycles,
each followed by its no-face gap, rendered once per module), on a rendered bag, on the rig
path with an emulated camera, and interrupt a run to check that its node processes are gone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
import os
from pathlib import Path
import signal
import subprocess
import sys

from builtin_interfaces.msg import Time
import cv2
import numpy as np
import pytest

from antispoof_ros.flash import DEFAULT_PATTERN
from antispoof_ros.msg import LivenessResult
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.messages import frame_header
from antispoof_ros.offline.synthetic.protocol import ProtocolConfig, build_protocol
from antispoof_ros.offline.synthetic.scene import Pose, Species
from antispoof_ros.paths import SHIPPED_MODELS
from antispoof_ros.tools.demo.__main__ import main, parse_args
from antispoof_ros.tools.demo.overlays import OverlayShots
from antispoof_ros.tools.demo.scenarios import (
    GAP_CYCLES,
    EmulatorFolder,
    LoopTracker,
    cache_name,
    locate,
    pick_demo_scenarios,
    unseen_scenarios,
    write_emulator_folder,
)
from antispoof_ros.tools.demo.scoreboard import (
    Scoreboard,
    scenario_name,
    stamp_of_counter,
    verdict,
)

LIVE, SPOOF, UNKNOWN = (LivenessResult.DECISION_LIVE, LivenessResult.DECISION_SPOOF,
                        LivenessResult.DECISION_UNKNOWN)
CONFIG = Path(__file__).resolve().parent.parent / 'config' / 'antispoof.yaml'
SMALL_FOLDER = cache_name('emulator', unseen_scenarios(2), 3, seed=0)  # what the demo looks for


# -- attribution ----------------------------------------------------------------------------
def folder(first_image: list[int], n_images: int) -> EmulatorFolder:
    labels = [{'species': 'live', 'lighting': 'office'} for _ in first_image]
    return EmulatorFolder(Path('unused'), labels, first_image, n_images)


def test_counter_names_the_image_and_scenario_across_wraparounds() -> None:
    starts, n = [0, 40, 80], 120  # three scenarios of 10 cycles
    assert locate(0, starts, n) == locate(0, starts, n, first_counter=0)
    assert (locate(39, starts, n).loop, locate(39, starts, n).scenario) == (0, 0)
    assert (locate(40, starts, n).loop, locate(40, starts, n).scenario) == (0, 1)
    assert (locate(119, starts, n).loop, locate(119, starts, n).scenario) == (0, 2)
    assert (locate(120, starts, n).loop, locate(120, starts, n).scenario) == (1, 0)
    assert (locate(1000 * 120 + 85, starts, n).loop,
            locate(1000 * 120 + 85, starts, n).scenario) == (1000, 2)


def test_counter_is_taken_relative_to_the_first_image() -> None:
    assert locate(10, [0, 8], 16, first_counter=10).scenario == 0
    assert locate(18, [0, 8], 16, first_counter=10).scenario == 1
    assert locate(26, [0, 8], 16, first_counter=10).loop == 1
    with pytest.raises(ValueError, match='precedes the first image'):
        locate(9, [0, 8], 16, first_counter=10)


def test_loop_tracker_scores_the_first_whole_pass_after_start_up() -> None:
    tracker = LoopTracker(folder([0, 8], 16))
    assert tracker.scenario_of(10) is None  # start-up pass (0): maybe incomplete
    assert tracker.scored_loop == 1
    assert tracker.scenario_of(14) is None
    assert [tracker.scenario_of(c) for c in (18, 22, 26, 30)] == [0, 0, 1, 1]
    assert not tracker.finished
    assert tracker.scenario_of(34) is None  # pass 2: the scored pass is over
    assert tracker.finished


def test_loop_tracker_files_no_result_of_the_no_face_gaps() -> None:
    gapped = EmulatorFolder(Path('unused'), [{'species': 'live'}, {'species': 'mask'}],
                            [0, 12], 24, gap_cycles=1)  # 2 face cycles + 1 gap cycle each
    assert gapped.cycles == [2, 2]
    tracker = LoopTracker(gapped)
    assert tracker.scenario_of(2) is None  # start-up pass
    assert [tracker.scenario_of(24 + c) for c in (2, 6, 10, 14, 18, 22)] == \
        [0, 0, None, 1, 1, None]
    assert tracker.first_counter_of(1) == 24 + 12


def test_loop_tracker_skips_a_pass_begun_before_the_nodes_listened() -> None:
    tracker = LoopTracker(folder([0, 8], 16))
    assert tracker.scenario_of(2) is None  # even the very first image is not trusted
    assert tracker.scenario_of(18) == 0


# -- scenario pick --------------------------------------------------------------------------
def test_pick_covers_every_species_lighting_and_print_kind_first() -> None:
    protocol = build_protocol(ProtocolConfig(seed=0))
    pool = [s for s in protocol.scenarios if s.split.value == 'test']
    groups = {(s.species, s.lighting, s.print_kind) for s in pool}
    picked = pick_demo_scenarios(pool, len(groups))
    assert {(s.species, s.lighting, s.print_kind) for s in picked} == groups
    assert {s.pose for s in picked if s.species is not Species.PRINT} == {Pose.CAMERA}
    more = pick_demo_scenarios(pool, len(groups) + 2)
    assert more[:len(groups)] == picked
    assert [s.pose for s in more[len(groups):]] == [Pose.AHEAD, Pose.AHEAD]


def test_default_pick_is_deterministic_and_unseen() -> None:
    first, again = unseen_scenarios(12), unseen_scenarios(12)
    assert [s.scenario_id for s in first] == [s.scenario_id for s in again]
    assert len(first) == 12 and all(s.split.value == 'test' for s in first)
    assert Counter(s.species.value for s in first) == {'live': 4, 'mask': 4, 'print': 4}


# -- scoreboard -----------------------------------------------------------------------------
def result(pair: int, fused: int, counter_b: int = 2, latency_ms: float = 3.0,
           stamp_b: Time | None = None) -> LivenessResult:
    return LivenessResult(pair_decision=pair, decision=fused, frame_counter_b=counter_b,
                          latency_ms=latency_ms, stamp_b=stamp_b or Time(sec=1, nanosec=0))


def test_stamp_of_an_earlier_frame_follows_the_pairs_frame_period() -> None:
    pair = LivenessResult(frame_counter_a=101, frame_counter_b=102,
                          stamp_a=Time(sec=10, nanosec=0),
                          stamp_b=Time(sec=10, nanosec=16_000_000))
    assert stamp_of_counter(pair, 90, fallback_period_ns=1e9) == 10_016_000_000 - 12 * 16_000_000
    single = LivenessResult(frame_counter_a=102, frame_counter_b=102,
                            stamp_a=Time(sec=10), stamp_b=Time(sec=10))
    assert stamp_of_counter(single, 100, fallback_period_ns=5e6) == 10_000_000_000 - 10_000_000


def test_time_to_verdict_runs_from_the_face_to_the_first_fused_verdict_received() -> None:
    labels = [{'species': 'live', 'lighting': 'office'}, {'species': 'print', 'lighting': 'dark'},
              {'species': 'mask', 'lighting': 'dark'}]
    board = Scoreboard(labels, write=lambda _: None)
    face = 5_000_000_000
    board.face_appeared(0, face)
    board.face_appeared(0, face + 99)  # only the first frame counts
    board.add(0, result(LIVE, UNKNOWN), arrival_ns=face + 100_000_000)
    board.add(0, result(LIVE, LIVE), arrival_ns=face + 450_000_000)
    board.add(0, result(LIVE, LIVE), arrival_ns=face + 480_000_000)
    board.face_appeared(1, 2 * face)
    board.add(1, result(SPOOF, SPOOF), arrival_ns=2 * face + 250_000_000)
    board.face_appeared(2, 3 * face)
    board.add(2, result(SPOOF, UNKNOWN), arrival_ns=3 * face + 1)  # never decided
    assert board.times_to_verdict_ms() == [450.0, 250.0]
    assert ('  time to verdict (face appears -> first fused LIVE or SPOOF received): p50 350 '
            'ms, p90 430 ms, max 450 ms (n=2, 1 without a verdict)') in board.summary()
    replayed = Scoreboard(labels[:1], write=lambda _: None)
    replayed.face_appeared(0, face)
    replayed.add(0, result(LIVE, LIVE, stamp_b=Time(sec=5, nanosec=300_000_000)), None)
    assert replayed.times_to_verdict_ms() == [300.0]  # no arrival: frame B's stamp


def test_overlay_shots_keep_a_decided_picture_per_species(tmp_path: Path) -> None:
    labels = [{'species': 'live'}, {'species': 'live'}, {'species': 'print'}]
    shots = OverlayShots()

    def overlay(stamp_s: int, level: int) -> None:
        shots.add(array_to_image(np.full((4, 6, 3), level, np.uint8), 'bgr8',
                                 frame_header(stamp_s * 1_000_000_000)))

    def filed(scenario: int, stamp_s: int, fused: int) -> None:
        shots.result_filed(scenario, result(LIVE, fused, stamp_b=Time(sec=stamp_s)))

    filed(0, 1, UNKNOWN)
    overlay(1, 10)  # after its result
    overlay(2, 20)  # before its result
    filed(0, 2, LIVE)
    filed(0, 3, UNKNOWN)
    overlay(3, 30)  # newer, but undecided: the decided one stays
    filed(1, 4, LIVE)
    overlay(4, 40)
    overlay(5, 50)  # its result never comes
    filed(2, 6, SPOOF)
    overlay(6, 60)
    saved = shots.save(tmp_path / 'pictures', labels)
    assert [p.name for p in saved] == ['overlay_live.png', 'overlay_print.png']
    assert cv2.imread(str(saved[0]))[0, 0].tolist() == [20, 20, 20]  # scenario 0's decided
    assert cv2.imread(str(saved[1]))[0, 0].tolist() == [60, 60, 60]


def test_verdict_of_each_decision_per_species() -> None:
    assert verdict('live', LIVE) == 'correct' and verdict('live', SPOOF) == 'wrong'
    assert verdict('mask', SPOOF) == 'correct' and verdict('print', LIVE) == 'wrong'
    assert verdict('live', UNKNOWN) == verdict('mask', UNKNOWN) == 'unknown'


def test_scoreboard_rows_and_summary() -> None:
    labels = [{'species': 'live', 'lighting': 'dark', 'pose': 'camera', 'subject': 's005'},
              {'species': 'print', 'lighting': 'office', 'print_kind': 'bw',
               'subject': 's010'},
              {'species': 'mask', 'lighting': 'office', 'mask_id': 1, 'pose': 'ahead',
               'subject': 's012'}]
    rows: list[str] = []
    board = Scoreboard(labels, [3, 3, 3], write=rows.append)
    board.add(0, result(LIVE, UNKNOWN), arrival_ns=1_010_000_000)
    board.add(0, result(SPOOF, LIVE, latency_ms=5.0), arrival_ns=1_030_000_000)
    assert board.print_finished() == 0  # scenario 1 may still get results
    board.add(1, result(UNKNOWN, UNKNOWN), arrival_ns=None)
    assert board.print_finished() == 1
    assert not board.complete
    assert board.print_finished(final=True) == 3
    assert 'live dark camera s005' in rows[0] and '2/3' in rows[0] and rows[0].endswith('LIVE')
    assert rows[0].split()[-4:] == ['1', '1', '0', 'LIVE']
    assert rows[1].split()[-4:] == ['0', '0', '1', 'UNKNOWN']
    assert rows[2].endswith('- (no result)') and '0/3' in rows[2]
    summary = '\n'.join(board.summary())
    assert 'live    pairs correct 1, wrong 1, unknown 0; scenarios correct 1' in summary
    assert 'mask    pairs correct 0, wrong 0, unknown 0; scenarios correct 0, wrong 0, ' \
           'unknown 1' in summary
    assert 'p50 20.00 ms' in summary  # stamp 1 s -> arrival 1.01 / 1.03 s
    assert scenario_name(labels[2]) == 'mask m01 office ahead s012'
    assert scenario_name({**labels[2], 'scenario': 'mask-m01-s012-office-ahead'}) == \
        'mask-m01-s012-office-ahead'


# -- command line ---------------------------------------------------------------------------
@pytest.mark.parametrize('argv, message', [
    (['--scenarios', '0'], '--scenarios must be at least 1'),
    (['--model', 'no/such.onnx'], 'no such file: no/such.onnx'),
    (['--ground-truth-corners'], 'need --source bag'),
    (['--source', 'bag', '--rate', '0'], "'0' is not a positive number"),
    (['--frame-rate', '500'], '--frame-rate must be between'),
    (['--source', 'bag', '--overlay-dir', 'x'], '--overlay-dir needs --source emulator'),
])
def test_bad_arguments_give_one_error_line(argv: list[str], message: str,
                                           capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and error.count('\n') == 1


def test_the_model_names_the_pair_region_and_eye_of_liveness_node() -> None:
    liveness = parse_args(['--model', str(SHIPPED_MODELS / 'p2_eye.onnx')]).liveness
    assert liveness == {'model_path': (SHIPPED_MODELS / 'p2_eye.onnx').resolve(),
                        'pair': 'P2', 'region': 'eye', 'eye': 'right',
                        'allow_unpinned_model': False}
    face = parse_args(['--pair', 'P2', '--region', 'face', '--eye', 'left']).liveness
    assert (face['pair'], face['region'], face['eye']) == ('P2', 'face', 'left')  # eye unused


@pytest.mark.parametrize('argv, message', [
    (['--pair', 'P3'], "p2_face.onnx was trained for pair 'P2', not 'P3'"),
    (['--model', str(SHIPPED_MODELS / 'p2_eye.onnx'), '--region', 'face'],
     "p2_eye.onnx was trained for region 'eye', not 'face'"),
    (['--model', str(SHIPPED_MODELS / 'p2_eye.onnx'), '--eye', 'left'],
     "p2_eye.onnx was trained for eye 'right', not 'left'"),
])
def test_a_choice_the_model_contradicts_is_one_error_line(argv: list[str], message: str,
                                                          capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and error.count('\n') == 1, error


@pytest.mark.parametrize('argv, expected', [
    ([], 'synthetic'), (['--source', 'bag'], 'synthetic'), (['--source', 'rig'], 'five-point'),
    (['--source', 'rig', '--landmark-model', 'synthetic'], 'synthetic'),
])
def test_corner_model_follows_the_source(argv: list[str], expected: str) -> None:
    assert parse_args(argv).landmark_model == expected


def test_unreadable_emulator_folder_is_one_error_line(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    broken = tmp_path / cache_name('emulator', unseen_scenarios(1), 2, seed=0)
    broken.mkdir()
    (broken / 'scenarios.json').write_text('{"labels": []}')
    assert main(['--scenarios', '1', '--cycles', '2', '--out', str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert 'not a demo emulator folder' in error and error.count('\n') == 1


# -- real runs ------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work folder holding the rendered emulator folder of 2 scenarios x 3 cycles."""
    out = tmp_path_factory.mktemp('demo')
    write_emulator_folder(out / SMALL_FOLDER, unseen_scenarios(2), cycles=3)
    return out


def run_demo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'antispoof_ros.tools.demo', *args],
                          capture_output=True, text=True, timeout=240)


def table_rows(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines()
            if line[:5].strip().isdigit() and line.split()[-1] in ('LIVE', 'SPOOF', 'UNKNOWN')]


@pytest.mark.slow
def test_emulator_folder_is_whole_cycles_in_firing_order(demo_out: Path) -> None:
    emulator = EmulatorFolder.load(demo_out / SMALL_FOLDER)
    names = sorted(p.name for p in emulator.images.iterdir())
    per_scenario = 4 * (3 + GAP_CYCLES)
    assert len(names) == emulator.n_images == 2 * per_scenario
    assert [n.split('_')[1].split('.')[0] for n in names] == \
        [p.label for p in DEFAULT_PATTERN] * (2 * (3 + GAP_CYCLES))
    assert emulator.first_image == [0, per_scenario] and emulator.cycles == [3, 3]
    gap = [emulator.images / names[12 + i] for i in range(4 * GAP_CYCLES)]
    assert len({p.stat().st_ino for p in gap}) == 4  # one file per phase, hard-linked
    assert gap[0].samefile(emulator.images / names[per_scenario + 12])
    assert [label['species'] for label in emulator.labels] == ['live', 'mask']
    with pytest.raises(ValueError, match='already exists'):
        write_emulator_folder(emulator.path, unseen_scenarios(1), cycles=1)
    assert [p.name for p in demo_out.iterdir()] == [SMALL_FOLDER]  # no staging left


@pytest.mark.slow
@pytest.mark.ros
def test_emulator_demo_prints_a_row_per_scenario_and_the_summary(demo_out: Path,
                                                                 tmp_path: Path) -> None:
    # Three cycles per scenario: a verdict needs fewer valid pairs than the default six, and
    # at 20 Hz a busy landmark_node finds each face again within them after its no-face gap.
    params = tmp_path / 'quick_fusion.yaml'
    params.write_text(CONFIG.read_text().replace('min_valid_pairs: 6', 'min_valid_pairs: 2'))
    run = run_demo('--scenarios', '2', '--cycles', '3', '--frame-rate', '20', '--out',
                   str(demo_out), '--params-file', str(params),
                   '--overlay-dir', str(tmp_path / 'overlays'))
    assert run.returncode == 0, run.stdout + run.stderr
    rows = table_rows(run.stdout)
    assert len(rows) == 2, run.stdout
    assert 'live-s005-office-camera' in rows[0] and 'mask-m01-s017-office-camera' in rows[1]
    assert all(' 0/3 ' not in row for row in rows)
    assert 'summary per species' in run.stdout
    assert 'latency, end to end (frame B stamp -> result received here): p50' in run.stdout
    assert 'frames/s delivered in the scored pass' in run.stdout
    verdict_line = next(line for line in run.stdout.splitlines() if 'time to verdict' in line)
    # the second pair's frame B is the face's 7th frame at the earliest: 300 ms at 20 Hz
    p50 = float(verdict_line.split('p50 ')[1].split(' ms')[0])
    assert 'n=2' in verdict_line and p50 >= 300, verdict_line
    pictures = sorted(p.name for p in (tmp_path / 'overlays').iterdir())
    assert pictures == ['overlay_live.png', 'overlay_mask.png'], run.stdout
    picture = cv2.imread(str(tmp_path / 'overlays' / 'overlay_live.png'))
    assert picture.shape == (400, 640, 3)
    assert 'Traceback' not in run.stdout + run.stderr


@pytest.mark.slow
@pytest.mark.ros
def test_bag_demo_through_the_landmark_node(tmp_path: Path) -> None:
    # A quarter of camera speed: landmark_node keeps only its 5 newest frames, and on a busy
    # machine its first detections fall behind a 120 Hz replay of scenarios this short.
    # Eight cycles: the nodes refuse frames until discovery names the replay as their camera.
    run = run_demo('--source', 'bag', '--scenarios', '2', '--cycles', '8', '--rate', '0.25',
                   '--out', str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(table_rows(run.stdout)) == 2, run.stdout
    assert 'with landmark_node (dlib, synthetic corner model)' in run.stdout
    assert 'liveness_node (frame B arrival -> result published): p50' in run.stdout


@pytest.mark.slow
@pytest.mark.ros
def test_rig_mode_prints_verdicts_until_the_time_is_up(demo_out: Path, tmp_path: Path) -> None:
    images = demo_out / SMALL_FOLDER / 'images'
    params = tmp_path / 'rig.yaml'
    params.write_text(CONFIG.read_text().replace(
        'emulated_cameras: 0', 'emulated_cameras: 1').replace(
        'emulator_image_dir: ""', f'emulator_image_dir: "{images}"').replace(
        'frame_rate_hz: 120.0', 'frame_rate_hz: 30.0'))
    run = run_demo('--source', 'rig', '--params-file', str(params), '--seconds', '8',
                   '--out', str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'fused' in run.stdout and ' pairs: live ' in run.stdout


@pytest.mark.slow
@pytest.mark.ros
def test_a_node_that_ends_early_is_named_with_its_error_and_log(tmp_path: Path) -> None:
    params = tmp_path / 'rig.yaml'
    params.write_text(CONFIG.read_text().replace(
        'emulated_cameras: 0', 'emulated_cameras: 1').replace(
        'min_valid_pairs: 6', 'min_valid_pairs: 60'))  # more than the window holds
    run = run_demo('--source', 'rig', '--params-file', str(params), '--seconds', '60',
                   '--out', str(tmp_path))
    assert run.returncode == 1, run.stdout + run.stderr
    log = tmp_path / 'logs' / 'liveness_node.log'
    assert run.stderr.strip() == (
        'antispoof_ros.tools.demo: error: liveness_node exited with code 2: [ERROR] '
        'liveness_node: configuration error: min_valid_pairs must be in 1..window_length (9), '
        f'not 60 (log: {log})'), run.stderr
    assert log.is_file()


def processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path('/proc').iterdir():
        try:
            if entry.name.isdigit() and text in (entry / 'cmdline').read_text():
                pids.append(int(entry.name))
        except OSError:
            continue  # the process ended meanwhile
    return pids


@pytest.fixture
def demo_process(demo_out: Path) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        [sys.executable, '-m', 'antispoof_ros.tools.demo', '--scenarios', '2', '--cycles', '3',
         '--frame-rate', '2', '--out', str(demo_out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.mark.slow
@pytest.mark.ros
def test_ctrl_c_stops_the_nodes_and_exits_non_zero(demo_process: subprocess.Popen,
                                                   demo_out: Path) -> None:
    assert demo_process.stdout is not None
    for line in demo_process.stdout:
        if line.startswith('pipeline up'):
            break
    assert processes_mentioning(str(demo_out / SMALL_FOLDER)), 'camera_node not running'
    os.kill(demo_process.pid, signal.SIGINT)
    _, stderr = demo_process.communicate(timeout=60)
    assert demo_process.returncode == 130
    assert stderr.strip() == 'antispoof_ros.tools.demo: interrupted; nodes stopped'
    assert processes_mentioning(str(demo_out / SMALL_FOLDER)) == []
