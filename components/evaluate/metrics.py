"""Classification metrics from labels and predicted probabilities."""

import numpy as np
from sklearn import metrics as skm


def classification_metrics(label_indices: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, AUC, precision, recall and the confusion matrix.

    For two classes, precision and recall are those of the second class (the sigmoid's positive);
    for more, they are macro averages and AUC is one-vs-rest.
    """
    num_classes = probabilities.shape[1]
    predicted = probabilities.argmax(axis=1)
    binary = num_classes == 2
    average = "binary" if binary else "macro"
    present = np.unique(label_indices)
    if len(present) < 2:
        auc = float("nan")  # undefined with one class in the test split
    elif binary:
        auc = skm.roc_auc_score(label_indices, probabilities[:, 1])
    else:
        auc = skm.roc_auc_score(label_indices, probabilities, multi_class="ovr", labels=list(range(num_classes)))
    return {
        "accuracy": float(skm.accuracy_score(label_indices, predicted)),
        "auc": float(auc),
        "precision": float(skm.precision_score(label_indices, predicted, average=average, zero_division=0)),
        "recall": float(skm.recall_score(label_indices, predicted, average=average, zero_division=0)),
        "count": int(len(label_indices)),
        "confusion_matrix": skm.confusion_matrix(
            label_indices, predicted, labels=list(range(num_classes))
        ).tolist(),
    }
