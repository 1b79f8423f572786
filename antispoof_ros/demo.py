"""The main job (``make demo``): run the pipeline on this machine and show what it does.

Starts camera, landmark and liveness nodes in one process over shared-memory-only DDS
(nothing leaves the machine), watches the topics for a few seconds, stops the pipeline
with SIGINT and prints a summary. The full scenario demo (emulated camera fed with
synthetic live faces, prints and masks) grows here as the pipeline stages land.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from antispoof_ros.local_dds import local_dds_environment

CONFIG = Path(__file__).resolve().parent.parent / 'config' / 'antispoof.yaml'
NODES = ('camera_node', 'landmark_node', 'liveness_node')


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line of the demo."""
    parser = argparse.ArgumentParser(prog='antispoof-demo', description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=float, default=3.0, help='how long to run (s)')
    parser.add_argument('--params-file', type=Path, default=CONFIG, help='node parameters')
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error('--seconds must be positive')
    if not args.params_file.is_file():
        parser.error(f'no such params file: {args.params_file}')
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline for a while and report; exit code 0 when every node came up."""
    args = parse_args(argv)
    env = local_dds_environment()
    print(f'antispoof demo: pipeline on ROS_DOMAIN_ID={env["ROS_DOMAIN_ID"]}, shared memory only')
    command = [sys.executable, '-m', 'antispoof_ros.nodes.pipeline',
               '--ros-args', '--params-file', str(args.params_file)]
    started = time.monotonic()
    with subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as pipeline:
        time.sleep(args.seconds)
        pipeline.send_signal(signal.SIGINT)
        output, _ = pipeline.communicate(timeout=30)
    print(output, end='')
    ready = [name for name in NODES if f'[{name}]: parameters:' in output]
    print(f'summary: {len(ready)}/{len(NODES)} nodes started ({", ".join(ready)}), '
          f'pipeline exit code {pipeline.returncode}, ran {time.monotonic() - started:.1f} s')
    return 0 if len(ready) == len(NODES) and pipeline.returncode == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
