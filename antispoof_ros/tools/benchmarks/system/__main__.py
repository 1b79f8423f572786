"""System benchmark: the landmark and liveness nodes at 120 Hz, as separate processes or one.

A frame source process publishes a cached synthetic bag (live subject, office light,
1920x1200 Mono8, all four flash phases) at 120 Hz over shared-memory DDS; the nodes run as
``landmark_node`` + ``liveness_node`` (layout separate) or as ``antispoof_pipeline --nodes
landmark,liveness`` (layout single) with config/antispoof.yaml. After a warm-up that is
discarded (model load, first detection, discovery) it reports per layout: frames sent and
how late the publisher ran, frames lost per stage, NO_FACE answers, pairs/s, end-to-end
latency (frame B's stamp = publish time -> LivenessResult received), the time to verdict
(first front frame sent -> first fused LIVE or SPOOF), CPU per process in %
of one core, peak memory (VmHWM), and PASS/FAIL against the targets (no frame
lost, every cycle evaluated, p99 <= 20 ms, nodes <= 1.2 cores). ``--soak`` (600 s unless
``--seconds`` says otherwise) adds RSS and latency per minute, memory growth (<= 5 %) and
latency drift (first vs last minute). Exit status: 0 all targets met, 1 a target failed,
2 bad arguments or the benchmark could not run, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
import sys

from antispoof_ros.offline.atomic_file import write_atomically
from antispoof_ros.offline.bagtools import BagToolError
from antispoof_ros.offline.cli import EXIT_BAD_INPUT, OneLineArgumentParser, fail, positive_number
from antispoof_ros.tools.benchmarks.system.frame_source import FrameSourceError, cached_bag
from antispoof_ros.tools.benchmarks.system.runner import (
    DEFAULT_PARAMS,
    FRAME_SOURCE,
    LAYOUTS,
    REPO,
    BenchmarkError,
    RunSettings,
    distinct_domains,
    run_layout,
)
from antispoof_ros.tools.benchmarks.system.statistics import describe_verdict_times
from antispoof_ros.tools.harness.local_dds import apply_local_dds_environment

PROGRAM = 'python -m antispoof_ros.tools.benchmarks.system'
CACHE_DIR = REPO / 'runs' / 'system_benchmark'
DEFAULT_SECONDS = 60.0
DEFAULT_SOAK_SECONDS = 600.0
MIN_SOAK_SECONDS = 120.0  # a first and a last minute to compare
EXIT_FAILED_TARGET = 1
EXIT_INTERRUPTED = 130
TARGET_LABELS = {
    'no_frame_lost': '0 frames lost',
    'every_cycle_evaluated': 'every cycle evaluated',
    'latency_p99_le_20ms': 'end-to-end p99 <= 20 ms',
    'total_cpu_le_1.2_cores': 'nodes <= 1.2 cores',
    'memory_growth_le_5pct': 'memory growth <= 5 %',
    'no_latency_drift': 'no latency drift',
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, checked; argparse exits with one error line and status 2."""
    parser = OneLineArgumentParser(prog=PROGRAM, description=__doc__.split('\n')[0])
    parser.add_argument('--layout', choices=[*LAYOUTS, 'both'], default='both')
    parser.add_argument('--seconds', type=positive_number,
                        help=f'measured window (default {DEFAULT_SECONDS:g}, '
                             f'{DEFAULT_SOAK_SECONDS:g} with --soak)')
    parser.add_argument('--soak', action='store_true',
                        help='also sample RSS and latency per minute: growth and drift')
    parser.add_argument('--warmup', type=float, default=5.0,
                        help='seconds discarded before the window (default 5)')
    parser.add_argument('--json', type=Path, help='also write every figure to this file')
    parser.add_argument('--params-file', type=Path, default=DEFAULT_PARAMS,
                        help='node parameters (default: config/antispoof.yaml)')
    parser.add_argument('--no-progress', dest='progress', action='store_false')
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (DEFAULT_SOAK_SECONDS if args.soak else DEFAULT_SECONDS)
    if not (math.isfinite(args.warmup) and args.warmup >= 0):
        parser.error(f'--warmup must be 0 or more, got {args.warmup}')
    if args.soak and args.seconds < MIN_SOAK_SECONDS:
        parser.error(f'--soak needs --seconds >= {MIN_SOAK_SECONDS:g} '
                     '(a first and a last minute to compare)')
    if args.json is not None and not args.json.parent.is_dir():
        parser.error(f'--json: folder {args.json.parent} does not exist')
    if not args.params_file.is_file():
        parser.error(f'--params-file: no such file: {args.params_file}')
    args.layouts = list(LAYOUTS) if args.layout == 'both' else [args.layout]
    return args


