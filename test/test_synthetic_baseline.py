"""The synthetic task is learnable from flash differences, but not trivially."""

from __future__ import annotations

import numpy as np
import pytest

from antispoof_ros.offline.synthetic.baseline import face_crop, run_baseline, train_logistic


def test_logistic_regression_separates_separable_data():
    rng = np.random.default_rng(0)
    features = np.vstack([rng.normal(-1, 0.5, (200, 3)), rng.normal(1, 0.5, (200, 3))])
    labels = np.repeat([0, 1], 200)
    model = train_logistic(features, labels)
    assert np.mean((model.probability(features) > 0.5) == labels) > 0.97


def test_face_crop_puts_the_eyes_at_40_percent_height():
    frame = np.zeros((200, 200), np.uint8)
    frame[99:102, 60:140] = 255  # a bright bar through the eye corners at y = 100
    corners = np.array([[70, 100], [90, 100], [130, 100], [110, 100]], np.float32)
    crop = face_crop(frame, corners, (40, 50))
    assert np.argmax(crop.mean(axis=1)) in (19, 20)


@pytest.mark.slow
def test_baseline_is_well_above_chance_but_far_from_perfect():
    """Logistic regression on P2 (front - right) differences, held-out subjects and mask."""
    result = run_baseline(seed=0)
    print(result)
    assert 0.6 < result['balanced'] < 0.95
    assert result['overall'] > result['majority_class_rate']
    assert result['n_test'] > 100
