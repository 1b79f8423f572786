"""Which scenarios the demo plays, and the emulator image folder that shows them.

The emulator replays one folder in alphabetical order, cyclically, and its frame counter
(BlockID) is the file index: measured on pylon 26.9's emulator, BlockID 0 is the first file
and the counter keeps counting across the wrap-around (frames are not skipped while the
grabber is slow: the emulator waits for free buffers). So the image a result's frame B shows
is ``(counter - FIRST_IMAGE_COUNTER) mod folder length``, and camera_node's default phase
labelling (``frame_counter``, ``phase_offset`` 0) is exact because every scenario is stored as
whole cycles starting with the dark frame.

Each scenario is followed by ``GAP_CYCLES`` cycles showing no face, so the next one starts as
a face appearing in front of the camera: the liveness node's fusion window holds only
NO_FACE pairs by then, its first LIVE or SPOOF is earned by that face alone, and the time to
it is the time to verdict a driver sees. The gap's four frames are written once and
hard-linked, so the gaps cost no disk space.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
import hashlib
import json
import os
from pathlib import Path
import shutil

from tqdm import tqdm

from antispoof_ros.flash import DEFAULT_PATTERN
from antispoof_ros.offline.bagtools.synthetic_bag import scenario_labels
from antispoof_ros.offline.synthetic.emulator_folder import frame_file_name, write_emulator_frames
from antispoof_ros.offline.synthetic.phase_coded_images import phase_coded_frame
from antispoof_ros.offline.synthetic.protocol import ProtocolConfig, build_protocol, iter_cycles
from antispoof_ros.offline.synthetic.render import FRAME_INTERVAL_S
from antispoof_ros.offline.synthetic.scene import FULL_MODE, Pose, ScenarioSpec, Split

# dlib's 5-point model finds the mannequin faces reliably looking into the camera, less often
# looking ahead and not at 45 degrees: within each group the demo takes them in this order.
POSE_PREFERENCE = (Pose.CAMERA, Pose.AHEAD, Pose.RIGHT45, Pose.LEFT45)
# Emulator frame counter of the folder's first image (BlockID counts from 0).
FIRST_IMAGE_COUNTER = 0
INDEX_FILE = 'scenarios.json'
# The emulator tries to decode every file of its folder (a JSON file there gave a PNG
# decoding error on every pass), so the images get a folder of their own beside the index.
IMAGES = 'images'
# No-face cycles after each scenario: at least the fusion window (9 pairs) and its timeout
# (0.5 s, 7.5 cycles at the demo's 60 Hz), so no pair of one scenario decides the next.
GAP_CYCLES = 9


def pick_demo_scenarios(pool: Sequence[ScenarioSpec], count: int) -> list[ScenarioSpec]:
    """``count`` scenarios of ``pool``, every species x lighting x print kind before repeating.

    Groups are interleaved (live, mask, print per lighting) so a short demo still shows every
    species; inside a group the pose order of POSE_PREFERENCE alternates (camera, ahead,
    camera, ...) over the subjects, so both poses the detector can handle appear, and each
    group starts with another subject, so several people appear.
    """
    groups: dict[tuple, list[ScenarioSpec]] = {}
    for spec in sorted(pool, key=_group_order):
        key = (spec.species.value, spec.lighting.value, spec.print_kind)
        groups.setdefault(key, []).append(spec)
    for number, (key, specs) in enumerate(groups.items()):
        groups[key] = _alternate_poses(specs, number)
    picked: list[ScenarioSpec] = []
    for rank in range(max((len(g) for g in groups.values()), default=0)):
        for specs in groups.values():
            if rank < len(specs) and len(picked) < count:
                picked.append(specs[rank])
    return picked


def _group_order(spec: ScenarioSpec) -> tuple:
    lighting_rank = list(type(spec.lighting)).index(spec.lighting)
    species_rank = ('live', 'mask', 'print', 'replay').index(spec.species.value)
    kind_rank = -1 if spec.print_kind is None else list(type(spec.print_kind)).index(
        spec.print_kind)
    return lighting_rank, kind_rank, species_rank, spec.scenario_id


def _alternate_poses(specs: list[ScenarioSpec], rotation: int) -> list[ScenarioSpec]:
    """Round robin over the poses in POSE_PREFERENCE order (prints have no pose).

    Each pose's list is rotated by ``rotation`` places, so it starts with another subject.
    """
    by_pose: dict[Pose | None, list[ScenarioSpec]] = {}
    for spec in specs:
        by_pose.setdefault(spec.pose, []).append(spec)
    lanes = [by_pose[p] for p in (*POSE_PREFERENCE, None) if p in by_pose]
    order = [lane[rotation % len(lane):] + lane[:rotation % len(lane)] for lane in lanes]
    return [lane[rank] for rank in range(max(map(len, order))) for lane in order
            if rank < len(lane)]


def unseen_scenarios(count: int, seed: int = 0) -> list[ScenarioSpec]:
    """The demo's pick among the unseen (test split) scenarios of the default protocol."""
    protocol = build_protocol(ProtocolConfig(seed=seed))
    return pick_demo_scenarios([s for s in protocol.scenarios if s.split is Split.TEST], count)


