"""Sanity baseline: logistic regression on front-minus-right differences of a face crop.

It shows that the synthetic task is learnable from the flash cues (well above chance) but
not trivially separable (a linear model on raw differences is far from perfect), trained on
some subjects and tested on held-out subjects and a held-out mask.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
import sys

import cv2
import numpy as np

from antispoof_ros.flash import DEFAULT_PATTERN, PAIR_CONFIGS, PairConfig
from antispoof_ros.offline.synthetic.protocol import ProtocolConfig, build_protocol, iter_cycles
from antispoof_ros.offline.synthetic.scene import RenderedCycle, Species, Split

CROP_SIZE = (20, 24)  # width, height of the feature crop


def face_crop(frame: np.ndarray, corners: np.ndarray, size: tuple[int, int] = CROP_SIZE
              ) -> np.ndarray:
    """Axis-aligned crop around the eye corners (eyes in the upper third), resized, float32.

    A deliberately simple stand-in for the real alignment: box width = 2x the outer-corner
    span, height = 1.25x the width, eyes at 40 % of the height as in the thesis face crop.
    """
    span = max(float(np.ptp(corners[:, 0])), 4.0)
    centre_x, eye_y = corners[:, 0].mean(), corners[:, 1].mean()
    width = 2.0 * span
    height = 1.25 * width
    x0, y0 = centre_x - width / 2, eye_y - 0.4 * height
    scale_x, scale_y = size[0] / width, size[1] / height
    warp = np.array([[scale_x, 0, -x0 * scale_x], [0, scale_y, -y0 * scale_y]], np.float32)
    return cv2.warpAffine(frame.astype(np.float32), warp, size, flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)


def pair_difference(cycle: RenderedCycle, pair: PairConfig = PAIR_CONFIGS['P2'],
                    size: tuple[int, int] = CROP_SIZE) -> np.ndarray:
    """(A - B) / mean(A) of the two frames of a pair, cropped at frame A's corners."""
    index_a = DEFAULT_PATTERN.index(pair.phase_a)
    index_b = DEFAULT_PATTERN.index(pair.phase_b)
    corners = cycle.truth[index_a].corners.as_array()
    crop_a = face_crop(cycle.frames[index_a], corners, size)
    crop_b = face_crop(cycle.frames[index_b], corners, size)
    return (crop_a - crop_b) / (float(crop_a.mean()) + 1.0)


@dataclass
class LogisticModel:
    """Standardised linear model: p(live) = sigmoid(((x - mean) / std) . w + b)."""

    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: float

    def probability(self, features: np.ndarray) -> np.ndarray:
        """Probability of the live class for each row of ``features``."""
        z = ((features - self.mean) / self.std) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-z))


def train_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1.0,
                   epochs: int = 300, learning_rate: float = 0.5) -> LogisticModel:
    """Full-batch gradient descent on class-balanced cross-entropy with an L2 penalty."""
    mean, std = features.mean(0), features.std(0) + 1e-6
    x = (features - mean) / std
    y = labels.astype(np.float64)
    weight_of = {c: 0.5 / max(np.mean(y == c), 1e-9) for c in (0.0, 1.0)}
    sample_weight = np.where(y == 1.0, weight_of[1.0], weight_of[0.0]) / len(y)
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(epochs):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        error = (p - y) * sample_weight
        w -= learning_rate * (x.T @ error + l2 * w / len(y))
        b -= learning_rate * float(error.sum())
    return LogisticModel(mean, std, w, b)


def dataset(cycles: Iterable[RenderedCycle]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Feature rows, live labels and species names of rendered cycles."""
    rows, labels, species = [], [], []
    for cycle in cycles:
        rows.append(pair_difference(cycle).ravel())
        labels.append(int(cycle.scenario.is_live))
        species.append(cycle.scenario.species.value)
    return np.array(rows), np.array(labels), species


def accuracy_by_species(model: LogisticModel, features: np.ndarray, labels: np.ndarray,
                        species: list[str]) -> dict[str, float]:
    """Overall, class-balanced (mean of live and spoof) and per-species accuracy (at 0.5).

    The balanced figure is the one to compare with chance (0.5): the held-out set has more
    spoof than live cycles, so the plain overall accuracy of "always spoof" is above 0.5.
    """
    correct = (model.probability(features) > 0.5) == (labels == 1)
    live = labels == 1
    result = {'overall': float(correct.mean()),
              'balanced': float(0.5 * (correct[live].mean() + correct[~live].mean())),
              'majority_class_rate': float(max(live.mean(), 1 - live.mean()))}
    names = np.array(species)
    for name in sorted(set(species)):
        result[name] = float(correct[names == name].mean())
    return result


def run_baseline(seed: int = 0, subjects: int = 12) -> dict[str, float]:
    """Train on the train split, test on the held-out subjects and masks."""
    config = ProtocolConfig(seed=seed, subjects=subjects, masks=3, mask_wearers=1,
                            cycles_live=2, cycles_mask=3, cycles_print=4, prints_nir=2,
                            prints_bw=1, prints_colour=1, replays=0,
                            species=(Species.LIVE, Species.PRINT, Species.MASK),
                            validation_fraction=0.15, test_fraction=0.2)
    protocol = build_protocol(config)
    train = [s for s in protocol.scenarios if s.split is Split.TRAIN]
    held_out = [s for s in protocol.scenarios if s.split is not Split.TRAIN]
    x_train, y_train, _ = dataset(iter_cycles(train, seed=seed))
    x_test, y_test, species = dataset(iter_cycles(held_out, seed=seed))
    model = train_logistic(x_train, y_train)
    result = accuracy_by_species(model, x_test, y_test, species)
    result['n_train'], result['n_test'] = float(len(y_train)), float(len(y_test))
    return result


def main(argv: list[str] | None = None) -> int:
    """Print the held-out accuracy of the baseline."""
    parser = argparse.ArgumentParser(
        prog='antispoof_ros.offline.synthetic.baseline', description=__doc__)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--subjects', type=int, default=12)
    args = parser.parse_args(argv)
    if args.subjects < 5:
        parser.exit(2, f'{parser.prog}: error: need at least 5 subjects for held-out splits\n')
    for name, value in run_baseline(args.seed, args.subjects).items():
        print(f'{name}: {int(value)}' if name.startswith('n_') else f'{name}: {value:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
