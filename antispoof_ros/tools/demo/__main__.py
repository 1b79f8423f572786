"""The main job: verdicts of the real nodes on live faces, prints and masks, per scenario.

    python -m antispoof_ros.tools.demo [--source emulator | bag | rig] [--scenarios 12]
        [--cycles 10] [--frame-rate 60] [--out runs/demo] [--model M] [--pair P] [--region R]
        [--eye E] [--bag B] [--rate 1] [--ground-truth-corners]
        [--params-file config/antispoof.yaml] [--seconds S] [--overlay-dir DIR]

emulator (default): renders unseen test-split scenarios into one folder for pylon's emulated
camera (cached in --out; each scenario followed by a few cycles without a face), runs
camera_node, landmark_node and liveness_node as three processes on shared-memory DDS, files
each LivenessResult under the scenario its frame B shows (by frame counter), prints a row per
scenario of one whole pass and a summary, with the time from a scenario's first frame (the
face appears) to its first fused LIVE or SPOOF. --overlay-dir: also save liveness_node's
liveness/overlay picture of the first scenario of each species as DIR/overlay_<species>.png.
bag: the same scenarios as an MCAP bag (or --bag), replayed at 120 Hz (x --rate) through
landmark_node and liveness_node (--ground-truth-corners: the bag's corners, no landmark_node).
landmark_node keeps only its newest frames, so on a busy machine a slower --rate loses fewer.
rig: a real camera with --params-file; verdicts live until Ctrl-C (or --seconds).
liveness_node runs --model with the pair, region and eye the model was trained for; --pair,
--region or --eye that contradict it end the demo with one error line before any node starts.
Exit 0 when every scenario got verdicts (rig: when any pair was judged).
"""

from __future__ import annotations

import argparse
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
import os
from pathlib import Path
import signal
import sys
import time

from tqdm import tqdm

from antispoof_ros.flash import DEFAULT_PATTERN, Phase, pair_config
from antispoof_ros.liveness.inference import ModelLoadError
from antispoof_ros.msg import LivenessResult
from antispoof_ros.nodes.frame_qos import RELIABLE, SENSOR_DATA
from antispoof_ros.nodes.messages import stamp_nanoseconds
from antispoof_ros.nodes.topics import flash_frame_topic
from antispoof_ros.offline.bagtools import BagToolError
from antispoof_ros.offline.bagtools.labels import read_label_segments
from antispoof_ros.offline.bagtools.replay import NODE_NAME as REPLAY_NODE_NAME
from antispoof_ros.offline.bagtools.synthetic_bag import write_synthetic_bag
from antispoof_ros.offline.cli import EXIT_FAILED, OneLineArgumentParser, fail, positive_number
from antispoof_ros.paths import SOURCE_TREE
from antispoof_ros.tools.demo.listener import ResultListener
from antispoof_ros.tools.demo.overlays import OverlayShots
from antispoof_ros.tools.demo.scenarios import (
    INDEX_FILE,
    EmulatorFolder,
    LoopTracker,
    cache_name,
    unseen_scenarios,
    write_emulator_folder,
)
from antispoof_ros.tools.demo.scoreboard import (
    DECISIONS,
    HEADER,
    Scoreboard,
    is_pair_result,
    percentiles,
    stamp_of_counter,
)
from antispoof_ros.tools.harness.local_dds import apply_local_dds_environment
from antispoof_ros.tools.harness.node_replay import (
    NodeReplayError,
    add_model_arguments,
    liveness_parameters,
    replay_through_liveness_node,
)
from antispoof_ros.tools.harness.processes import NodeProcessError, NodeProcesses, node_command

PROGRAM = 'antispoof_ros.tools.demo'
CONFIG_FILE = SOURCE_TREE / 'config' / 'antispoof.yaml'
EXIT_INTERRUPTED = 130
DEFAULT_OUT = Path('runs/demo')
# pylon's emulator delivers ~82 frames/s from BMP files when it has a core to itself; with
# the landmark and liveness nodes on the same two cores 60 Hz leaves it headroom.
DEFAULT_FRAME_RATE_HZ = 60.0
STARTUP_TIMEOUT_S = 120.0
SETTLE_S = 1.5  # the last pairs of a replay are still being scored
RIG_REPORT_PERIOD_S = 1.0