def _verdicts(targets: dict[str, bool]) -> str:
    return '; '.join(f"{TARGET_LABELS[key]} {'PASS' if ok else 'FAIL'}"
                     for key, ok in targets.items())


def _counts(counts: dict[str, int]) -> str:
    return ', '.join(f'{key} {value}' for key, value in counts.items()) or 'none'


def _latency(figures: dict) -> str:
    return (f"p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms, "
            f"max {figures['max_ms']:.2f} ms")


def print_report(report: dict) -> None:
    """One layout's figures, as lines a person reads."""
    cpu, memory = report['cpu_percent_of_one_core'], report['peak_memory_mib']
    nodes = report['node_processes']
    sent = report['frames_sent']
    counters = report['node_counters']
    print(f"\n== layout {report['layout']}: {' + '.join(nodes)}, pair {report['pair']}, "
          f"{report['window_s']:.1f} s measured after a {report['warmup_s']:g} s warm-up "
          '(discarded) ==')
    print(f"publisher: sent {_counts(sent)} "
          f"({sum(sent.values()) / report['window_s']:.1f} frames/s); late "
          f"{_latency(report['publisher_late_ms'])}; CPU {cpu[FRAME_SOURCE]:.1f} % of a "
          f"core, peak memory {memory[FRAME_SOURCE]:.0f} MiB")
    print(f"landmarks: {report['front_frames_sent']} front frames sent, "
          f"{report['eye_corners_received']} EyeCorners received, "
          f"lost {report['frames_lost']['eye_corners']}, NO_FACE {report['no_face']}; "
          f"node's own counters {_counts(counters['landmark'])}")
    print(f"liveness:  {report['cycles_sent']} cycles sent, {report['results_with_pair']} "
          f"results with a pair ({report['pairs_scored']} scored), lost "
          f"{report['frames_lost']['pairs']}; {report['pair_rate_per_s']:.2f} pairs/s; "
          f"decisions {_counts(report['decisions'])}; {report['results_without_pair']} results "
          f"without a pair; node's own counters (non-zero) {_counts(counters['liveness'])}")
    print(f"end to end (frame B stamp -> LivenessResult, n={report['latency_ms']['count']}): "
          f"{_latency(report['latency_ms'])}")
    print(f"  of which: frame A stamp -> EyeCorners here "
          f"{_latency(report['eye_corners_latency_ms'])}; "
          "liveness_node (frame B arrival -> published) "
          f"{_latency(report['liveness_node_latency_ms'])}")
    print('time to verdict (first front frame sent -> first fused LIVE or SPOOF received): '
          f"{describe_verdict_times(report['time_to_verdict_ms'])}")
    print(f"CPU (% of one core): {', '.join(f'{n} {cpu[n]:.1f}' for n in nodes)}; nodes total "
          f"{report['total_node_cpu_cores']:.2f} cores (publisher separate, above)")
    print(f"peak memory (VmHWM): {', '.join(f'{n} {memory[n]:.0f} MiB' for n in nodes)}")
    if 'soak' in report:
        print_soak(report['soak'])
    print(f"targets: {_verdicts(report['targets'])}")


