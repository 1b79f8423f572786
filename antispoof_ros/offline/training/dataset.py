"""Aligned training pairs built from flash cycles and cached on disk (thesis 3.3-3.4).

Each frame cycle (one frame per flash phase, the eye corners found on its front-flash
frame, a live/spoof label and where it came from) becomes one (H, W, 2) sample through
``antispoof_ros.liveness.alignment.align_pair``, the very function the liveness node runs. Crops
are cached un-normalised (uint8 or float16) so augmentation can still act on the aligned
image; normalisation happens at training time with ``normalize_samplewise``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
import hashlib
import json
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm import tqdm

from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import Phase, pair_config
from antispoof_ros.liveness.alignment import EYES, align_pair, region_by_name
from antispoof_ros.offline.atomic_file import write_atomically
from antispoof_ros.offline.evaluation.metrics import BONA_FIDE_SPECIES

CACHE_FORMAT_VERSION = 1
CORNER_SOURCES = ('ground_truth', 'landmark_detector')
CROP_DTYPES = ('uint8', 'float16')
LIVE, SPOOF = 1, 0
# Per-sample descriptors kept next to each crop; subject and mask drive the splits.
INFO_FIELDS = ('species', 'subject_id', 'mask_id', 'lighting', 'pose', 'source_id', 'split')


@dataclass(frozen=True)
class FrameCycle:
    """One flash cycle of one recording, with its ground truth.

    ``frames`` maps each flash phase to a greyscale uint8/uint16 frame; ``corners`` were
    found on the front-flash frame and serve every frame of the cycle. ``species`` is
    'live' for label 1, else the attack instrument (e.g. 'print', 'mask', as in
    ``antispoof_ros.offline.evaluation``); ``mask_id`` is empty unless a mask is worn. ``split`` is
    set where the data collection already assigned subjects and masks to splits (the
    synthetic protocol does).
    """

    frames: Mapping[Phase, np.ndarray]
    corners: EyeCornerPoints
    label: int
    species: str
    subject_id: str
    mask_id: str = ''
    lighting: str = ''
    pose: str = ''
    source_id: str = ''
    split: str = ''  # 'train' / 'validation' / 'test' where the data defines it, else ''


@dataclass(frozen=True)
class PairDataset:
    """Aligned pairs of one pair configuration and region, ready for training."""

    crops: np.ndarray  # (N, H, W, 2) uint8 or float16, channel 0 = frame A of the pair
    labels: np.ndarray  # (N,) uint8, 1 = live, 0 = spoof
    corners: np.ndarray  # (N, 4, 2) float64 frame corners the crops were aligned with
    info: dict[str, np.ndarray]  # INFO_FIELDS -> (N,) str
    pair: str
    region: str
    eye: str
    corner_source: str
    skipped_cycles: int = 0  # cycles without usable corners (e.g. no face detected)
    data_id: str = ''

    def __post_init__(self) -> None:
        count = len(self.labels)
        if self.crops.shape[0] != count or self.corners.shape[0] != count or any(
            len(values) != count for values in self.info.values()):
            raise ValueError('crops, labels, corners and info differ in length')
        if set(self.info) != set(INFO_FIELDS):
            raise ValueError(f'info must have exactly the fields {INFO_FIELDS}')
        if not self.data_id:  # content hash: names the training data in the model card
            object.__setattr__(self, 'data_id', self._content_hash())

    def __len__(self) -> int:
        return len(self.labels)

    def _content_hash(self) -> str:
        digest = hashlib.sha256()
        for array in (self.crops, self.labels, self.corners,
                      *(self.info[name] for name in INFO_FIELDS)):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(json.dumps(self._settings(), sort_keys=True).encode())
        return digest.hexdigest()[:16]

    def _settings(self) -> dict[str, str | int]:
        return {
            'pair': self.pair, 'region': self.region, 'eye': self.eye,
            'corner_source': self.corner_source,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the cache as one .npz, atomically (no pickles: safe to load anywhere)."""
        attributes = {
            **self._settings(), 'format_version': CACHE_FORMAT_VERSION,
            'skipped_cycles': self.skipped_cycles, 'data_id': self.data_id,
        }
        arrays = {
            'crops': self.crops, 'labels': self.labels, 'corners': self.corners,
            'attributes': np.array(json.dumps(attributes)),
            **{f'info_{name}': values for name, values in self.info.items()},
        }

        def write(handle: BinaryIO) -> None:
            np.savez(handle, **arrays)

        return write_atomically(path, write)