class DemoError(RuntimeError):
    """Why the demo cannot go on, in one line."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line of the demo (bad input: one error line, exit status 2)."""
    parser = OneLineArgumentParser(prog=PROGRAM, description=__doc__.split('\n')[0])
    parser.add_argument('--source', choices=('emulator', 'bag', 'rig'), default='emulator')
    parser.add_argument('--scenarios', type=int, default=12, help='test scenarios to play')
    parser.add_argument('--cycles', type=int, default=10, help='flash cycles per scenario')
    parser.add_argument('--seed', type=int, default=0, help='synthetic protocol seed')
    parser.add_argument('--frame-rate', type=float, default=DEFAULT_FRAME_RATE_HZ,
                        help='emulated camera frame rate in Hz (default %(default)g)')
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT,
                        help='work folder: rendered scenarios and node logs')
    add_model_arguments(parser)
    parser.add_argument('--bag', type=Path, help='bag to replay (--source bag); default: '
                        'render the demo scenarios')
    parser.add_argument('--rate', type=positive_number, default=1.0,
                        help='bag: replay speed (1: camera speed, 120 Hz)')
    parser.add_argument('--ground-truth-corners', action='store_true',
                        help='bag: feed liveness_node the recorded corners, no landmark_node')
    parser.add_argument('--landmark-model', default='',
                        help="landmark_node's shape_model: 'synthetic' (default for the "
                             "emulator and bag sources, whose faces are rendered), "
                             "'five-point' (default for the rig) or a model file")
    parser.add_argument('--params-file', type=Path, default=CONFIG_FILE,
                        help='node parameters (the rig\'s camera settings)')
    parser.add_argument('--seconds', type=float, default=0.0,
                        help='rig: stop after this long (0: at Ctrl-C)')
    parser.add_argument('--overlay-dir', type=Path,
                        help='emulator: save the liveness/overlay picture of the first scenario '
                             'of each species here as overlay_<species>.png')
    args = parser.parse_args(argv)
    if args.scenarios < 1 or args.cycles < 2:
        parser.error('--scenarios must be at least 1 and --cycles at least 2')
    if not 1.0 <= args.frame_rate <= 120.0:
        parser.error('--frame-rate must be between 1 and 120 Hz')
    if args.seconds < 0:
        parser.error('--seconds must not be negative')
    for name in ('model', 'params_file', 'bag'):
        path = getattr(args, name)
        if path is not None and not path.exists():
            parser.error(f'no such file: {path}')
    if args.source != 'bag' and (args.bag or args.ground_truth_corners or args.rate != 1.0):
        parser.error('--bag, --rate and --ground-truth-corners need --source bag')
    if args.overlay_dir is not None and args.source != 'emulator':
        parser.error('--overlay-dir needs --source emulator')
    if not args.landmark_model:
        args.landmark_model = 'five-point' if args.source == 'rig' else 'synthetic'
    try:
        args.liveness = liveness_parameters(args.model, args.pair, args.region, args.eye)
    except ModelLoadError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the demo from the chosen source."""
    args = parse_args(argv)
    sources: dict[str, Callable[[argparse.Namespace], int]] = {
        'emulator': run_emulator, 'bag': run_bag, 'rig': run_rig}
    # SIGINT too: a demo started from a script's background inherits Ctrl-C as ignored
    previous = {signum: signal.signal(signum, _interrupt)
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        apply_local_dds_environment()  # the listener here and every node process
        return sources[args.source](args)
    except KeyboardInterrupt:
        print(f'{PROGRAM}: interrupted; nodes stopped', file=sys.stderr)
        return EXIT_INTERRUPTED
    except (DemoError, NodeProcessError, NodeReplayError, BagToolError, ModelLoadError,
            ValueError, OSError) as error:
        return fail(PROGRAM, error, EXIT_FAILED)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGINT/SIGTERM: nodes stopped, files removed, exit 130


def say(line: str) -> None:
    """Print a line above the progress bar, at once (stdout may be a pipe)."""
    tqdm.write(line)
    sys.stdout.flush()


# -- emulator -------------------------------------------------------------------------------
def emulator_folder(args: argparse.Namespace) -> EmulatorFolder:
    """The rendered scenarios for the emulator, from the cache or rendered now."""
    scenarios = unseen_scenarios(args.scenarios, args.seed)
    path = args.out / cache_name('emulator', scenarios, args.cycles, args.seed)
    if (path / INDEX_FILE).is_file():
        return EmulatorFolder.load(path)
    print(f'rendering {len(scenarios)} unseen test scenarios x {args.cycles} flash cycles '
          f'(1920x1200 BMP) into {path} (once) ...', flush=True)
    return write_emulator_folder(path, scenarios, args.cycles, args.seed,
                                 workers=min(2, os.cpu_count() or 1))


def run_emulator(args: argparse.Namespace) -> int:
    """Emulated camera -> landmark_node -> liveness_node; one scored pass of the folder."""
    folder = emulator_folder(args)
    board = Scoreboard(folder.labels, folder.cycles, write=say)
    tracker = LoopTracker(folder)
    shots = OverlayShots()
    frames_b: list[tuple[int, int]] = []  # (counter, stamp ns) of scored pairs' frame B
    pass_s = folder.n_images / args.frame_rate
    print(f'camera_node (pylon emulator, {folder.n_images} images, {args.frame_rate:g} Hz: '
          f'{pass_s:.1f} s per pass), landmark_node (dlib, {args.landmark_model} corner model), '
          'liveness_node '
          f'({args.model.name}); shared-memory DDS', flush=True)
    with (NodeProcesses(args.out / 'logs') as nodes,
          ResultListener(overlays=args.overlay_dir is not None) as listener):
        nodes.start('camera_node', node_command('camera_node', args.params_file, {
            'emulated_cameras': 1, 'emulator_image_dir': folder.images.resolve(),
            'frame_rate_hz': args.frame_rate, 'phase_source': 'image_check',
            'phase_offset': 0}))
        _start_landmarks_and_liveness(nodes, args, {'frame_rate_hz': args.frame_rate})
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        bar = None
        while not tracker.finished:
            for result, arrival_ns in listener.take():
                if not is_pair_result(result):
                    continue
                first = tracker.scored_loop is None
                scenario = tracker.scenario_of(result.frame_counter_b)
                if first:
                    say(f'pipeline up (first verdict on frame {result.frame_counter_b}); '
                        f'scoring pass {tracker.scored_loop + 1} of the folder\n')
                    say(HEADER)
                    bar = tqdm(total=len(folder.labels), unit='scenario', desc='playing',
                               leave=False, disable=None)  # no bar in a log file
                    deadline = time.monotonic() + 3 * pass_s + 60
                if scenario is not None:
                    board.face_appeared(scenario, stamp_of_counter(
                        result, tracker.first_counter_of(scenario), 1e9 / args.frame_rate))
                    board.add(scenario, result, arrival_ns)
                    shots.result_filed(scenario, result)
                    frames_b.append((result.frame_counter_b, stamp_nanoseconds(result.stamp_b)))
            for overlay in listener.take_overlays():
                shots.add(overlay)
            if bar is not None:
                bar.update(board.print_finished() - bar.n)
            nodes.check()
            if time.monotonic() > deadline:
                if tracker.scored_loop is None:
                    raise DemoError(f'no verdict within {STARTUP_TIMEOUT_S:g} s'
                                    f'{_why_no_pairs(nodes)} (logs in {nodes.log_dir})')
                break  # verdicts stopped coming: the rows say which scenarios lack them
        if bar is not None:
            bar.close()
        if nodes['camera_node'].count_lines('resulting frame rate') > 1:
            raise DemoError('the camera restarted during the pass: frame counters no longer '
                            'name the images')
    saved = shots.save(args.overlay_dir, folder.labels) if args.overlay_dir else []
    return _finish(board, _delivered_rate(frames_b, args.frame_rate),
                   f'  overlays: {", ".join(map(str, saved))}' if saved else '')


def _delivered_rate(frames_b: list[tuple[int, int]], set_rate_hz: float) -> str:
    """The camera's real frame rate from frame counters and stamps ('' without data)."""
    if len(frames_b) < 2:
        return ''
    (first_counter, first_ns), (last_counter, last_ns) = min(frames_b), max(frames_b)
    rate = 1e9 * (last_counter - first_counter) / max(last_ns - first_ns, 1)
    return f'  camera: {rate:.1f} frames/s delivered in the scored pass (set: {set_rate_hz:g} Hz)'


