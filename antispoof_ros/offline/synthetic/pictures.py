"""Documentation pictures of the synthetic NIR scenes.

``contact_sheet.png``: one row per species/condition, one column per flash phase.
``mean_difference.png``: per-species mean of (front - right) / mean(front) over aligned face
crops, showing which cues differ: shading of 3-D relief and bright pupils on live faces, an
almost uniform difference on flat prints, eye-opening edges on masks, nothing on screens.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

import cv2
import numpy as np

from antispoof_ros.flash import DEFAULT_PATTERN
from antispoof_ros.offline.synthetic.baseline import pair_difference
from antispoof_ros.offline.synthetic.render import render_cycle
from antispoof_ros.offline.synthetic.scene import (
    CROP_MODE,
    Lighting,
    Pose,
    PrintKind,
    RenderMode,
    ScenarioSpec,
    Species,
)

SHEET_MODE = RenderMode('sheet', 224, 256, 0.6, False)
DIFF_SIZE = (100, 125)


def _contact_rows() -> list[tuple[str, ScenarioSpec]]:
    rows = [
        ('live, office, ahead', ScenarioSpec('pic-live-office', Species.LIVE, Lighting.OFFICE,
                                             Pose.AHEAD, 1, subject_id=2)),
        ('live, dark, camera', ScenarioSpec('pic-live-dark', Species.LIVE, Lighting.DARK,
                                            Pose.CAMERA, 1, subject_id=7)),
        ('live, halogen, 45 left', ScenarioSpec('pic-live-halogen', Species.LIVE,
                                                Lighting.HALOGEN, Pose.LEFT45, 1, subject_id=4)),
    ]
    for kind in PrintKind:
        rows.append((f'print, {kind.value}', ScenarioSpec(
            f'pic-print-{kind.value}', Species.PRINT, Lighting.OFFICE, None, 1, subject_id=7,
            print_kind=kind)))
    rows += [
        ('mask, office, camera', ScenarioSpec('pic-mask-office', Species.MASK, Lighting.OFFICE,
                                              Pose.CAMERA, 1, subject_id=3, mask_id=1)),
        ('mask, dark, 45 right', ScenarioSpec('pic-mask-dark', Species.MASK, Lighting.DARK,
                                              Pose.RIGHT45, 1, subject_id=5, mask_id=4)),
        ('replay (screen)', ScenarioSpec('pic-replay', Species.REPLAY, Lighting.OFFICE, None, 1,
                                         subject_id=2)),
    ]
    return rows


def _label(image: np.ndarray, text: str, row: int = 18, scale: float = 0.5) -> None:
    cv2.putText(image, text, (6, row), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 1, cv2.LINE_AA)


def contact_sheet(seed: int = 0) -> np.ndarray:
    """Greyscale grid: rows of scenarios, columns dark/front/right/left (8-bit frames as is)."""
    tiles = []
    header = np.zeros((26, SHEET_MODE.width * 4), np.uint8)
    for index, phase in enumerate(DEFAULT_PATTERN):
        cv2.putText(header, phase.label, (index * SHEET_MODE.width + 90, 19),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1, cv2.LINE_AA)
    tiles.append(header)
    for title, spec in _contact_rows():
        cycle = render_cycle(spec, 0, SHEET_MODE, seed)
        row = np.concatenate(list(cycle.frames), axis=1)
        _label(row, title)
        tiles.append(row)
        tiles.append(np.full((2, row.shape[1]), 128, np.uint8))
    return np.concatenate(tiles, axis=0)


def mean_differences(seed: int = 0, per_species: int = 24) -> dict[str, np.ndarray]:
    """Mean (front - right) / mean(front) of aligned crops, per species, over many subjects."""
    means = {}
    poses = list(Pose)
    for species in (Species.LIVE, Species.PRINT, Species.MASK, Species.REPLAY):
        total = np.zeros(DIFF_SIZE[::-1], np.float64)
        for k in range(per_species):
            spec = ScenarioSpec(
                f'pic-diff-{species.value}-{k}', species, Lighting.OFFICE,
                None if species in (Species.PRINT, Species.REPLAY) else poses[k % 2 * 3],
                1, subject_id=20 + k, mask_id=k % 5 if species is Species.MASK else None,
                print_kind=list(PrintKind)[k % 3] if species is Species.PRINT else None)
            total += pair_difference(render_cycle(spec, 0, CROP_MODE, seed), size=DIFF_SIZE)
        means[species.value] = total / per_species
    return means


def difference_panel(means: dict[str, np.ndarray], limit: float = 0.25) -> np.ndarray:
    """Side-by-side colour panel (blue negative, red positive) with a common scale."""
    tiles = []
    for name, mean in means.items():
        normalised = np.clip(mean / limit, -1, 1)
        red = np.clip(normalised, 0, 1)
        blue = np.clip(-normalised, 0, 1)
        white = 1 - np.maximum(red, blue)
        tile = np.dstack([white + blue, white, white + red]) * 255  # BGR
        tile = cv2.resize(tile.astype(np.uint8), (DIFF_SIZE[0] * 2, DIFF_SIZE[1] * 2),
                          interpolation=cv2.INTER_NEAREST)
        cv2.putText(tile, name, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.pad(tile, ((0, 0), (2, 2), (0, 0)), constant_values=255))
    panel = np.concatenate(tiles, axis=1)
    footer = np.full((24, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(footer, f'(front - right) / mean(front), scale +-{limit}: red > 0, blue < 0',
                (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([panel, footer], axis=0)


def main(argv: list[str] | None = None) -> int:
    """Write contact_sheet.png and mean_difference.png into --out."""
    parser = argparse.ArgumentParser(
        prog='antispoof_ros.offline.synthetic.pictures', description=__doc__)
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        pictures = (('contact_sheet.png', contact_sheet(args.seed)),
                    ('mean_difference.png', difference_panel(mean_differences(args.seed))))
        for name, image in pictures:
            temporary = args.out / f'.{name}.tmp.png'
            if not cv2.imwrite(str(temporary), image):
                raise OSError(f'could not write {temporary}')
            temporary.replace(args.out / name)
            print(f'wrote {args.out / name}')
    except OSError as error:
        print(f'{parser.prog}: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
