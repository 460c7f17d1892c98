"""The evaluation's results in the KFP artifacts the KFP UI draws.

Those are scalar metrics, a confusion matrix and a ROC curve.
"""

import logging
import math

logger = logging.getLogger(__name__)

# The confusion matrix goes into the artifact's metadata, one cell per class pair: at 1,000
# classes that is a million numbers in the metadata store, for a grid the UI cannot show.
KFP_MATRIX_CLASSES = 100


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


def log_to_kfp(result, metrics, classification_metrics) -> None:
    """Logs an `EvaluateResult`'s test metrics into KFP's `Metrics` and `ClassificationMetrics` artifacts."""
    for name, value in scalar_metrics(result.metrics).items():
        metrics.log_metric(name, value)
    if len(result.labels) <= KFP_MATRIX_CLASSES:
        classification_metrics.log_confusion_matrix(list(result.labels), result.metrics["confusion_matrix"])
    else:
        logger.info("evaluate: %d classes: the confusion matrix is left out of KFP's metrics (more than %d); "
                    "metrics.json and the report's top confusions have it", len(result.labels), KFP_MATRIX_CLASSES)
    roc = result.metrics["roc"]
    if roc:
        classification_metrics.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])