def _why_no_pairs(nodes: NodeProcesses) -> str:
    """liveness_node's newest word on why it matches no pairs, as ': <line>' ('' if none)."""
    said = [line for line in nodes['liveness_node'].lines if 'no synchronized set' in line]
    return f': {said[-1].strip()}' if said else ''


def _start_landmarks_and_liveness(nodes: NodeProcesses, args: argparse.Namespace,
                                  liveness_overrides: dict[str, object],
                                  frame_source: dict[str, object] | None = None) -> None:
    """``frame_source``: overrides for both nodes' ``frame_qos`` and ``camera_node_name``."""
    source = {'frame_qos': SENSOR_DATA, **(frame_source or {})}
    nodes.start('landmark_node', node_command('landmark_node', args.params_file, {
        'shape_model': args.landmark_model, **source}))
    nodes.start('liveness_node', node_command('liveness_node', args.params_file, {
        **args.liveness, **liveness_overrides, **source}))


def _finish(board: Scoreboard, *extra_lines: str) -> int:
    board.print_finished(final=True)
    print('\n' + '\n'.join([*board.summary(), *filter(None, extra_lines)]), flush=True)
    missing = [str(i + 1) for i in range(len(board.labels)) if not board.results.get(i)]
    if missing:
        print(f'{PROGRAM}: error: no verdict for scenario(s) {", ".join(missing)}',
              file=sys.stderr)
        return EXIT_FAILED
    return 0


