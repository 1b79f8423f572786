"""The main job end to end, small: render, replay at camera speed, verdict table, summary."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_demo_prints_a_verdict_per_scenario_and_a_summary(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, '-m', 'antispoof_ros.demo', '--scenarios', '2', '--cycles', '3',
         '--out', str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines()
            if line.strip()[:1].isdigit() and ('LIVE' in line or 'SPOOF' in line
                                               or 'UNKNOWN' in line)]
    assert len(rows) == 2, result.stdout
    assert 'summary per species' in result.stdout
    assert 'liveness_node latency' in result.stdout
    assert 'Traceback' not in result.stderr