def cache_name(kind: str, scenarios: Sequence[ScenarioSpec], cycles: int, seed: int) -> str:
    """Folder name of rendered scenarios: another pick, seed or length never reuses a cache."""
    key = '\n'.join([str(seed), f'gap {GAP_CYCLES}', 'takes',
                     *(s.scenario_id for s in scenarios)])
    return f'{kind}_{len(scenarios)}x{cycles}_{hashlib.sha1(key.encode()).hexdigest()[:10]}'


@dataclass(frozen=True)
class EmulatorFolder:
    """An image folder for the emulator: which images belong to which scenario."""

    path: Path
    labels: list[dict[str, object]]
    first_image: list[int]  # index of each scenario's first image, ascending
    n_images: int
    gap_cycles: int = 0  # no-face cycles after each scenario

    @property
    def images(self) -> Path:
        """The folder the emulator replays."""
        return self.path / IMAGES

    @property
    def cycles(self) -> list[int]:
        """Flash cycles of each scenario (its face, without the gap after it)."""
        ends = [*self.first_image[1:], self.n_images]
        return [(end - start) // len(DEFAULT_PATTERN) - self.gap_cycles
                for start, end in zip(self.first_image, ends, strict=True)]

    @classmethod
    def load(cls, path: Path) -> EmulatorFolder:
        """Read a folder written by ``write_emulator_folder``."""
        try:
            index = json.loads((path / INDEX_FILE).read_text(encoding='utf-8'))
            folder = cls(path, index['labels'], index['first_image'], index['n_images'],
                         index['gap_cycles'])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f'{path}: not a demo emulator folder ({error})') from None
        if len(list(folder.images.iterdir())) != folder.n_images:
            raise ValueError(f'{folder.images}: expected {folder.n_images} images and nothing '
                             'else')
        return folder


