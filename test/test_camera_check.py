"""The rig check on pylon's emulated camera: a correct rig, a miswired one, bad input."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest

from antispoof_ros.camera.check import CONFIRMED, NOT_CONFIRMED, diagnose, identify_phases
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.offline.synthetic.phase_coded_images import write_phase_coded_folder

REPO = Path(__file__).resolve().parent.parent
SIZE = ('--width', '640', '--height', '480')
DARK, FRONT, RIGHT, LEFT = DEFAULT_PATTERN


def rig_check(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run the rig check as an engineer would, its output captured."""
    return subprocess.run([sys.executable, '-m', 'antispoof_ros.camera.check', *arguments],
                          cwd=REPO, capture_output=True, text=True, timeout=180, check=False)


def rig_folder(folder: Path, firing_order: tuple[Phase, ...]) -> Path:
    """Phase-coded frames as a rig whose flashes fire in ``firing_order`` would show them."""
    write_phase_coded_folder(folder, firing_order, cycles=1, width=640, height=480)
    return folder


def test_dry_run_prints_the_ace_usb_sequencer_plan_without_a_camera() -> None:
    result = rig_check('--dry-run', '--wiring', 'sequencer', '--camera-family', 'ace_usb',
                       '--flash-lines', 'front:Line2,right:Line3,left:Line4')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "flash wiring 'sequencer' for ace USB: 84 steps"
    assert lines[1].split() == ['1', 'SequencerMode', '=', 'Off']
    assert lines[-1].split() == ['84', 'SequencerMode', '=', 'On']
    assert sum('SequencerSetSave()' in line for line in lines) == 4
    print(result.stdout)


def test_dry_run_of_the_external_wiring_is_the_strobe_line() -> None:
    result = rig_check('--dry-run', '--line-outputs', 'Line2:ExposureActive')
    assert result.returncode == 0, result.stderr
    assert [line.split() for line in result.stdout.splitlines()[1:]] == [
        ['1', 'LineSelector', '=', 'Line2'], ['2', 'LineMode', '=', 'Output'],
        ['3', 'LineSource', '=', 'ExposureActive']]


@pytest.mark.parametrize(('arguments', 'message'), [
    (('--wiring', 'sequencer', '--flash-lines', 'front:Line2,right:Line3,left:Line9'),
     "unknown output line 'Line9' (ace USB outputs: Line2, Line3, Line4)"),
    (('--wiring', 'external',), "flash wiring 'external' needs the strobe line"),
    (('--pattern', 'dark,front,front'), 'flash pattern repeats a phase'),
])
@pytest.mark.parametrize('dry_run', [True, False])
def test_bad_input_is_one_error_line_and_exit_2(arguments: tuple[str, ...], message: str,
                                                dry_run: bool) -> None:
    result = rig_check(*arguments, *(('--dry-run',) if dry_run else ()))
    assert result.returncode == 2
    assert result.stderr.count('\n') == 1 and message in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr


def test_a_pattern_the_images_cannot_confirm_is_refused_before_the_camera() -> None:
    result = rig_check('--pattern', 'front,right', '--line-outputs', 'Line2:ExposureActive')
    assert result.returncode == 2
    assert result.stderr == ('python -m antispoof_ros.camera.check: error: image_check needs a '
                             'dark phase or both side flashes in the pattern\n')


@pytest.mark.slow
def test_a_correctly_wired_rig_is_confirmed(tmp_path: Path) -> None:
    folder = rig_folder(tmp_path, DEFAULT_PATTERN)
    result = rig_check('--emulated', '1', '--image-dir', str(folder), *SIZE,
                       '--line-outputs', 'Line2:ExposureActive', '--cycles', '10')
    print(result.stdout, result.stderr)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[-1] == 'PATTERN CONFIRMED'
    assert any(line.startswith('image check: 10 of 10 cycles decided, 10 agree') for line in lines)
    assert any(line.startswith('dropped frames: 0 ') for line in lines)
    assert any(line.startswith('frame interval: p50 ') for line in lines)
    rows = {line.split()[0]: line.split() for line in lines[2:6]}
    for phase in DEFAULT_PATTERN:
        assert rows[phase.label][1] == '10'  # frames
        assert rows[phase.label][4:] == [phase.label, phase.label]  # expected, observed


@pytest.mark.slow
def test_a_rig_with_right_and_left_swapped_is_reported_as_miswired(tmp_path: Path) -> None:
    folder = rig_folder(tmp_path, (DARK, FRONT, LEFT, RIGHT))
    result = rig_check('--emulated', '1', '--image-dir', str(folder), *SIZE,
                       '--line-outputs', 'Line2:ExposureActive', '--cycles', '10')
    print(result.stdout, result.stderr)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[-1] == 'MISWIRED: right and left are swapped'
    rows = {line.split()[0]: line.split() for line in lines[2:6]}
    assert rows['right'][4:] == ['right', 'left', '<--']
    assert rows['left'][4:] == ['left', 'right', '<--']


@pytest.mark.slow
def test_the_sequencer_wiring_is_refused_on_the_emulated_camera(tmp_path: Path) -> None:
    folder = rig_folder(tmp_path, DEFAULT_PATTERN)
    result = rig_check('--emulated', '1', '--image-dir', str(folder), *SIZE,
                       '--wiring', 'sequencer')
    assert result.returncode == 2
    assert result.stderr == ("python -m antispoof_ros.camera.check: camera error: flash_wiring "
                             "'sequencer' needs a camera sequencer; Emulation has no "
                             "SequencerMode feature (use flash_wiring 'external')\n")


def test_flashes_out_of_step_with_the_labels_are_named_with_the_offset_that_fits() -> None:
    observed = [FRONT, RIGHT, LEFT, DARK]  # every frame shows the next phase's flash
    verdict = diagnose(DEFAULT_PATTERN, observed, offset=0)
    assert verdict.status == NOT_CONFIRMED
    assert verdict.text == ('MISWIRED: the flashes run 1 frame ahead of the labels '
                            '(phase offset 1 would match)')


def test_phases_are_identified_from_brightness_and_asymmetry() -> None:
    brightness, asymmetry = [12.0, 110.0, 90.0, 90.0], [0.0, 0.0, -0.3, 0.3]
    assert identify_phases(brightness, asymmetry, DEFAULT_PATTERN) == list(DEFAULT_PATTERN)
    assert diagnose(DEFAULT_PATTERN, DEFAULT_PATTERN, 0).status == CONFIRMED
    # flashes off: no dark frame stands out and no side is lit
    unlit = identify_phases([50.0] * 4, [0.0] * 4, DEFAULT_PATTERN)
    assert unlit == [None] * 4
    assert diagnose(DEFAULT_PATTERN, unlit, 0).text.startswith(
        'NOT CONFIRMED: the images do not tell which flash lit the dark, front, right, left')
