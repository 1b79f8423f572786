"""Flash wiring the camera node configures: camera features written as an ordered plan.

Two ways to fire the flashes in step with the frames:

- ``sequencer``: the camera's own sequencer holds one set per flash phase. Each set drives
  the phase's output line(s) with the exposure-active signal and holds the other flash lines
  low, and the sequencer moves to the next set at every frame start. The chunk
  ``SequencerSetActive`` then tells which set (so which phase) exposed each frame.
- ``external``: a flash controller counts the camera's exposure-active pulses on one strobe
  line (``line_outputs``) and fires the flashes in turn; frames are labelled by counter.

Every configuration is data, a list of feature writes and command executions, so the same
plan is printed by ``--dry-run``, compared with Basler's documented order in the tests and
applied to a camera by ``pylon_source``. Feature names and order for Basler ace USB
(SFNC 2.x, e.g. acA1920-155um) and ace 2 come from Basler's sequencer documentation, its
ace USB 3.0 user's manual (sequencer configuration rules) and pylon-ros-camera's
``setupSequencer``:

- configure with ``SequencerMode=Off`` and ``SequencerConfigurationMode=On``; afterwards
  ``SequencerConfigurationMode=Off`` and ``SequencerMode=On``;
- ``SequencerSetStart=0``; sets are configured in ascending order; each set is selected
  with ``SequencerSetSelector`` and stored with ``SequencerSetSave``;
- each set has two paths: path 0 returns to set 0 on ``SoftwareSignal1`` (reset), path 1
  advances to the next set on ``FrameStart``, the last set's path 1 leads back to set 0;
- ace USB accepts only ``SequencerTriggerActivation=LevelHigh``; ace 2 advances on the
  rising edge of the trigger source;
- ``ChunkModeActive``/``ChunkEnable`` belong to the sequencer sets on ace USB, so the
  ``SequencerSetActive`` chunk is enabled before the sets are saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from antispoof_ros.flash import Phase

WIRING_MODES = ('none', 'external', 'sequencer')
STROBE_SOURCE = 'ExposureActive'  # high while the sensor exposes: the flash window
RESET_SOURCE = 'SoftwareSignal1'  # path 0: back to set 0 on a software signal
ADVANCE_SOURCE = 'FrameStart'  # path 1: next set at every frame


class WiringError(ValueError):
    """A flash wiring that cannot be configured; the message is one line for the user."""


@dataclass(frozen=True)
class Write:
    """Set one camera feature (after the selectors written before it)."""

    name: str
    value: str | int | bool

    def __str__(self) -> str:
        return f'{self.name} = {self.value}'


@dataclass(frozen=True)
class Execute:
    """Run one camera command."""

    name: str

    def __str__(self) -> str:
        return f'{self.name}()'


Step = Write | Execute


@dataclass(frozen=True)
class CameraFamily:
    """What differs between Basler camera families for the flash wiring."""

    key: str
    label: str
    model_prefix: str
    sequencer_sets: int  # documented number of sequencer sets, used when no camera is asked
    # flash output line -> user output that holds it low outside its phase
    output_lines: tuple[tuple[str, str], ...]
    advance_activation: str

    @property
    def line_names(self) -> tuple[str, ...]:
        """Output lines a flash driver can hang on."""
        return tuple(line for line, _ in self.output_lines)

    def idle_source(self, line: str) -> str:
        """Line source that keeps ``line`` low: its user output, set to False."""
        return dict(self.output_lines)[line]


_OUTPUT_LINES = (('Line2', 'UserOutput1'), ('Line3', 'UserOutput2'), ('Line4', 'UserOutput3'))
FAMILIES: dict[str, CameraFamily] = {
    family.key: family
    for family in (
        # Line2: opto-isolated output; Line3/Line4: GPIO set to output
        CameraFamily('ace_usb', 'ace USB', 'acA', 32, _OUTPUT_LINES, 'LevelHigh'),
        CameraFamily('ace2', 'ace 2', 'a2A', 32, _OUTPUT_LINES, 'RisingEdge'),
    )
}


def camera_family(key_or_model: str) -> CameraFamily:
    """Family by key (``ace_usb``, ``ace2``) or by camera model name (``acA1920-155um``)."""
    if key_or_model in FAMILIES:
        return FAMILIES[key_or_model]
    for family in FAMILIES.values():
        if key_or_model.startswith(family.model_prefix):
            return family
    known = ', '.join(f'{f.key} ({f.model_prefix}...)' for f in FAMILIES.values())
    raise WiringError(f"no sequencer plan for camera '{key_or_model}' (known: {known})")


FlashLines = dict[Phase, tuple[str, ...]]


def parse_flash_lines(entries: Iterable[str]) -> FlashLines:
    """``['front:Line2', 'right:Line3+Line4']`` -> phase -> output lines (``+`` joins lines)."""
    lines: FlashLines = {}
    for entry in (item.strip() for item in entries):
        if not entry:
            continue
        name, _, outputs = entry.partition(':')
        targets = tuple(line.strip() for line in outputs.split('+') if line.strip())
        if not targets:
            raise WiringError(f"flash line '{entry}' must look like front:Line2")
        try:
            phase = Phase.from_name(name)
        except ValueError as error:
            raise WiringError(str(error)) from None
        if phase in lines:
            raise WiringError(f"flash lines name phase '{phase.label}' twice")
        lines[phase] = targets
    return lines


def _check_flash_lines(pattern: Sequence[Phase], flash_lines: FlashLines,
                       family: CameraFamily) -> tuple[str, ...]:
    for phase, lines in flash_lines.items():
        if phase not in pattern:
            raise WiringError(f"flash line for '{phase.label}', which is not in the pattern")
        if phase == Phase.DARK:
            raise WiringError("the dark phase fires no flash: give it no output line")
        for line in lines:
            if line not in family.line_names:
                raise WiringError(
                    f"unknown output line '{line}' ({family.label} outputs: "
                    f"{', '.join(family.line_names)})"
                )
    missing = [p.label for p in pattern if p != Phase.DARK and p not in flash_lines]
    if missing:
        raise WiringError(f"no flash output line for phase(s) {', '.join(missing)}")
    used = {line for lines in flash_lines.values() for line in lines}
    return tuple(line for line in family.line_names if line in used)


# the first steps of every sequencer plan: after them the sequencer sets can be written
SEQUENCER_CONFIGURATION: tuple[Step, ...] = (
    Write('SequencerMode', 'Off'), Write('SequencerConfigurationMode', 'On'))


def sequencer_plan(pattern: Sequence[Phase], flash_lines: FlashLines, family: CameraFamily,
                   available_sets: int | None = None) -> list[Step]:
    """Sequencer sets 0..N-1 for the N phases of ``pattern``, one flash phase per set.

    ``available_sets``: what the camera reports (SequencerSetSelector max + 1); the
    family's documented count when None (dry run).
    """
    sets = family.sequencer_sets if available_sets is None else available_sets
    if len(pattern) > sets:
        raise WiringError(
            f'flash pattern has {len(pattern)} phases but the camera has only {sets} '
            'sequencer sets'
        )
    lines = _check_flash_lines(pattern, flash_lines, family)
    steps: list[Step] = list(SEQUENCER_CONFIGURATION)
    for line in lines:  # outputs, and their user outputs low: the idle state of a flash line
        steps += [Write('LineSelector', line), Write('LineMode', 'Output'),
                  Write('UserOutputSelector', family.idle_source(line)),
                  Write('UserOutputValue', False)]
    steps += [Write('ChunkModeActive', True), Write('ChunkSelector', 'SequencerSetActive'),
              Write('ChunkEnable', True), Write('SequencerSetStart', 0)]
    for index, phase in enumerate(pattern):
        steps.append(Write('SequencerSetSelector', index))
        for line in lines:
            fires = line in flash_lines.get(phase, ())
            steps += [Write('LineSelector', line),
                      Write('LineSource', STROBE_SOURCE if fires else family.idle_source(line))]
        steps += [
            Write('SequencerPathSelector', 0), Write('SequencerSetNext', 0),
            Write('SequencerTriggerSource', RESET_SOURCE),
            Write('SequencerTriggerActivation', family.advance_activation),
            Write('SequencerPathSelector', 1),
            Write('SequencerSetNext', (index + 1) % len(pattern)),
            Write('SequencerTriggerSource', ADVANCE_SOURCE),
            Write('SequencerTriggerActivation', family.advance_activation),
            Execute('SequencerSetSave'),
        ]
    steps += [Write('SequencerConfigurationMode', 'Off'), Write('SequencerMode', 'On')]
    return steps


def parse_line_outputs(entries: Iterable[str]) -> list[tuple[str, str]]:
    """``['Line2:ExposureActive']`` -> ``[('Line2', 'ExposureActive')]``."""
    outputs = []
    for entry in entries:
        line, _, source = entry.partition(':')
        if not line.strip() or not source.strip():
            raise WiringError(f"line output '{entry}' must look like Line2:ExposureActive")
        outputs.append((line.strip(), source.strip()))
    return outputs


def line_output_plan(entries: Iterable[str]) -> list[Step]:
    """Each ``Line:Source`` entry as an output line driven by that source."""
    steps: list[Step] = []
    for line, source in parse_line_outputs(entries):
        steps += [Write('LineSelector', line), Write('LineMode', 'Output'),
                  Write('LineSource', source)]
    return steps


def external_controller_plan(line_outputs: Sequence[str]) -> list[Step]:
    """Strobe output(s) for a flash controller that counts exposure pulses."""
    if not line_outputs:
        raise WiringError(
            "flash wiring 'external' needs the strobe line in line_outputs, "
            'e.g. Line2:ExposureActive'
        )
    return line_output_plan(line_outputs)


def driven_lines(plan: Sequence[Step]) -> tuple[str, ...]:
    """Output lines whose LineSource ``plan`` writes, in the order it first selects them."""
    lines: list[str] = []
    selected = None
    for step in plan:
        if isinstance(step, Write) and step.name == 'LineSelector':
            selected = step.value
        elif isinstance(step, Write) and step.name == 'LineSource' and selected not in lines:
            lines.append(selected)
    return tuple(lines)


def outputs_off_plan(plan: Sequence[Step],
                     hold_low: Mapping[str, str] | None = None) -> list[Step]:
    """Every flash output of an applied ``plan`` switched off: no strobe while not grabbing.

    A sequencer would drive the lines again at the next frame, so it is stopped first. Each
    line gets LineSource Off, or, where ``hold_low`` names a user output for it (a line that
    does not offer Off), that user output set low and made the line's source.
    """
    hold_low = hold_low or {}
    steps: list[Step] = []
    if Write('SequencerMode', 'On') in plan:
        steps.append(Write('SequencerMode', 'Off'))
    for line in driven_lines(plan):
        steps.append(Write('LineSelector', line))
        if line in hold_low:
            steps += [Write('UserOutputSelector', hold_low[line]),
                      Write('UserOutputValue', False), Write('LineSource', hold_low[line])]
        else:
            steps.append(Write('LineSource', 'Off'))
    return steps


def format_plan(steps: Sequence[Step]) -> str:
    """One numbered line per step; the steps that fill a sequencer set are indented."""
    out, in_set = [], False
    for number, step in enumerate(steps, start=1):
        out.append(f"{number:3d}  {'    ' if in_set else ''}{step}")
        if isinstance(step, Write) and step.name == 'SequencerSetSelector':
            in_set = True
        elif step == Execute('SequencerSetSave'):
            in_set = False
    return '\n'.join(out)


class SequencerCheck:
    """Checks that the chunk's sequencer set index follows the plan, frame after frame.

    The sequencer advances one set per frame start, so between two frames with block ids
    ``a < b`` the set index moves on by ``b - a`` modulo N, lost frames included. Labels
    count as verified once ``confirm_cycles`` whole cycles in a row followed the plan, and
    stop being verified at the first frame that does not.
    """

    def __init__(self, sets: int, confirm_cycles: int = 2) -> None:
        self.sets = sets
        self.needed = confirm_cycles * sets
        self.mismatches = 0
        self.reset()

    def reset(self) -> None:
        """Forget the history: after the sequencer was (re)programmed."""
        self._last: tuple[int, int] | None = None
        self._in_plan = 0

    @property
    def verified(self) -> bool:
        """Whether the recent frames confirmed the plan."""
        return self._in_plan >= self.needed

    def add(self, block_id: int, set_index: int | None) -> bool:
        """Record one frame; True when its set index (and its predecessors') follow the plan."""
        follows = set_index is not None and 0 <= set_index < self.sets and (
            self._last is None
            or set_index == (self._last[1] + block_id - self._last[0]) % self.sets
        )
        if follows:
            self._in_plan += 1
        else:
            self.mismatches += 1
            self._in_plan = 0
        self._last = (block_id, set_index) if set_index is not None else None
        return self.verified