# -- bag ------------------------------------------------------------------------------------
def demo_bag(args: argparse.Namespace) -> Path:
    """The bag to replay: --bag, or the demo scenarios rendered into --out (once)."""
    if args.bag is not None:
        return args.bag
    scenarios = unseen_scenarios(args.scenarios, args.seed)
    path = args.out / cache_name('bag', scenarios, args.cycles, args.seed)
    if not path.is_dir():
        print(f'rendering {len(scenarios)} unseen test scenarios x {args.cycles} flash cycles '
              f'(1920x1200, 120 Hz) into {path} (once) ...', flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        write_synthetic_bag(path, scenarios, args.cycles, args.seed)
    return path


def run_bag(args: argparse.Namespace) -> int:
    """Replay a labelled bag at camera speed; results filed by frame B's recorded stamp."""
    bag = demo_bag(args)
    segments = read_label_segments(bag)
    starts = [segment.start_ns for segment in segments]
    board = Scoreboard([s.labels for s in segments], None, write=say)

    def on_result(result: LivenessResult, arrival_ns: int | None = None) -> None:
        if is_pair_result(result):
            scenario = max(bisect_right(starts, stamp_nanoseconds(result.stamp_b)) - 1, 0)
            board.add(scenario, result, None)  # recorded stamps: no end-to-end latency

    corners = 'the bag\'s ground-truth corners' if args.ground_truth_corners else \
        f'landmark_node (dlib, {args.landmark_model} corner model)'
    print(f'replaying {bag} at {args.rate:g} x camera speed to liveness_node '
          f'({args.model.name}) with {corners}; shared-memory DDS\n\n{HEADER}', flush=True)
    if args.ground_truth_corners:
        replay_through_liveness_node(bag, args.model, on_result, rate=args.rate,
                                     on_tick=board.print_finished, log_dir=args.out / 'logs',
                                     pair=args.pair, region=args.region, eye=args.eye)
    else:
        _replay_through_landmarks(bag, args, on_result, board)
    return _finish(board)


def _replay_through_landmarks(bag: Path, args: argparse.Namespace,
                              on_result: Callable[..., None], board: Scoreboard) -> None:
    config = pair_config(args.liveness['pair'])
    used = {config.phase_a, config.phase_b, Phase.FRONT}
    drained = [phase for phase in DEFAULT_PATTERN if phase not in used]
    with NodeProcesses(args.out / 'logs') as nodes, ResultListener(drained) as listener:
        # the replay plays camera, and it is lossless only towards reliable readers
        _start_landmarks_and_liveness(nodes, args, {'sync_queue_size': 50}, {
            'frame_qos': RELIABLE, 'camera_node_name': REPLAY_NODE_NAME})
        readers = Counter('/' + flash_frame_topic(phase)  # the landmark phase and the pair
                          for phase in (Phase.FRONT, config.phase_a, config.phase_b))
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while missing := [f'{topic}: {found} of {count}' for topic, count in readers.items()
                          if (found := listener.subscribers(topic)) < count]:
            listener.take(0.1)
            nodes.check()
            if time.monotonic() > deadline:
                raise DemoError(f'nodes did not subscribe within {STARTUP_TIMEOUT_S:g} s '
                                f'(readers {", ".join(missing)})')
        replay = nodes.start('replay', [
            sys.executable, '-m', 'antispoof_ros.offline.bagtools.replay', str(bag),
            '--rate', str(args.rate), '--wait-for-subscribers', '1'])
        while replay.running:
            for result, arrival_ns in listener.take():
                on_result(result, arrival_ns)
            board.print_finished()
            nodes.check(['landmark_node', 'liveness_node'])
        if replay.exit_code:
            raise DemoError(f'replay failed: {replay.last_error_line()}')
        settle = time.monotonic() + SETTLE_S
        while time.monotonic() < settle:
            for result, arrival_ns in listener.take():
                on_result(result, arrival_ns)


# -- rig ------------------------------------------------------------------------------------
def run_rig(args: argparse.Namespace) -> int:
    """A real camera: a status line per second until Ctrl-C (or --seconds), then totals."""
    decisions: Counter = Counter()
    node_latencies, end_to_end = [], []
    last: LivenessResult | None = None
    print(f'camera_node, landmark_node, liveness_node ({args.model.name}) with '
          f'{args.params_file}; Ctrl-C stops', flush=True)
    started = time.monotonic()
    try:
        with NodeProcesses(args.out / 'logs') as nodes, ResultListener() as listener:
            nodes.start('camera_node', node_command('camera_node', args.params_file, {}))
            _start_landmarks_and_liveness(nodes, args, {})
            next_report = started + RIG_REPORT_PERIOD_S
            while not args.seconds or time.monotonic() - started < args.seconds:
                for result, arrival_ns in listener.take():
                    last = result
                    if is_pair_result(result):
                        decisions[DECISIONS[result.pair_decision]] += 1
                        node_latencies.append(result.latency_ms)
                        end_to_end.append((arrival_ns - stamp_nanoseconds(result.stamp_b)) / 1e6)
                nodes.check()
                if time.monotonic() >= next_report:
                    next_report += RIG_REPORT_PERIOD_S
                    print(_rig_line(time.monotonic() - started, decisions, last), flush=True)
    except KeyboardInterrupt:
        pass  # the rig's normal end; the nodes are stopped by now
    print(f'\n{sum(decisions.values())} pairs: {_decision_counts(decisions)}\n'
          f'  latency, liveness_node (frame B arrival -> result published): '
          f'{percentiles(node_latencies)}\n'
          f'  latency, end to end (frame B stamp -> result received here): '
          f'{percentiles(end_to_end)}', flush=True)
    return 0 if decisions else EXIT_FAILED


def _decision_counts(decisions: Counter) -> str:
    return ', '.join(f'{name.lower()} {decisions[name]}' for name in DECISIONS.values())


def _rig_line(elapsed_s: float, decisions: Counter, last: LivenessResult | None) -> str:
    if last is None:
        return f'{elapsed_s:7.1f} s  waiting for the first verdict'
    return (f'{elapsed_s:7.1f} s  pairs: {_decision_counts(decisions)}; last score '
            f'{last.score:.2f}, fused {DECISIONS[last.decision]} ({last.reason_text or "ok"})')


if __name__ == '__main__':
    sys.exit(main())
