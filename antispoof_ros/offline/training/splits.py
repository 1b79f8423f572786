"""Train / validation / test splits that never share a subject or a mask (thesis 3.4).

The thesis kept all recordings of a subject in one split, and one of its three masks out of
training, so validation measures generalisation to unseen people and unseen masks. Here a
held-out test split is added on the same principle. Subjects and masks are assigned to
splits independently; a mask sample whose wearer's split differs from its mask's split
would leak one of the two into another split, so it is dropped (and counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SPLITS = ('train', 'validation', 'test')


@dataclass(frozen=True)
class SplitPlan:
    """Which subjects, masks and sample indices belong to each split."""

    subjects: dict[str, tuple[str, ...]]
    masks: dict[str, tuple[str, ...]]
    indices: dict[str, np.ndarray]
    dropped: int

    def summary(self) -> dict[str, object]:
        """JSON-ready description for the model card."""
        return {
            'subjects': {name: list(ids) for name, ids in self.subjects.items()},
            'masks': {name: list(ids) for name, ids in self.masks.items()},
            'samples': {name: int(len(idx)) for name, idx in self.indices.items()},
            'dropped_mask_samples': self.dropped,
        }


def split_by_subject_and_mask(subject_ids: Sequence[str] | np.ndarray,
                              mask_ids: Sequence[str] | np.ndarray,
                              validation_fraction: float = 0.2, test_fraction: float = 0.2,
                              validation_masks: int = 1, test_masks: int = 1,
                              seed: int = 0) -> SplitPlan:
    """Assign each sample to a split by its subject and, if it shows a mask, by its mask.

    Fractions are of the subjects (at least one subject per requested split); mask counts
    are numbers of masks kept out of training. An empty ``mask_id`` means no mask. Same
    ids and seed give the same plan.
    """
    subjects = np.asarray(subject_ids, dtype=str)
    masks = np.asarray(mask_ids, dtype=str)
    if subjects.shape != masks.shape or subjects.ndim != 1:
        raise ValueError('subject_ids and mask_ids must be 1-D and of equal length')
    if not 0.0 < validation_fraction < 1.0 or not 0.0 <= test_fraction < 1.0:
        raise ValueError('validation fraction must be in (0, 1) and test fraction in [0, 1)')
    if validation_masks < 0 or test_masks < 0:
        raise ValueError('mask counts must not be negative')
    if test_masks and not test_fraction:
        raise ValueError('test masks need a test split (test fraction > 0)')
    rng = np.random.default_rng(seed)
    subject_names = np.unique(subjects)
    subject_split = _assign(
        subject_names, rng, _held_out_count(len(subject_names), validation_fraction),
        _held_out_count(len(subject_names), test_fraction), 'subjects',
    )
    mask_names = np.unique(masks[masks != ''])
    mask_split = (
        _assign(mask_names, rng, validation_masks, test_masks, 'masks') if mask_names.size else {})
    sample_split = np.array([subject_split[s] for s in subjects], dtype=object)
    worn = masks != ''
    mask_of_sample = np.array([mask_split.get(m, '') for m in masks], dtype=object)
    conflicting = worn & (mask_of_sample != sample_split)
    sample_split[conflicting] = ''
    return SplitPlan(
        subjects=_members(subject_split),
        masks=_members(mask_split),
        indices={name: np.flatnonzero(sample_split == name) for name in SPLITS},
        dropped=int(conflicting.sum()),
    )


def splits_from_labels(split_names: Sequence[str] | np.ndarray,
                       subject_ids: Sequence[str] | np.ndarray,
                       mask_ids: Sequence[str] | np.ndarray) -> SplitPlan:
    """Use the splits the data collection assigned (e.g. the synthetic protocol's).

    Checks the thesis rule instead of imposing it: a subject or a mask found in two splits
    is a ValueError naming it.
    """
    names = np.asarray(split_names, dtype=str)
    subjects, masks = np.asarray(subject_ids, dtype=str), np.asarray(mask_ids, dtype=str)
    if not names.shape == subjects.shape == masks.shape:
        raise ValueError('split, subject and mask labels must have equal length')
    unknown = sorted(set(names.tolist()) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split label(s) {', '.join(unknown)} (known: {SPLITS})")
    members: dict[str, dict[str, str]] = {'subjects': {}, 'masks': {}}
    for kind, ids in (('subjects', subjects), ('masks', masks)):
        for name, split in zip(ids.tolist(), names.tolist(), strict=True):
            if not name:
                continue
            if members[kind].setdefault(name, split) != split:
                raise ValueError(f'{kind[:-1]} {name} is in both {members[kind][name]} and '
                                 f'{split}: the splits are not disjoint')
    return SplitPlan(
        subjects=_members(members['subjects']),
        masks=_members(members['masks']),
        indices={name: np.flatnonzero(names == name) for name in SPLITS},
        dropped=0,
    )


def _held_out_count(total: int, fraction: float) -> int:
    return max(1, round(total * fraction)) if fraction > 0 else 0


def _assign(names: np.ndarray, rng: np.random.Generator, validation: int, test: int,
            what: str) -> dict[str, str]:
    """Shuffle names; the first go to validation, the next to test, the rest to training."""
    if len(names) < validation + test + 1:
        raise ValueError(
            f'{len(names)} {what} cannot fill {validation} validation, {test} test and at '
            f'least one training place')
    order = [str(name) for name in rng.permutation(names)]
    places = ['validation'] * validation + ['test'] * test
    places += ['train'] * (len(order) - len(places))
    return dict(zip(order, places, strict=True))


def _members(assignment: dict[str, str]) -> dict[str, tuple[str, ...]]:
    return {name: tuple(sorted(k for k, v in assignment.items() if v == name)) for name in SPLITS}
