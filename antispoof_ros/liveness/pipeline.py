"""The liveness protocol for one (frame A, frame B, eye corners) set, without ROS.

pair check (``PairValidator``) -> corners inside the frame -> ``align_pair`` ->
``to_model_input`` -> ``LivenessModel.predict`` -> ``DecisionFusion``. The liveness node and
the offline bag evaluation both run this one object, so a score computed offline is the
score the node publishes for the same bytes.

Pixels come as arrays or as callables that convert an image on demand: a set the validator
drops never pays for a conversion. A converter signals an unreadable image with ValueError
(the node's ``ImageFormatError`` is one), so this module needs no ROS type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from antispoof_ros.liveness.alignment import (
    Region,
    align_pair,
    region_by_name,
    to_model_input,
)
from antispoof_ros.liveness.decision import (
    DecisionFusion,
    FusedDecision,
    FusionConfig,
    PairOutcome,
    Reason,
)
from antispoof_ros.liveness.inference import LivenessModel
from antispoof_ros.liveness.pairing import CornerInfo, FrameInfo, PairValidator

#: Pixels of one frame, or a callable returning them (raising ValueError if unreadable).
PixelSource = np.ndarray | Callable[[], np.ndarray]


class Unusable(StrEnum):
    """Why a pair the validator accepted was not scored after all (counted in diagnostics)."""

    BAD_IMAGE = 'bad_image'  # a frame's image cannot be read or aligned
    CORNERS_OUTSIDE_FRAME = 'corners_outside_frame'  # the crop would show no face
    MODEL_ERROR = 'model_error'  # the model's output is no probability


def corners_inside(points: np.ndarray, shape: tuple[int, ...]) -> bool:
    """True when every (x, y) lies within an image of ``shape`` (rows, columns, ...).

    The landmark tracker never reports corners outside its frame, so corners that are
    (finite but) elsewhere belong to another frame size or are corrupt.
    """
    height, width = shape[:2]
    x, y = points[:, 0], points[:, 1]
    return bool(np.all((x >= 0) & (x < width) & (y >= 0) & (y < height)))


def _pixels(source: PixelSource) -> np.ndarray:
    return source() if callable(source) else source


@dataclass(frozen=True)
class PairResult:
    """What one set gave before fusion: the pair's outcome and, if scored, the crop."""

    outcome: PairOutcome
    #: Why an accepted pair was not scored; None when it was scored or dropped by pairing.
    unusable: Unusable | None = None
    #: Why the image could not be read or aligned (BAD_IMAGE only).
    problem: str = ''
    #: The aligned (height, width, 2) crop the model saw.
    crop: np.ndarray | None = None


class LivenessPipeline:
    """Validates, aligns, scores and fuses pairs for one model; keep one per stream."""

    def __init__(self, model: LivenessModel, validator: PairValidator,
                 fusion: FusionConfig | None = None) -> None:
        """Score with ``model`` the pairs ``validator`` accepts; its pair must be the model's."""
        if validator.config.name != model.metadata.pair:
            raise ValueError(f'model was trained for pair {model.metadata.pair!r}, '
                             f'validator checks {validator.config.name!r}')
        self.model = model
        self.validator = validator
        self.region: Region = region_by_name(model.metadata.region)
        self.fusion = DecisionFusion(fusion, model.threshold)
        self.unusable: Counter[Unusable] = Counter()

    def score(self, frame_a: FrameInfo, frame_b: FrameInfo, corners: CornerInfo | None,
              pixels_a: PixelSource, pixels_b: PixelSource) -> PairResult:
        """Check, align and score one set; pixels are converted only for an accepted pair."""
        result = self._score(frame_a, frame_b, corners, pixels_a, pixels_b)
        if result.unusable is not None:
            self.unusable[result.unusable] += 1
        return result

    def evaluate(self, frame_a: FrameInfo, frame_b: FrameInfo, corners: CornerInfo | None,
                 pixels_a: PixelSource, pixels_b: PixelSource,
                 now_s: float) -> tuple[PairResult, FusedDecision]:
        """``score`` one set, then fuse it with the window (``now_s``: the caller's clock)."""
        result = self.score(frame_a, frame_b, corners, pixels_a, pixels_b)
        return result, self.fusion.update(result.outcome, now_s)

    def expire(self, now_s: float) -> FusedDecision | None:
        """UNKNOWN when no valid pair arrived for the fusion's timeout, else None."""
        return self.fusion.expire(now_s)

    def counts(self) -> dict[str, int]:
        """Accepted, dropped (by reason) and unusable (by reason) sets, for diagnostics."""
        return {**self.validator.counts(),
                **{reason.value: self.unusable[reason] for reason in Unusable}}

    def _score(self, frame_a: FrameInfo, frame_b: FrameInfo, corners: CornerInfo | None,
               pixels_a: PixelSource, pixels_b: PixelSource) -> PairResult:
        verdict = self.validator.check(frame_a, frame_b, corners)
        if not verdict.ok:
            return PairResult(PairOutcome.dropped(verdict.reason))
        bad_input = PairOutcome.invalid(Reason.BAD_INPUT)
        try:
            image_a, image_b = _pixels(pixels_a), _pixels(pixels_b)
            if not corners_inside(corners.points.as_array(), image_a.shape):
                return PairResult(bad_input, Unusable.CORNERS_OUTSIDE_FRAME)
            crop = align_pair(image_a, image_b, corners.points, self.region,
                              self.model.metadata.eye)
        except ValueError as error:  # unreadable image (converter) or AlignmentError
            return PairResult(bad_input, Unusable.BAD_IMAGE, str(error))
        outcome = PairOutcome.scored(self.model.predict(to_model_input(crop)))
        return PairResult(outcome, None if outcome.valid else Unusable.MODEL_ERROR, crop=crop)
