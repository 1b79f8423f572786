"""Flash wiring plans: the sequencer plan as data, the refusal and strobe paths on the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from antispoof_ros.camera.pylon_source import CameraConfigError, CameraSettings, PylonCamera
from antispoof_ros.camera.wiring import (
    FAMILIES,
    Execute,
    SequencerCheck,
    Step,
    WiringError,
    Write,
    camera_family,
    external_controller_plan,
    format_plan,
    line_output_plan,
    outputs_off_plan,
    parse_flash_lines,
    sequencer_plan,
)
from antispoof_ros.flash import DEFAULT_PATTERN, Phase
from antispoof_ros.offline.synthetic.phase_coded_images import write_phase_coded_folder

THESIS_LINES_TEXT = ('front:Line2', 'right:Line3', 'left:Line4')
THESIS_LINES = parse_flash_lines(THESIS_LINES_TEXT)
# features whose value depends on a selector written before them
SELECTED_BY = {
    'LineMode': 'LineSelector', 'LineSource': 'LineSelector',
    'UserOutputValue': 'UserOutputSelector',
    'SequencerSetNext': 'SequencerPathSelector',
    'SequencerTriggerSource': 'SequencerPathSelector',
    'SequencerTriggerActivation': 'SequencerPathSelector',
}


def stored_sets(plan: list[Step]) -> tuple[dict[str, object], dict[int, dict[tuple, object]]]:
    """Run a plan on a model of GenICam selectors: the global features and each saved set."""
    active: dict[tuple, object] = {}
    saved: dict[int, dict[tuple, object]] = {}
    for step in plan:
        if isinstance(step, Execute):
            assert step.name == 'SequencerSetSave'
            assert active[('SequencerConfigurationMode',)] == 'On'
            saved[active[('SequencerSetSelector',)]] = dict(active)
            continue
        selector = SELECTED_BY.get(step.name)
        key = (step.name, active[(selector,)]) if selector else (step.name,)
        active[key] = step.value
    return {key[0]: value for key, value in active.items() if len(key) == 1}, saved


def run_sequencer(plan: list[Step], frames: int) -> list[tuple[int, frozenset[str]]]:
    """(set index, output lines driven by the exposure) of each frame the sequencer runs."""
    final, saved = stored_sets(plan)
    assert final['SequencerMode'] == 'On' and final['SequencerConfigurationMode'] == 'Off'
    index, shown = final['SequencerSetStart'], []
    for _ in range(frames):
        current = saved[index]
        fired = frozenset(key[1] for key, value in current.items()
                          if key[0] == 'LineSource' and value == 'ExposureActive')
        shown.append((index, fired))
        assert current[('SequencerTriggerSource', 1)] == 'FrameStart'  # path 1: every frame
        index = current[('SequencerSetNext', 1)]
    return shown


def test_ace_usb_sequencer_plan_without_sequencer_hardware_follows_basler_documented_order(
) -> None:
    family = camera_family('acA1920-155um')
    assert family is FAMILIES['ace_usb']
    plan = sequencer_plan(DEFAULT_PATTERN, THESIS_LINES, family)
    names = [step.name for step in plan]
    # configuration mode around the whole configuration, sequencer mode on at the very end
    assert plan[:2] == [Write('SequencerMode', 'Off'), Write('SequencerConfigurationMode', 'On')]
    assert plan[-2:] == [Write('SequencerConfigurationMode', 'Off'), Write('SequencerMode', 'On')]
    first_save = names.index('SequencerSetSave')
    # the chunk is part of each ace USB set: enabled before the first set is saved
    chunk_steps = (Write('ChunkModeActive', True), Write('ChunkSelector', 'SequencerSetActive'),
                   Write('ChunkEnable', True), Write('SequencerSetStart', 0))
    for chunk_step in chunk_steps:
        assert plan.index(chunk_step) < first_save
    # sets configured in ascending order, each saved once
    selected = [step.value for step in plan if step.name == 'SequencerSetSelector']
    assert selected == [0, 1, 2, 3] and names.count('SequencerSetSave') == 4
    _, saved = stored_sets(plan)
    for index in range(4):
        stored = saved[index]
        # path 0 resets to set 0 on a software signal, path 1 advances on every frame start
        assert stored[('SequencerSetNext', 0)] == 0
        assert stored[('SequencerTriggerSource', 0)] == 'SoftwareSignal1'
        assert stored[('SequencerSetNext', 1)] == (index + 1) % 4
        assert stored[('SequencerTriggerSource', 1)] == 'FrameStart'
        # ace USB accepts only LevelHigh as the sequencer trigger activation
        assert stored[('SequencerTriggerActivation', 0)] == 'LevelHigh'
        assert stored[('SequencerTriggerActivation', 1)] == 'LevelHigh'
        assert stored[('ChunkModeActive',)] is True
        # a flash line idles low through its user output outside its own phase
        for line, user_output in (('Line2', 'UserOutput1'), ('Line3', 'UserOutput2'),
                                  ('Line4', 'UserOutput3')):
            assert stored[('UserOutputValue', user_output)] is False
            assert stored[('LineSource', line)] in ('ExposureActive', user_output)
    print(format_plan(plan))


def test_the_sequencer_fires_each_phase_on_its_lines_cycle_after_cycle() -> None:
    plan = sequencer_plan(DEFAULT_PATTERN, THESIS_LINES, FAMILIES['ace_usb'])
    shown = run_sequencer(plan, 12)
    expected = {Phase.DARK: frozenset(), Phase.FRONT: frozenset({'Line2'}),
                Phase.RIGHT: frozenset({'Line3'}), Phase.LEFT: frozenset({'Line4'})}
    assert shown == [(i % 4, expected[DEFAULT_PATTERN[i % 4]]) for i in range(12)]


def test_ace_2_plan_is_edge_triggered_and_a_phase_may_fire_two_lines() -> None:
    lines = parse_flash_lines(['front:Line2+Line3', 'right:Line4'])
    pattern = (Phase.FRONT, Phase.DARK, Phase.RIGHT)
    plan = sequencer_plan(pattern, lines, camera_family('a2A1920-160umBAS'))
    _, saved = stored_sets(plan)
    assert {saved[0][('SequencerTriggerActivation', 1)]} == {'RisingEdge'}
    assert run_sequencer(plan, 3) == [(0, frozenset({'Line2', 'Line3'})), (1, frozenset()),
                                      (2, frozenset({'Line4'}))]


@pytest.mark.parametrize(('make_plan', 'message'), [
    (lambda: sequencer_plan(DEFAULT_PATTERN, parse_flash_lines(
        ['front:Line2', 'right:Line3', 'left:Line7']), FAMILIES['ace_usb']),
     "unknown output line 'Line7' (ace USB outputs: Line2, Line3, Line4)"),
    (lambda: sequencer_plan(DEFAULT_PATTERN, THESIS_LINES, FAMILIES['ace_usb'], available_sets=3),
     'flash pattern has 4 phases but the camera has only 3 sequencer sets'),
    (lambda: sequencer_plan(DEFAULT_PATTERN, parse_flash_lines(['front:Line2', 'right:Line3']),
                            FAMILIES['ace_usb']),
     'no flash output line for phase(s) left'),
    (lambda: sequencer_plan(DEFAULT_PATTERN, parse_flash_lines(['dark:Line2', *THESIS_LINES_TEXT]),
                            FAMILIES['ace_usb']),
     'the dark phase fires no flash: give it no output line'),
    (lambda: parse_flash_lines(['top:Line2']), "unknown flash phase 'top'"),
    (lambda: parse_flash_lines(['front']), "flash line 'front' must look like front:Line2"),
    (lambda: camera_family('Emulation'), "no sequencer plan for camera 'Emulation'"),
    (lambda: external_controller_plan(()), "flash wiring 'external' needs the strobe line"),
])
def test_bad_wiring_is_one_clear_line(make_plan: object, message: str) -> None:
    with pytest.raises(WiringError) as error:
        make_plan()
    assert message in str(error.value)
    assert '\n' not in str(error.value)


def test_outputs_off_stops_the_sequencer_then_switches_every_driven_line_off() -> None:
    plan = sequencer_plan(DEFAULT_PATTERN, THESIS_LINES, camera_family('ace_usb'))
    assert outputs_off_plan(plan) == [
        Write('SequencerMode', 'Off'),
        Write('LineSelector', 'Line2'), Write('LineSource', 'Off'),
        Write('LineSelector', 'Line3'), Write('LineSource', 'Off'),
        Write('LineSelector', 'Line4'), Write('LineSource', 'Off'),
    ]


def test_outputs_off_holds_a_line_without_off_low_by_its_user_output() -> None:
    plan = line_output_plan(['Line2:ExposureActive', 'Line3:ExposureActive'])
    assert outputs_off_plan(plan, {'Line3': 'UserOutput2'}) == [
        Write('LineSelector', 'Line2'), Write('LineSource', 'Off'),
        Write('LineSelector', 'Line3'), Write('UserOutputSelector', 'UserOutput2'),
        Write('UserOutputValue', False), Write('LineSource', 'UserOutput2'),
    ]
    assert outputs_off_plan([]) == []  # wiring 'none' without line_outputs: nothing driven


def test_sequencer_check_verifies_only_while_the_set_index_follows_the_plan() -> None:
    check = SequencerCheck(sets=4, confirm_cycles=2)
    # the first two cycles confirm the plan; lost frames (block 9, 10) keep the rhythm
    verdicts = [check.add(block, block % 4) for block in range(9)]
    assert verdicts == [False] * 7 + [True, True]
    assert check.add(11, 3)
    # a set index out of step: not verified until two whole cycles follow the plan again
    assert not check.add(12, 2)
    again = [check.add(block, (block + 2) % 4) for block in range(13, 21)]
    assert again == [False] * 7 + [True]
    assert check.mismatches == 1


def test_a_stuck_sequencer_is_never_verified() -> None:
    check = SequencerCheck(sets=4)
    assert not any(check.add(block, 0) for block in range(20))
    assert not any(check.add(block, None) for block in range(20, 30))


@pytest.fixture(scope='module')
def small_coded_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp('wiring_images')
    write_phase_coded_folder(folder, DEFAULT_PATTERN, cycles=1, width=320, height=240)
    return folder


def emulated(folder: Path, **wiring: object) -> PylonCamera:
    return PylonCamera(CameraSettings(emulated_cameras=1, emulator_image_dir=str(folder),
                                      width=320, height=240, **wiring))


def test_the_emulated_camera_has_no_sequencer_and_is_refused_in_one_line(
    small_coded_folder: Path,
) -> None:
    camera = emulated(small_coded_folder, flash_wiring='sequencer',
                      flash_lines=THESIS_LINES_TEXT)
    with pytest.raises(CameraConfigError) as error:
        camera.open()
    assert str(error.value) == ("flash_wiring 'sequencer' needs a camera sequencer; Emulation "
                                "has no SequencerMode feature (use flash_wiring 'external')")
    assert camera.camera is None  # released


def test_external_wiring_programs_the_strobe_line_at_every_open(small_coded_folder: Path) -> None:
    camera = emulated(small_coded_folder, flash_wiring='external',
                      line_outputs=('Line2:ExposureActive',))
    info = camera.open()
    try:
        assert info.wiring_plan == (Write('LineSelector', 'Line2'), Write('LineMode', 'Output'),
                                    Write('LineSource', 'ExposureActive'))
        camera.camera.LineSelector.Value = 'Line2'
        assert camera.camera.LineSource.Value == 'ExposureActive'
        camera.camera.LineSource.Value = 'Off'  # someone changed it while it was unplugged
    finally:
        camera.close()
    camera.open()  # a reconnect programs the camera again
    try:
        camera.camera.LineSelector.Value = 'Line2'
        assert camera.camera.LineSource.Value == 'ExposureActive'
    finally:
        camera.close()


@pytest.mark.parametrize(('wiring', 'message'), [
    ({'flash_wiring': 'external'}, "flash wiring 'external' needs the strobe line"),
    ({'flash_wiring': 'external', 'line_outputs': ('Line9:ExposureActive',)},
     'LineSelector = Line9'),
    ({'line_outputs': ('Line2',)}, "line output 'Line2' must look like Line2:ExposureActive"),
])
def test_bad_strobe_wiring_on_the_emulator_is_one_line(
    small_coded_folder: Path, wiring: dict[str, object], message: str,
) -> None:
    camera = emulated(small_coded_folder, **wiring)
    with pytest.raises(CameraConfigError) as error:
        camera.open()
    assert message in str(error.value) and '\n' not in str(error.value)
    assert camera.camera is None


def test_an_unknown_wiring_mode_is_refused() -> None:
    with pytest.raises(CameraConfigError, match="unknown flash wiring 'strobe'"):
        PylonCamera(CameraSettings(flash_wiring='strobe'))


def test_a_plan_leaves_values_the_camera_already_has_even_on_fixed_features(
    small_coded_folder: Path,
) -> None:
    camera = emulated(small_coded_folder)
    camera.open()
    try:
        # DeviceModelName is read-only: equal is passed, different is one clear line
        camera.apply([Write('DeviceModelName', 'CamEmu'), Write('LineSelector', 'Line3'),
                      Write('LineMode', 'Output'), Write('LineSource', 'UserOutput2')])
        assert camera.camera.LineSource.Value == 'UserOutput2'
        with pytest.raises(CameraConfigError, match='^DeviceModelName = acA1920-155um: '):
            camera.apply([Write('DeviceModelName', 'acA1920-155um')])
        with pytest.raises(CameraConfigError, match="camera has no feature 'SequencerSetSave'"):
            camera.apply([Execute('SequencerSetSave')])
    finally:
        camera.close()


def test_outputs_off_on_the_emulator_and_the_next_start_wires_them_again(
    small_coded_folder: Path,
) -> None:
    camera = emulated(small_coded_folder, flash_wiring='external',
                      line_outputs=('Line2:ExposureActive', 'Line3:ExposureActive'))
    camera.open()

    def sources() -> list[str]:
        values = []
        for line in ('Line2', 'Line3'):
            camera.camera.LineSelector.Value = line
            values.append(camera.camera.LineSource.Value)
        return values

    try:
        assert sources() == ['ExposureActive', 'ExposureActive']
        camera.outputs_off()
        assert sources() == ['Off', 'Off']
        camera.start()
        assert camera.camera.IsGrabbing()
        assert sources() == ['ExposureActive', 'ExposureActive']
        camera.stop_grabbing()
        assert camera.camera.IsOpen() and not camera.camera.IsGrabbing()
    finally:
        camera.close()
