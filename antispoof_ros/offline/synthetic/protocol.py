"""Synthetic dataset mirroring the thesis recording protocol (3.2), and its CLI.

Live subjects x 3 lightings x 4 poses; prints (NIR frames, b/w and colour photos) in office
light; latex masks x 3 lightings x 4 poses worn by subjects of the mask's own split; optional
screen replays. Subjects and masks are assigned to train/validation/test first, so every
split is subject- and mask-disjoint (some masks occur only in validation or test).

The seed decides who the subjects and masks are (their shapes and albedos, the splits, the
wearers): another seed gives new people and new masks. ``--masks 12`` or more puts at least
two masks into the test split; the default of 6 keeps seed 0 the data the shipped models were
made from. ``--splits test`` renders only the test split of the same plan (a sealed test
set costs a fraction of the whole collection).

Output (``--out DIR``): ``shards/*.npz`` (all four phases at the crop resolution plus ground
truth), ``pylon/<scenario>/NNNNNN_<phase>.png`` full 1920x1200 frames for the pylon camera
emulator (alphabetical order = phase order) and ``manifest.json``, written last. Everything is
staged in a hidden folder and moved into place only when complete.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
import json
import multiprocessing
import os
from pathlib import Path
import shutil
import sys
import zipfile

import cv2
import numpy as np
from tqdm import tqdm

from antispoof_ros.flash import DEFAULT_PATTERN
from antispoof_ros.offline.cli import OneLineArgumentParser, fail
from antispoof_ros.offline.synthetic.emulator_folder import write_emulator_frames
from antispoof_ros.offline.synthetic.render import render_cycle
from antispoof_ros.offline.synthetic.scene import (
    CROP_MODE,
    FULL_MODE,
    Lighting,
    Pose,
    PrintKind,
    RenderedCycle,
    RenderMode,
    ScenarioSpec,
    Species,
    Split,
)

PROGRAM = 'antispoof_ros.offline.synthetic.protocol'
MANIFEST_NAME = 'manifest.json'
MANIFEST_VERSION = 1
CORNER_ORDER = ['right_outer', 'right_inner', 'left_outer', 'left_inner']


@dataclass(frozen=True)
class ProtocolConfig:
    """Size of the synthetic data collection; defaults give about 20,000 cycles."""

    seed: int = 0
    subjects: int = 40
    masks: int = 6
    mask_wearers: int = 2
    cycles_live: int = 20
    cycles_mask: int = 30
    cycles_print: int = 25
    prints_nir: int = 3
    prints_bw: int = 2
    prints_colour: int = 1
    replays: int = 0
    species: tuple[Species, ...] = (Species.LIVE, Species.PRINT, Species.MASK, Species.REPLAY)
    validation_fraction: float = 0.15
    test_fraction: float = 0.15

    def __post_init__(self) -> None:
        counts = {k: v for k, v in asdict(self).items() if isinstance(v, int) and k != 'seed'}
        negative = [f'{k}={v}' for k, v in counts.items() if v < 0]
        if negative:
            raise ValueError(f'counts must not be negative: {", ".join(negative)}')
        if not 0 <= self.validation_fraction + self.test_fraction < 1:
            raise ValueError('validation and test fractions must sum to less than 1')
        if Species.MASK in self.species and self.masks and not self.subjects:
            raise ValueError('masks need at least one subject to wear them')


@dataclass(frozen=True)
class SplitPlan:
    """Which split every subject and every mask belongs to."""

    subjects: dict[int, Split]
    masks: dict[int, Split]

    def subjects_in(self, split: Split) -> list[int]:
        """Subject ids of one split, ascending."""
        return sorted(s for s, sp in self.subjects.items() if sp is split)


@dataclass
class Protocol:
    """The scenario list of a synthetic collection plus its split plan."""

    config: ProtocolConfig
    plan: SplitPlan
    scenarios: list[ScenarioSpec] = field(default_factory=list)

    @property
    def n_cycles(self) -> int:
        """Total number of flash cycles over all scenarios."""
        return sum(s.n_cycles for s in self.scenarios)


def _split_sizes(n: int, validation: float, test: float, minimum: int) -> tuple[int, int]:
    """Validation and test counts: proportional, at least ``minimum`` each when n allows."""
    n_val, n_test = int(round(n * validation)), int(round(n * test))
    if n >= 2 * minimum + 1:
        n_val, n_test = max(n_val, minimum), max(n_test, minimum)
    return n_val, n_test


def assign_splits(n_subjects: int, n_masks: int, seed: int, validation: float = 0.15,
                  test: float = 0.15) -> SplitPlan:
    """Random subject-level and mask-level split.

    With 3 or more masks, at least one mask is held out for validation and one for test
    (thesis 3.4: one of the three masks was used only for validation).
    """
    rng = np.random.default_rng([seed, 303])
    plans = []
    for n in (n_subjects, n_masks):
        order = rng.permutation(n)
        n_val, n_test = _split_sizes(n, validation, test, 1)
        labels = ([Split.VALIDATION] * n_val + [Split.TEST] * n_test
                  + [Split.TRAIN] * (n - n_val - n_test))
        plans.append({int(i): labels[rank] for rank, i in enumerate(order)})
    return SplitPlan(plans[0], plans[1])


def build_protocol(config: ProtocolConfig) -> Protocol:
    """Scenario list mirroring the thesis data collection, deterministic in the seed."""
    plan = assign_splits(config.subjects, config.masks, config.seed,
                         config.validation_fraction, config.test_fraction)
    protocol = Protocol(config, plan)
    add = protocol.scenarios.append
    rng = np.random.default_rng([config.seed, 404])
    for subject in range(config.subjects):
        split = plan.subjects[subject]
        if Species.LIVE in config.species:
            for lighting in Lighting:
                for pose in Pose:
                    add(ScenarioSpec(f'live-s{subject:03d}-{lighting.value}-{pose.value}',
                                     Species.LIVE, lighting, pose, config.cycles_live,
                                     subject_id=subject, split=split))
        if Species.PRINT in config.species:
            kinds = ((PrintKind.NIR, config.prints_nir), (PrintKind.BW, config.prints_bw),
                     (PrintKind.COLOUR, config.prints_colour))
            for kind, count in kinds:
                for k in range(count):
                    add(ScenarioSpec(f'print-s{subject:03d}-{kind.value}-{k}', Species.PRINT,
                                     Lighting.OFFICE, None, config.cycles_print,
                                     subject_id=subject, print_kind=kind, split=split))
        if Species.REPLAY in config.species:
            for k in range(config.replays):
                add(ScenarioSpec(f'replay-s{subject:03d}-{k}', Species.REPLAY, Lighting.OFFICE,
                                 None, config.cycles_print, subject_id=subject, split=split))
    if Species.MASK in config.species:
        for mask in range(config.masks):
            split = plan.masks[mask]
            candidates = plan.subjects_in(split)
            if not candidates:
                raise ValueError(f'no subject in split {split.value} can wear mask {mask}: '
                                 'use more subjects')
            count = min(config.mask_wearers, len(candidates))
            for wearer in sorted(int(w) for w in rng.choice(candidates, count, replace=False)):
                for lighting in Lighting:
                    for pose in Pose:
                        add(ScenarioSpec(
                            f'mask-m{mask:02d}-s{wearer:03d}-{lighting.value}-{pose.value}',
                            Species.MASK, lighting, pose, config.cycles_mask, subject_id=wearer,
                            mask_id=mask, split=split))
    return protocol


def restrict_to_splits(protocol: Protocol, splits: Iterable[Split]) -> Protocol:
    """The same protocol and split plan with only the scenarios of ``splits``.

    The plan is drawn from the whole collection first, so a split rendered alone holds
    exactly the scenarios it holds in the full rendering (cycles render independently).
    """
    keep = set(splits)
    return Protocol(protocol.config, protocol.plan,
                    [spec for spec in protocol.scenarios if spec.split in keep])


def split_scenarios(scenarios: Iterable[ScenarioSpec]) -> dict[Split, list[ScenarioSpec]]:
    """Group scenarios by split (subject- and mask-disjoint by construction)."""
    groups: dict[Split, list[ScenarioSpec]] = {split: [] for split in Split}
    for spec in scenarios:
        groups[spec.split].append(spec)
    return groups


def _render_task(task: tuple[ScenarioSpec, int, RenderMode, int, float | None]) -> RenderedCycle:
    spec, index, mode, seed, take_period_s = task
    return render_cycle(spec, index, mode, seed, take_period_s=take_period_s)


def _init_worker() -> None:
    cv2.setNumThreads(1)


def iter_cycles(scenarios: Iterable[ScenarioSpec], mode: RenderMode = CROP_MODE, seed: int = 0,
                workers: int = 1, cycles_per_scenario: int | None = None,
                take_period_s: float | None = None) -> Iterator[RenderedCycle]:
    """Render every cycle of the scenarios in order (reusable, e.g. for rosbag writing).

    ``cycles_per_scenario`` caps the cycles taken from each scenario; ``workers`` > 1
    renders in parallel processes but still yields in order; ``take_period_s`` makes each
    scenario one continuous take (see ``render_cycle``).
    """
    tasks = ((spec, i, mode, seed, take_period_s) for spec in scenarios
             for i in range(spec.n_cycles if cycles_per_scenario is None
                            else min(spec.n_cycles, cycles_per_scenario)))
    if workers <= 1:
        yield from map(_render_task, tasks)
        return
    # spawn, not fork: a child forked after OpenCV started its thread pool can deadlock
    with multiprocessing.get_context('spawn').Pool(workers, initializer=_init_worker) as pool:
        yield from pool.imap(_render_task, tasks, chunksize=8)


def write_shard(path: Path, cycles: list[RenderedCycle],
                index_of: dict[str, int] | None = None) -> None:
    """Write rendered cycles as one npz shard (``scenario_index`` from ``index_of``, else -1)."""
    _write_npz(path, _shard_arrays(cycles, index_of or {}))


def _shard_arrays(cycles: list[RenderedCycle], index_of: dict[str, int]) -> dict[str, np.ndarray]:
    def code(value: object) -> int:
        return -1 if value is None else value.code

    def num(value: int | None) -> int:
        return -1 if value is None else value

    specs = [c.scenario for c in cycles]
    return {
        'frames': np.stack([c.frames for c in cycles]),
        'corners': np.stack([c.corners_array() for c in cycles]),
        'face_boxes': np.stack([c.face_boxes() for c in cycles]),
        'label': np.array([s.is_live for s in specs], np.uint8),
        'species': np.array([code(s.species) for s in specs], np.int8),
        'lighting': np.array([code(s.lighting) for s in specs], np.int8),
        'pose': np.array([code(s.pose) for s in specs], np.int8),
        'print_kind': np.array([code(s.print_kind) for s in specs], np.int8),
        'split': np.array([code(s.split) for s in specs], np.int8),
        'subject_id': np.array([num(s.subject_id) for s in specs], np.int16),
        'mask_id': np.array([num(s.mask_id) for s in specs], np.int16),
        'scenario_index': np.array([index_of.get(s.scenario_id, -1) for s in specs], np.int32),
        'cycle_index': np.array([c.cycle_index for c in cycles], np.int32),
        'crop_origin': np.array([c.crop_origin for c in cycles], np.float32),
        'pupil_radius_cm': np.array([np.nan if c.pupil_radius_cm is None else c.pupil_radius_cm
                                     for c in cycles], np.float32),
    }


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``np.load``-able compressed npz to ``<name>.tmp``, then rename it.

    A shard is therefore either complete or absent. Deflate level 1 instead of numpy's 6:
    sensor noise barely compresses either way, and level 1 is about three times faster.
    """
    temporary = path.with_name(path.name + '.tmp')
    with zipfile.ZipFile(temporary, 'w', zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            with archive.open(f'{name}.npy', 'w', force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
    os.replace(temporary, path)


def write_pylon_folder(cycles: list[RenderedCycle], folder: Path) -> None:
    """Full-resolution PNGs for pylon's emulated camera, in capture order, plus truth."""
    pairs = [pair for cycle in cycles for pair in zip(cycle.frames, cycle.truth, strict=True)]
    names = write_emulator_frames(folder, ((truth.phase, frame) for frame, truth in pairs),
                                  suffix='.png')
    truth = [{'file': name, **frame_truth.as_dict()}
             for name, (_, frame_truth) in zip(names, pairs, strict=True)]
    scenario = cycles[0].scenario.as_dict() if cycles else {}
    (folder / 'truth.json').write_text(json.dumps({'scenario': scenario, 'frames': truth},
                                                  indent=1))


def _prepare_output(out: Path) -> Path:
    """Create the output folder and a hidden staging folder; refuse to mix datasets."""
    if out.exists() and not out.is_dir():
        raise OSError(f'output path {out} exists and is not a directory')
    for name in (MANIFEST_NAME, 'shards', 'pylon'):
        if (out / name).exists():
            raise OSError(f'output directory {out} already contains {name}; choose another')
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f'.staging-{os.getpid()}'
    staging.mkdir()
    return staging


def pick_pylon_scenarios(scenarios: list[ScenarioSpec], count: int) -> list[ScenarioSpec]:
    """Up to ``count`` scenarios covering every (species, lighting) pair before repeating."""
    groups: dict[tuple, list[ScenarioSpec]] = {}
    for spec in scenarios:
        groups.setdefault((spec.species, spec.lighting), []).append(spec)
    picked: list[ScenarioSpec] = []
    for rank in range(max((len(g) for g in groups.values()), default=0)):
        for group in groups.values():
            if rank < len(group) and len(picked) < count:
                picked.append(group[rank])
    return picked


def write_dataset(protocol: Protocol, out: Path, mode: RenderMode = CROP_MODE,
                  shard_size: int = 500, pylon_scenarios: int = 8, pylon_cycles: int = 2,
                  workers: int = 1, progress: bool = True) -> dict:
    """Render the protocol into ``out`` atomically; returns the manifest."""
    if shard_size <= 0:
        raise ValueError(f'shard size must be positive, got {shard_size}')
    seed = protocol.config.seed
    staging = _prepare_output(out)
    try:
        index_of = {s.scenario_id: i for i, s in enumerate(protocol.scenarios)}
        pylon_specs = pick_pylon_scenarios(protocol.scenarios, pylon_scenarios)
        pylon_total = sum(min(s.n_cycles, pylon_cycles) for s in pylon_specs)
        bar = tqdm(total=protocol.n_cycles + pylon_total, unit='cycle', disable=not progress,
                   desc='synthetic NIR')
        shards, pending = [], []
        (staging / 'shards').mkdir()

        def flush() -> None:
            name = f'shard_{len(shards):05d}.npz'
            write_shard(staging / 'shards' / name, pending, index_of)
            splits = [c.scenario.split.value for c in pending]
            shards.append({'file': f'shards/{name}', 'n_cycles': len(pending),
                           'splits': {s: splits.count(s) for s in sorted(set(splits))}})
            pending.clear()

        for cycle in iter_cycles(protocol.scenarios, mode, seed, workers):
            pending.append(cycle)
            bar.update()
            if len(pending) == shard_size:
                flush()
        if pending:
            flush()
        pylon = []
        if pylon_cycles > 0:
            cycles = iter_cycles(pylon_specs, FULL_MODE, seed, workers, pylon_cycles)
            for spec in pylon_specs:
                group = [next(cycles) for _ in range(min(spec.n_cycles, pylon_cycles))]
                if group:
                    write_pylon_folder(group, staging / 'pylon' / spec.scenario_id)
                    pylon.append(f'pylon/{spec.scenario_id}')
                    bar.update(len(group))
        bar.close()
        manifest = _manifest(protocol, mode, shards, pylon)
        for name in ('shards', 'pylon'):
            if (staging / name).exists():
                os.replace(staging / name, out / name)
        temporary = staging / MANIFEST_NAME
        temporary.write_text(json.dumps(manifest, indent=1))
        os.replace(temporary, out / MANIFEST_NAME)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _manifest(protocol: Protocol, mode: RenderMode, shards: list[dict], pylon: list[str]) -> dict:
    plan = protocol.plan
    wearers: dict[int, set[int]] = {}
    for spec in protocol.scenarios:
        if spec.mask_id is not None:
            wearers.setdefault(spec.mask_id, set()).add(spec.subject_id)
    config = asdict(protocol.config)
    config['species'] = [s.value for s in protocol.config.species]
    return {
        'version': MANIFEST_VERSION,
        'config': config,
        'mode': asdict(mode),
        'phases': [p.label for p in DEFAULT_PATTERN],
        'corner_order': CORNER_ORDER,
        'codes': {enum.__name__.lower(): [m.value for m in enum]
                  for enum in (Species, Lighting, Pose, PrintKind, Split)},
        'subjects': {str(s): sp.value for s, sp in sorted(plan.subjects.items())},
        'masks': {str(m): {'split': sp.value, 'wearers': sorted(wearers.get(m, ()))}
                  for m, sp in sorted(plan.masks.items())},
        'rendered_splits': sorted({s.split.value for s in protocol.scenarios}),
        'scenarios': [s.as_dict() for s in protocol.scenarios],
        'shards': shards,
        'n_cycles': sum(s['n_cycles'] for s in shards),
        'pylon_folders': pylon,
    }


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not an integer: {text!r}') from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'must not be negative: {value}')
    return value


def _species_list(text: str) -> tuple[Species, ...]:
    try:
        return tuple(Species.parse(name) for name in text.split(',') if name.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _split_list(text: str) -> tuple[Split, ...]:
    names = [name.strip() for name in text.split(',') if name.strip()]
    known = {split.value: split for split in Split}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown split(s) {', '.join(unknown) or repr(text)} (known: {', '.join(known)})")
    return tuple(known[name] for name in names)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see module docstring)."""
    defaults = ProtocolConfig()
    parser = OneLineArgumentParser(prog=PROGRAM, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', type=Path, required=True, help='output directory')
    parser.add_argument('--seed', type=int, default=0)
    for name in ('subjects', 'masks', 'mask_wearers', 'cycles_live', 'cycles_mask',
                 'cycles_print', 'prints_nir', 'prints_bw', 'prints_colour', 'replays'):
        parser.add_argument(f'--{name.replace("_", "-")}', type=_count,
                            default=getattr(defaults, name))
    parser.add_argument('--species', type=_species_list, default=defaults.species,
                        help='comma-separated subset of live,print,mask,replay')
    parser.add_argument('--splits', type=_split_list, default=tuple(Split),
                        help='comma-separated subset of train,validation,test to render '
                             '(the split plan stays that of the whole protocol)')
    parser.add_argument('--shard-size', type=_count, default=500, help='cycles per npz shard')
    parser.add_argument('--pylon-scenarios', type=_count, default=8,
                        help='scenarios also written as 1920x1200 PNG folders (0: none)')
    parser.add_argument('--pylon-cycles', type=_count, default=2,
                        help='full-resolution cycles per pylon folder')
    parser.add_argument('--workers', type=_count, default=min(2, os.cpu_count() or 1),
                        help='rendering processes (default: 2, the cores of the target machine)')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: one error line and exit status 2 on bad input."""
    args = parse_args(argv)
    try:
        config = ProtocolConfig(
            seed=args.seed, subjects=args.subjects, masks=args.masks,
            mask_wearers=args.mask_wearers, cycles_live=args.cycles_live,
            cycles_mask=args.cycles_mask, cycles_print=args.cycles_print,
            prints_nir=args.prints_nir, prints_bw=args.prints_bw,
            prints_colour=args.prints_colour, replays=args.replays, species=args.species)
        if args.shard_size == 0:
            raise ValueError('--shard-size must be positive')
        protocol = restrict_to_splits(build_protocol(config), args.splits)
        if not protocol.scenarios:
            raise ValueError('the chosen splits hold no scenario')
        manifest = write_dataset(protocol, args.out, shard_size=args.shard_size,
                                 pylon_scenarios=args.pylon_scenarios,
                                 pylon_cycles=args.pylon_cycles, workers=max(args.workers, 1),
                                 progress=not args.no_progress)
    except (ValueError, OSError) as error:
        return fail(PROGRAM, error)
    print(f'wrote {manifest["n_cycles"]} cycles in {len(manifest["shards"])} shards and '
          f'{len(manifest["pylon_folders"])} pylon folders to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