def load_pair_dataset(path: str | os.PathLike) -> PairDataset:
    """Read a cache written by ``PairDataset.save``; clear errors for a wrong file."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f'dataset cache {source} not found')
    try:
        with np.load(source, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise ValueError(f'{source} is not a dataset cache (.npz): {error}') from None
    required = {'crops', 'labels', 'corners', 'attributes', *(f'info_{n}' for n in INFO_FIELDS)}
    missing = sorted(required - set(arrays))
    if missing:
        raise ValueError(f'{source} is not a dataset cache: missing {", ".join(missing)}')
    attributes = json.loads(str(arrays['attributes']))
    if attributes.get('format_version') != CACHE_FORMAT_VERSION:
        raise ValueError(f'{source}: unsupported cache format {attributes.get("format_version")}')
    return PairDataset(
        arrays['crops'], arrays['labels'], arrays['corners'],
        {name: arrays[f'info_{name}'] for name in INFO_FIELDS},
        attributes['pair'], attributes['region'], attributes['eye'],
        attributes['corner_source'], attributes['skipped_cycles'], attributes['data_id'],
    )


def build_pair_dataset(cycles: Iterable[FrameCycle], pair: str = 'P2', region: str = 'face',
                       eye: str = 'right', corner_source: str = 'ground_truth',
                       crop_dtype: str = 'uint8') -> PairDataset:
    """Align every cycle's pair of frames into the region with the shared alignment code.

    ``crop_dtype`` 'uint8' (half the size) needs 8-bit frames; 'float16' keeps 12-bit
    frames. Cycles whose corners are not finite (the detector found no face) are skipped
    and counted; a cycle lacking a phase of the pair is an error.
    """
    config = pair_config(pair)
    target = region_by_name(region)
    if eye not in EYES:
        raise ValueError(f"unknown eye '{eye}' (known: {', '.join(EYES)})")
    if corner_source not in CORNER_SOURCES:
        raise ValueError(
            f"unknown corner source '{corner_source}' (known: {', '.join(CORNER_SOURCES)})")
    if crop_dtype not in CROP_DTYPES:
        raise ValueError(f"unknown crop dtype '{crop_dtype}' (known: {', '.join(CROP_DTYPES)})")
    crops, labels, corners = [], [], []
    info: dict[str, list[str]] = {name: [] for name in INFO_FIELDS}
    skipped = 0
    for index, cycle in enumerate(tqdm(cycles, desc=f'aligning {pair} {region}', unit='cycle',
                                       disable=None)):
        if cycle.label not in (LIVE, SPOOF):
            raise ValueError(f'cycle {index}: label must be 1 (live) or 0 (spoof)')
        if (cycle.label == LIVE) != (cycle.species == BONA_FIDE_SPECIES):
            raise ValueError(f"cycle {index}: species must be '{BONA_FIDE_SPECIES}' exactly "
                             f"for label 1, got '{cycle.species}' with label {cycle.label}")
        if not cycle.corners.is_finite():
            skipped += 1
            continue
        frame_a, frame_b = (_frame(cycle, phase, index) for phase in
                            (config.phase_a, config.phase_b))
        aligned = align_pair(frame_a, frame_b, cycle.corners, target, eye)
        eight_bit = frame_a.dtype == np.uint8 and frame_b.dtype == np.uint8
        crops.append(_to_storage(aligned, crop_dtype, eight_bit, index))
        labels.append(cycle.label)
        corners.append(cycle.corners.as_array())
        for name in INFO_FIELDS:
            info[name].append(str(getattr(cycle, name)))
    if not crops:
        raise ValueError('no usable frame cycles (none given, or none with finite corners)')
    return PairDataset(
        np.stack(crops), np.array(labels, np.uint8), np.stack(corners),
        {name: np.array(values, dtype=str) for name, values in info.items()},
        pair, region, eye, corner_source, skipped,
    )


def _frame(cycle: FrameCycle, phase: Phase, index: int) -> np.ndarray:
    try:
        return cycle.frames[phase]
    except KeyError:
        raise ValueError(f'cycle {index} has no {phase.label} frame') from None


def _to_storage(aligned: np.ndarray, crop_dtype: str, eight_bit: bool,
                index: int) -> np.ndarray:
    if crop_dtype == 'uint8':
        if not eight_bit:
            raise ValueError(f'cycle {index}: frames deeper than 8 bits need crop_dtype float16')
        return np.clip(np.rint(aligned), 0, 255).astype(np.uint8)
    if float(aligned.max(initial=0.0)) > np.finfo(np.float16).max:
        raise ValueError(f'cycle {index}: pixel values exceed the float16 range')
    return aligned.astype(np.float16)
