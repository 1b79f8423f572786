"""LivenessPipeline without ROS: real ONNX models, real alignment, plain data in."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from onnx_models import FACE_P2_METADATA, build_model, constant_face_model
import pytest

from antispoof_ros.camera.phase_labels import counter_label
from antispoof_ros.eye_corners import EyeCornerPoints
from antispoof_ros.flash import DEFAULT_PATTERN, Phase, pair_config
from antispoof_ros.liveness.alignment import FACE_REGION
from antispoof_ros.liveness.decision import Decision, FusionConfig, Reason
from antispoof_ros.liveness.inference import LivenessModel
from antispoof_ros.liveness.pairing import (
    CornerInfo,
    CornerStatus,
    DropReason,
    FrameInfo,
    PairValidator,
)
from antispoof_ros.liveness.pipeline import LivenessPipeline, Unusable
from antispoof_ros.msg import FlashFrame
from antispoof_ros.nodes.image_conversion import array_to_image
from antispoof_ros.nodes.messages import flash_frame_message, frame_header
from antispoof_ros.tools.bag_evaluation import score_pairs

P2 = pair_config('P2')
LIVE_LOGIT = 2.0  # sigmoid: 0.881
PIXELS = np.random.default_rng(0).integers(20, 200, (240, 320), dtype=np.uint8)
CORNERS = EyeCornerPoints((100.0, 100.0), (120.0, 100.0), (180.0, 100.0), (160.0, 100.0))


@pytest.fixture(scope='module')
def live_model(tmp_path_factory: pytest.TempPathFactory) -> LivenessModel:
    path = tmp_path_factory.mktemp('models') / 'live.onnx'
    return LivenessModel.load(constant_face_model(path, LIVE_LOGIT))


def frame_info(counter: int) -> FrameInfo:
    label = counter_label(counter)
    return FrameInfo(int(label.phase), label.frame_counter, label.cycle_index,
                     label.position_in_cycle)


def cycle_set(cycle: int, corners: EyeCornerPoints = CORNERS,
              corner_counter: int | None = None) -> tuple[FrameInfo, FrameInfo, CornerInfo]:
    """Front and right frame of ``cycle`` and the corners of its front frame (or another)."""
    front = len(DEFAULT_PATTERN) * cycle + DEFAULT_PATTERN.index(Phase.FRONT)
    counter = front if corner_counter is None else corner_counter
    return (frame_info(front), frame_info(front + 1),
            CornerInfo(CornerStatus.OK, counter, corners))


class CountingConverter:
    """Returns fixed pixels like a lazy image conversion and counts how often it ran."""

    def __init__(self, pixels: np.ndarray = PIXELS) -> None:
        self.pixels = pixels
        self.calls = 0

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return self.pixels


def test_an_accepted_pair_is_aligned_scored_and_fused(live_model: LivenessModel) -> None:
    pipeline = LivenessPipeline(live_model, PairValidator(P2),
                                FusionConfig(window_length=3, min_valid_pairs=2))
    fused = []
    for cycle in range(3):
        result, decision = pipeline.evaluate(*cycle_set(cycle), PIXELS, PIXELS, now_s=cycle * 0.03)
        assert result.outcome.valid and result.unusable is None
        assert result.outcome.score == pytest.approx(1 / (1 + math.exp(-LIVE_LOGIT)), abs=1e-6)
        assert result.crop.shape == (FACE_REGION.height, FACE_REGION.width, 2)
        fused.append(decision.decision)
    assert fused == [Decision.UNKNOWN, Decision.LIVE, Decision.LIVE]
    assert pipeline.expire(0.06 + FusionConfig().timeout_s + 0.01).decision == Decision.UNKNOWN
    assert pipeline.counts()['accepted'] == 3


def test_a_dropped_pair_never_converts_its_images(live_model: LivenessModel) -> None:
    pipeline = LivenessPipeline(live_model, PairValidator(P2))
    converter_a, converter_b = CountingConverter(), CountingConverter()
    no_corners = (*cycle_set(2)[:2], None)
    stale = cycle_set(3, corner_counter=cycle_set(2)[0].frame_counter)
    swapped = cycle_set(4)[1::-1] + cycle_set(4)[2:]  # B before A: wrong phases
    for candidate in (no_corners, stale, swapped):
        result = pipeline.score(*candidate, converter_a, converter_b)
        assert math.isnan(result.outcome.score) and result.crop is None
    assert (converter_a.calls, converter_b.calls) == (0, 0)
    assert pipeline.validator.drops == {DropReason.CORNERS_MISSING: 1,
                                        DropReason.CORNERS_STALE: 1, DropReason.WRONG_PHASE: 1}
    result = pipeline.score(*cycle_set(5), converter_a, converter_b)
    assert result.outcome.valid and (converter_a.calls, converter_b.calls) == (1, 1)


def test_corners_outside_the_frame_are_counted_and_never_scored(
    live_model: LivenessModel
) -> None:
    pipeline = LivenessPipeline(live_model, PairValidator(P2))
    far_right = EyeCornerPoints.from_array(CORNERS.as_array() + [1e7, 0.0])
    result = pipeline.score(*cycle_set(1, far_right), PIXELS, PIXELS)
    assert result.unusable is Unusable.CORNERS_OUTSIDE_FRAME and result.crop is None
    assert result.outcome.reason == Reason.BAD_INPUT and math.isnan(result.outcome.score)
    assert pipeline.counts()['corners_outside_frame'] == 1


def test_unreadable_and_mismatched_images_are_bad_images(live_model: LivenessModel) -> None:
    def unreadable() -> np.ndarray:
        raise ValueError('truncated image: 100 bytes, expected 76800')

    pipeline = LivenessPipeline(live_model, PairValidator(P2))
    results = [pipeline.score(*cycle_set(1), PIXELS, unreadable),
               pipeline.score(*cycle_set(2), PIXELS, PIXELS[:, :300])]
    assert [r.unusable for r in results] == [Unusable.BAD_IMAGE] * 2
    assert results[0].problem == 'truncated image: 100 bytes, expected 76800'
    assert 'frame sizes differ' in results[1].problem
    assert {r.outcome.reason for r in results} == {Reason.BAD_INPUT}
    counts = pipeline.counts()
    assert (counts['accepted'], counts['bad_image'], counts['model_error']) == (2, 2, 0)


def test_an_output_that_is_no_probability_is_a_model_error(tmp_path: Path) -> None:
    path = build_model(tmp_path / 'logit.onnx', FACE_P2_METADATA, squash=False, bias=5.0,
                       input_shape=('N', 2, FACE_REGION.height, FACE_REGION.width))
    pipeline = LivenessPipeline(LivenessModel.load(path), PairValidator(P2))
    result, fused = pipeline.evaluate(*cycle_set(1), PIXELS, PIXELS, now_s=0.0)
    assert result.unusable is Unusable.MODEL_ERROR and result.crop is not None
    assert fused.decision == Decision.UNKNOWN and fused.reason == Reason.MODEL_ERROR
    assert pipeline.counts()['model_error'] == 1


def test_the_validator_must_check_the_model_s_pair(live_model: LivenessModel) -> None:
    with pytest.raises(ValueError, match="trained for pair 'P2', validator checks 'P3'"):
        LivenessPipeline(live_model, PairValidator(pair_config('P3')))


# -- the bag evaluation's direct scores run the same pipeline ----------------------------------
def flash_frame(counter: int) -> FlashFrame:
    header = frame_header(1_000_000_000 + counter * 8_333_333)
    return flash_frame_message(counter_label(counter), header,
                               array_to_image(PIXELS, 'mono8', header))


def bag_cycles(cycles: int) -> dict[tuple[Phase, int], FlashFrame]:
    frames = (flash_frame(counter) for counter in range(len(DEFAULT_PATTERN) * cycles))
    return {(Phase(frame.phase), frame.cycle_index): frame for frame in frames}


@pytest.mark.parametrize('landmark_phase', [Phase.FRONT, Phase.DARK])
def test_bag_evaluation_takes_the_corners_of_the_landmark_phase_frame(
    live_model: LivenessModel, landmark_phase: Phase
) -> None:
    frames = bag_cycles(3)
    position = DEFAULT_PATTERN.index(landmark_phase)
    corners = {counter: CornerInfo(CornerStatus.OK, counter, CORNERS)
               for counter in range(position, 12, len(DEFAULT_PATTERN))}
    scores = score_pairs(LivenessPipeline(live_model, PairValidator(P2, DEFAULT_PATTERN,
                                                                    landmark_phase)),
                         frames, corners)
    assert sorted(scores) == [2, 6, 10]  # frame B (right) of each cycle
    reference = LivenessPipeline(live_model, PairValidator(P2)).score(
        *cycle_set(0), PIXELS, PIXELS).outcome.score
    assert all(score == reference for score in scores.values())
    # the same corners against a validator expecting another phase's: never scored
    other = Phase.DARK if landmark_phase == Phase.FRONT else Phase.FRONT
    unscored = score_pairs(LivenessPipeline(live_model, PairValidator(P2, DEFAULT_PATTERN,
                                                                      other)),
                           frames, corners)
    assert sorted(unscored) == [2, 6, 10] and all(map(math.isnan, unscored.values()))


def test_bag_evaluation_drops_corners_outside_the_frame_like_the_node(
    live_model: LivenessModel
) -> None:
    far = EyeCornerPoints.from_array(CORNERS.as_array() + [0.0, 1e6])
    pipeline = LivenessPipeline(live_model, PairValidator(P2))
    scores = score_pairs(pipeline, bag_cycles(2), {1: CornerInfo(CornerStatus.OK, 1, far),
                                                   5: CornerInfo(CornerStatus.OK, 5, CORNERS)})
    assert math.isnan(scores[2]) and not math.isnan(scores[6])
    assert pipeline.counts()['corners_outside_frame'] == 1

