"""Evaluation: metrics computed right, and the blessing follows the threshold."""

import numpy as np
import pytest

from components.evaluate import core
from components.evaluate.metrics import classification_metrics


def test_binary_metrics_by_hand():
    labels = np.array([0, 0, 1, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9]])

    metrics = classification_metrics(labels, probabilities)

    # predicted 0, 1, 1, 0, 1: three right of five; class 1 predicted 3 times, 2 right; 3 actual.
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["confusion_matrix"] == [[1, 1], [1, 2]]
    # Of the 6 (negative, positive) pairs, the positive scores higher in 5.
    assert metrics["auc"] == pytest.approx(5 / 6)


def test_multiclass_metrics_are_macro_and_one_vs_rest():
    labels = np.array([0, 1, 2, 2])
    probabilities = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])

    metrics = classification_metrics(labels, probabilities)

    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert metrics["recall"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert 0.5 < metrics["auc"] <= 1.0


@pytest.mark.parametrize("accuracy, threshold, blessed", [(0.9, 0.85, True), (0.85, 0.85, True), (0.84, 0.85, False)])
def test_blessing_follows_the_threshold(accuracy, threshold, blessed):
    decision, reason = core.decide_blessing({"accuracy": accuracy}, threshold)
    assert decision is blessed
    assert f"{threshold:.4f}" in reason


def test_threshold_outside_0_to_1_is_refused(tmp_path):
    with pytest.raises(ValueError, match="accuracy_threshold"):
        core.run(examples_dir=str(tmp_path), base_model_path="", head_model_path="", output_dir=str(tmp_path),
                 accuracy_threshold=1.5)