def print_soak(soak: dict) -> None:
    """Per-minute latency and RSS, growth and drift of a soak run."""
    print('soak, per minute:')
    for minute, figures in enumerate(soak['latency_per_minute']):
        print(f"  minute {minute + 1:3d}: n={figures['count']:5d}  p50 {figures['p50_ms']:.2f} ms"
              f"  p99 {figures['p99_ms']:.2f} ms")
    for name, values in soak['rss_mib'].items():
        print(f"  RSS {name}: {' '.join(f'{v:.0f}' for v in values)} MiB")
    growth = ', '.join(f'{n} {v:+.2f} %' for n, v in soak['memory_growth_percent'].items())
    drift = soak['latency_drift']
    print(f'memory growth (end vs after warm-up): {growth}')
    print(f"latency first vs last minute: p50 {drift['first_minute']['p50_ms']:.2f} -> "
          f"{drift['last_minute']['p50_ms']:.2f} ms, p99 {drift['first_minute']['p99_ms']:.2f} "
          f"-> {drift['last_minute']['p99_ms']:.2f} ms")
    print(f"soak targets: {_verdicts(soak['targets'])}")


def print_side_by_side(reports: list[dict]) -> None:
    """The layouts' key figures in columns."""
    rows = {
        'frames lost (corners / pairs)': lambda r: '{eye_corners} / {pairs}'.format(
            **r['frames_lost']),
        'pairs/s': lambda r: f"{r['pair_rate_per_s']:.2f}",
        'latency p50 / p99 / max (ms)': lambda r: '{p50_ms:.2f} / {p99_ms:.2f} / {max_ms:.2f}'
        .format(**r['latency_ms']),
        'time to verdict (ms)': lambda r: f"{r['time_to_verdict_ms']['max_ms']:.0f}",
        'nodes CPU (cores)': lambda r: f"{r['total_node_cpu_cores']:.2f}",
        'publisher CPU (% of a core)':
            lambda r: f"{r['cpu_percent_of_one_core'][FRAME_SOURCE]:.1f}",
        'nodes peak memory (MiB)':
            lambda r: f"{sum(r['peak_memory_mib'][n] for n in r['node_processes']):.0f}",
        'NO_FACE answers': lambda r: str(r['no_face']),
        'targets': lambda r: 'PASS' if all_passed(r) else 'FAIL',
    }
    print(f"\n{'':31s}" + ''.join(f"{r['layout']:>24s}" for r in reports))
    for label, cell in rows.items():
        print(f'{label:31s}' + ''.join(f'{cell(r):>24s}' for r in reports))


def all_passed(report: dict) -> bool:
    """Whether the layout met every target, the soak's included."""
    targets = dict(report['targets'])
    targets.update(report.get('soak', {}).get('targets', {}))
    return all(targets.values())


def main(argv: list[str] | None = None) -> int:
    """Run the requested layouts, print and optionally save the figures."""
    args = parse_args(argv)
    apply_local_dds_environment()  # shared memory only here; each layout gets its own domain
    try:
        settings = RunSettings(seconds=args.seconds,
                               bag=cached_bag(CACHE_DIR, progress=args.progress),
                               warmup_s=args.warmup, soak=args.soak,
                               params_file=args.params_file, progress=args.progress)
        reports = []
        for layout, domain_id in zip(args.layouts, distinct_domains(len(args.layouts)),
                                     strict=True):
            reports.append(run_layout(layout, settings, domain_id))
            print_report(reports[-1])
    except (BenchmarkError, BagToolError, FrameSourceError, OSError) as error:
        return fail(PROGRAM, error, EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print(f'{PROGRAM}: interrupted; processes stopped', file=sys.stderr)
        return EXIT_INTERRUPTED
    if len(reports) > 1:
        print_side_by_side(reports)
    if args.json is not None:
        text = json.dumps(reports, indent=2) + '\n'
        write_atomically(args.json, lambda handle: handle.write(text.encode()))
    return 0 if all(all_passed(report) for report in reports) else EXIT_FAILED_TARGET


if __name__ == '__main__':
    sys.exit(main())
