"""Classification metrics from labels and predicted probabilities."""

from typing import Sequence

import numpy as np
from sklearn import metrics as skm

BOOTSTRAP_SAMPLES = 1000
CALIBRATION_BINS = 10
# A ROC curve is stored with at most this many points: enough to draw, small enough for metadata.
ROC_POINTS = 200


def bootstrap_accuracy_interval(correct: np.ndarray, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """A percentile bootstrap confidence interval for accuracy, from per-example correctness."""
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(correct), size=(BOOTSTRAP_SAMPLES, len(correct)))
    accuracies = correct[samples].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(accuracies, [tail, 100 - tail])
    return float(low), float(high)


def expected_calibration_error(label_indices: np.ndarray, probabilities: np.ndarray,
                               bins: int = CALIBRATION_BINS) -> tuple[float, list[dict]]:
    """ECE over equal-width confidence bins, and the bins for a reliability diagram."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == label_indices
    edges = np.linspace(0.0, 1.0, bins + 1)
    table, error = [], 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if not inside.any():
            continue
        bin_accuracy, bin_confidence = float(correct[inside].mean()), float(confidence[inside].mean())
        error += inside.mean() * abs(bin_accuracy - bin_confidence)
        table.append({"low": float(low), "high": float(high), "count": int(inside.sum()),
                      "accuracy": bin_accuracy, "confidence": bin_confidence})
    return float(error), table


def roc_curve(label_indices: np.ndarray, probabilities: np.ndarray) -> dict | None:
    """The ROC curve: of the second class for two classes, micro-averaged one-vs-rest otherwise."""
    num_classes = probabilities.shape[1]
    if len(np.unique(label_indices)) < 2:
        return None
    if num_classes == 2:
        truth, scores = label_indices == 1, probabilities[:, 1]
    else:
        truth = (label_indices[:, None] == np.arange(num_classes)[None]).ravel()
        scores = probabilities.ravel()
    fpr, tpr, thresholds = skm.roc_curve(truth, scores)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS)).astype(int))
    # sklearn's first threshold is +inf, which JSON cannot hold.
    return {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(),
            "thresholds": np.minimum(thresholds[keep], 1.0).tolist()}


def classification_metrics(label_indices: np.ndarray, probabilities: np.ndarray,
                           labels: Sequence[str] | None = None) -> dict:
    """Every metric evaluate reports, from the true label indices and the predicted probabilities.

    They are accuracy with a bootstrap 95% interval, AUC, log loss, precision, recall, per-class
    precision/recall/F1, the confusion matrix, the calibration error and the ROC curve.
    For two classes, precision and recall are those of the second class (the sigmoid's positive);
    for more, they are macro averages and AUC is one-vs-rest.
    """
    num_classes = probabilities.shape[1]
    labels = list(labels) if labels is not None else [str(i) for i in range(num_classes)]
    classes = list(range(num_classes))
    predicted = probabilities.argmax(axis=1)
    binary = num_classes == 2
    average = "binary" if binary else "macro"
    if len(np.unique(label_indices)) < 2:
        auc = float("nan")  # undefined with one class in the test split
    elif binary:
        auc = skm.roc_auc_score(label_indices, probabilities[:, 1])
    else:
        auc = skm.roc_auc_score(label_indices, probabilities, multi_class="ovr", labels=classes)
    correct = (predicted == label_indices).astype(np.float64)
    low, high = bootstrap_accuracy_interval(correct)
    ece, reliability = expected_calibration_error(label_indices, probabilities)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        label_indices, predicted, labels=classes, zero_division=0
    )
    return {
        "accuracy": float(correct.mean()),
        "accuracy_ci95": [low, high],
        "auc": float(auc),
        "log_loss": float(skm.log_loss(label_indices, np.clip(probabilities, 1e-7, 1.0), labels=classes)),
        "precision": float(skm.precision_score(label_indices, predicted, average=average, zero_division=0)),
        "recall": float(skm.recall_score(label_indices, predicted, average=average, zero_division=0)),
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "ece": ece,
        "reliability": reliability,
        "roc": roc_curve(label_indices, probabilities),
        "count": int(len(label_indices)),
        "confusion_matrix": skm.confusion_matrix(label_indices, predicted, labels=classes).tolist(),
    }
