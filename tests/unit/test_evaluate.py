"""Evaluation: metrics computed right, and the blessing follows the threshold."""

import os
import shutil

import numpy as np
import pytest

from components.common.contract.artifact_files import FINE_TUNE_INFO, PREDICTIONS
from components.common.storage import atomic_files
from components.evaluate import core
from components.evaluate.blessing import BlessingPolicy, decide_blessing, paired_comparison
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
def test_without_a_champion_the_threshold_decides(accuracy, threshold, blessed):
    decision, reasons = decide_blessing({"accuracy": accuracy, "auc": 0.9}, None, BlessingPolicy(threshold))
    assert decision is blessed
    assert f"{threshold:.4f}" in reasons[0] and "no comparable champion" in reasons[-1]


@pytest.mark.parametrize(
    "challenger_right, champion_right, blessed",
    [(90, 90, True), (89, 90, True), (84, 90, False), (95, 90, True)],
)
def test_challenger_must_not_be_shown_worse_than_the_champion_on_the_same_images(
        challenger_right, champion_right, blessed):
    # 100 test images; each model gets its first N right, so their mistakes overlap all they can.
    challenger_correct, champion_correct = np.arange(100) < challenger_right, np.arange(100) < champion_right
    policy = BlessingPolicy(accuracy_threshold=0.5, champion_tolerance=0.01)
    decision, reasons = decide_blessing(
        {"accuracy": challenger_right / 100, "auc": 0.9},
        {"version": 3, "accuracy": champion_right / 100, "auc": 0.9}, policy,
        paired=paired_comparison(challenger_correct, champion_correct, policy.confidence),
    )
    assert decision is blessed
    assert "version 3" in reasons[1] and "on the same 100 test images" in reasons[1]
    assert reasons[1].startswith("worse" if not blessed else "not worse")
    assert reasons[2] == "no version in serving records its evaluation: no drift guard"


def test_auc_threshold_is_optional_and_enforced_when_set():
    metrics = {"accuracy": 0.9, "auc": 0.7}
    assert decide_blessing(metrics, None, BlessingPolicy(0.8))[0] is True
    blessed, reasons = decide_blessing(metrics, None, BlessingPolicy(0.8, auc_threshold=0.75))
    assert blessed is False and any("AUC 0.7000 is below" in reason for reason in reasons)


@pytest.mark.parametrize("name", ["accuracy_threshold", "auc_threshold", "champion_tolerance", "drift_margin"])
def test_policy_values_outside_0_to_1_are_refused(name):
    with pytest.raises(ValueError, match=name):
        BlessingPolicy(**{name: 1.5})


@pytest.mark.parametrize("confidence", [0.4, 1.0, 1.5])
def test_a_confidence_outside_one_half_to_1_is_refused(confidence):
    with pytest.raises(ValueError, match="confidence"):
        BlessingPolicy(confidence=confidence)


def test_accuracy_interval_calibration_and_roc():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=400)
    # A perfectly calibrated scorer: P(label 1) is the score itself.
    scores = rng.uniform(size=400)
    labels = (rng.uniform(size=400) < scores).astype(int)
    probabilities = np.stack([1 - scores, scores], axis=1)

    metrics = classification_metrics(labels, probabilities, labels=["no", "yes"])

    low, high = metrics["accuracy_ci95"]
    assert low < metrics["accuracy"] < high and high - low < 0.15
    assert metrics["ece"] < 0.08
    assert sum(b["count"] for b in metrics["reliability"]) == 400
    assert metrics["roc"]["fpr"][0] == 0.0 and metrics["roc"]["tpr"][-1] == 1.0
    assert set(metrics["per_class"]) == {"no", "yes"}
    assert metrics["per_class"]["yes"]["support"] == int(labels.sum())
    assert metrics["log_loss"] == pytest.approx(
        -np.mean(np.log(np.where(labels == 1, scores, 1 - scores).clip(1e-7))), rel=1e-4)


def test_an_overconfident_model_has_a_large_calibration_error():
    labels = np.array([0, 1] * 50)
    probabilities = np.tile([[0.99, 0.01]], (100, 1))  # always sure of class 0, right half the time
    assert classification_metrics(labels, probabilities)["ece"] == pytest.approx(0.49, abs=1e-6)


def _evaluate(trained, output_dir, head_model_path=None, features_dir=None) -> np.ndarray:
    core.run(examples_dir=trained["examples_dir"], base_model_path=trained["base_model_path"],
             head_model_path=head_model_path or trained["head_model_path"], output_dir=str(output_dir),
             policy=BlessingPolicy(0.0), features_dir=features_dir)
    with np.load(output_dir / PREDICTIONS) as predictions:
        return predictions["probabilities"]


def test_the_head_on_extracted_features_scores_as_the_whole_model_on_images(trained, tmp_path):
    on_images = _evaluate(trained, tmp_path / "images")
    on_features = _evaluate(trained, tmp_path / "features", features_dir=trained["features_dir"])
    assert on_features.shape == on_images.shape
    np.testing.assert_allclose(on_features, on_images, atol=1e-5)


def test_a_fine_tuned_base_is_run_again_not_read_from_the_features(trained, tmp_path):
    head_dir = tmp_path / "tuned_head"
    shutil.copytree(os.path.dirname(trained["head_model_path"]), head_dir)
    atomic_files.write_json(str(head_dir / FINE_TUNE_INFO), {"ran": True, "reason": "on"})
    # Features that would fail to load: only a run that ignores them succeeds.
    probabilities = _evaluate(trained, tmp_path / "tuned", head_model_path=str(head_dir / "head.keras"),
                              features_dir=str(tmp_path / "no-features-here"))
    assert probabilities.shape[1] == 2