def write_emulator_folder(path: Path, scenarios: Sequence[ScenarioSpec], cycles: int,
                          seed: int = 0, workers: int = 1) -> EmulatorFolder:
    """Render ``cycles`` full-resolution cycles of each scenario into one folder, atomically.

    One numbering over all scenarios and the no-face gaps after them (``emulator_folder``),
    so alphabetical order is firing order. The folder appears only complete.
    """
    if not scenarios or cycles < 1:
        raise ValueError('need at least one scenario and one cycle')
    if path.exists():
        raise ValueError(f'{path} already exists')
    staging = path.with_name(f'.{path.name}.partial-{os.getpid()}')
    (staging / IMAGES).mkdir(parents=True)
    try:
        number = 0
        labels, first_image = [], []
        gap = _write_gap_frames(staging)
        # one continuous take per scenario, as a camera sees a person: the image check
        # compares each frame with the cycle before, which independent samples would not match
        take_period_s = cycles * len(DEFAULT_PATTERN) * FRAME_INTERVAL_S
        rendered = iter_cycles(scenarios, FULL_MODE, seed, workers, cycles_per_scenario=cycles,
                               take_period_s=take_period_s)
        total = sum(min(spec.n_cycles, cycles) for spec in scenarios)
        for cycle in tqdm(rendered, total=total, unit='cycle', desc='rendering'):
            if cycle.cycle_index == 0:
                labels.append(scenario_labels(cycle.scenario))
                first_image.append(number)
            frames = [(truth.phase, frame)
                      for frame, truth in zip(cycle.frames, cycle.truth, strict=True)]
            number += len(write_emulator_frames(staging / IMAGES, frames, first_number=number))
            if cycle.cycle_index == min(cycle.scenario.n_cycles, cycles) - 1:
                number = _link_gap(gap, staging / IMAGES, number)
        for name in gap.values():
            name.unlink()
        (staging / INDEX_FILE).write_text(json.dumps(
            {'labels': labels, 'first_image': first_image, 'n_images': number,
             'gap_cycles': GAP_CYCLES}, indent=1))
        os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return EmulatorFolder(path, labels, first_image, number, GAP_CYCLES)


def _write_gap_frames(folder: Path) -> dict:
    """One no-face frame per phase (the flash's brightness, no subject), beside the images."""
    height, width = FULL_MODE.height, FULL_MODE.width
    names = write_emulator_frames(folder, [(phase, phase_coded_frame(phase, width, height))
                                           for phase in DEFAULT_PATTERN])
    return {phase: folder / name for phase, name in zip(DEFAULT_PATTERN, names, strict=True)}


def _link_gap(gap: dict, images: Path, number: int) -> int:
    """Hard-link ``GAP_CYCLES`` no-face cycles from image ``number`` on; the next number."""
    for _ in range(GAP_CYCLES):
        for phase in DEFAULT_PATTERN:
            os.link(gap[phase], images / frame_file_name(number, phase))
            number += 1
    return number


@dataclass(frozen=True)
class Position:
    """Where a frame counter falls in the replayed folder."""

    loop: int  # how many times the folder had been played before this frame
    scenario: int  # index into EmulatorFolder.labels
    image: int  # index into the folder


def locate(counter: int, first_image: Sequence[int], n_images: int,
           first_counter: int = FIRST_IMAGE_COUNTER) -> Position:
    """The loop and scenario of the frame with camera frame counter ``counter``."""
    if counter < first_counter:
        raise ValueError(f'frame counter {counter} precedes the first image ({first_counter})')
    loop, image = divmod(counter - first_counter, n_images)
    return Position(loop, bisect_right(first_image, image) - 1, image)


class LoopTracker:
    """Picks the results of one whole pass through the folder, played after start-up.

    Frames grabbed before every node was listening are lost, so the pass during which the
    first result arrives is incomplete; the demo scores the next one and is finished when
    a result of the pass after that arrives.
    """

    def __init__(self, folder: EmulatorFolder, first_counter: int = FIRST_IMAGE_COUNTER) -> None:
        self.folder = folder
        self.first_counter = first_counter
        self.scored_loop: int | None = None
        self.finished = False

    def scenario_of(self, counter_b: int) -> int | None:
        """Scenario index of a result of the scored pass; None outside it or in a gap."""
        position = locate(counter_b, self.folder.first_image, self.folder.n_images,
                          self.first_counter)
        if self.scored_loop is None:
            self.scored_loop = position.loop + 1
        if position.loop > self.scored_loop:
            self.finished = True
        face_images = self.folder.cycles[position.scenario] * len(DEFAULT_PATTERN)
        in_gap = position.image - self.folder.first_image[position.scenario] >= face_images
        return position.scenario if position.loop == self.scored_loop and not in_gap else None

    def first_counter_of(self, scenario: int) -> int:
        """Frame counter of the first image of ``scenario`` in the scored pass."""
        if self.scored_loop is None:
            raise ValueError('no pass is scored yet')
        return (self.first_counter + self.scored_loop * self.folder.n_images
                + self.folder.first_image[scenario])
