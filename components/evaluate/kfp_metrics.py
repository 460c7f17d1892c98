"""The evaluation's results in the KFP artifacts the KFP UI draws.

Those are scalar metrics, a confusion matrix and a ROC curve.
"""

import math


def scalar_metrics(found: dict) -> dict[str, float]:
    """The scalars the UI lists for a run, from `metrics.json`'s contents; undefined ones left out."""
    low, high = found["accuracy_ci95"]
    scalars = {"accuracy": found["accuracy"], "accuracy_ci95_low": low, "accuracy_ci95_high": high,
               "auc": found["auc"], "log_loss": found["log_loss"], "precision": found["precision"],
               "recall": found["recall"], "ece": found["ece"]}
    if "transfer_lift" in found:
        scalars["random_base_accuracy"] = found["transfer_lift"]["random_accuracy"]
        scalars["transfer_lift"] = found["transfer_lift"]["lift"]
    return {name: value for name, value in scalars.items() if not math.isnan(value)}


def log_to_kfp(found: dict, labels: list[str], metrics, classification_metrics) -> None:
    """Logs the test metrics (`metrics.json`'s contents) into KFP's `Metrics` and `ClassificationMetrics`."""
    for name, value in scalar_metrics(found).items():
        metrics.log_metric(name, value)
    classification_metrics.log_confusion_matrix(list(labels), found["confusion_matrix"])
    roc = found["roc"]
    if roc:
        classification_metrics.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])
