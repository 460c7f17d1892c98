"""Evaluate core: run the joined model over the test images and decide the blessing.

Output directory layout (evaluation):
    metrics.json     accuracy, auc, precision, recall, confusion matrix, labels
    blessing.json    {"blessed": bool, "reason": str, "accuracy_threshold": float}
"""

import logging
import math
import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from components.common import storage
from components.common.modeling import class_probabilities, load_joined_model
from components.evaluate.metrics import classification_metrics
from components.extract_features.core import image_batches
from components.ingest import core as ingest_core

logger = logging.getLogger(__name__)

METRICS = "metrics.json"
BLESSING = "blessing.json"


@dataclass(frozen=True)
class EvaluateResult:
    """The test metrics and the blessing decision."""

    metrics: dict
    labels: tuple[str, ...]
    blessed: bool
    reason: str


def predict_split(model, examples_dir: str, split: str, image_size: int, batch_size: int):
    """(label_indices, probabilities) of the joined model over one split's images."""
    infer = tf.function(lambda images: class_probabilities(model(images, training=False)), reduce_retracing=True)
    labels, probabilities = [], []
    for images, label_indices in image_batches(examples_dir, split, image_size, batch_size):
        probabilities.append(infer(images).numpy())
        labels.append(label_indices.numpy())
    if not labels:
        raise ValueError(f"the {split} split in {examples_dir} is empty: nothing to evaluate")
    return np.concatenate(labels), np.concatenate(probabilities)


def decide_blessing(metrics: dict, accuracy_threshold: float) -> tuple[bool, str]:
    """Blesses a model whose test accuracy meets the threshold."""
    accuracy = metrics["accuracy"]
    if math.isnan(accuracy) or accuracy < accuracy_threshold:
        return False, f"test accuracy {accuracy:.4f} is below the threshold {accuracy_threshold:.4f}"
    return True, f"test accuracy {accuracy:.4f} meets the threshold {accuracy_threshold:.4f}"


def run(*, examples_dir: str, base_model_path: str, head_model_path: str, output_dir: str,
        accuracy_threshold: float, batch_size: int = 32) -> EvaluateResult:
    """Evaluates base + head on the test split and writes metrics and the blessing."""
    if not 0 <= accuracy_threshold <= 1:
        raise ValueError(f"accuracy_threshold must be in [0, 1], got {accuracy_threshold}")
    stats = storage.read_json(os.path.join(examples_dir, "stats.json"))
    labels = storage.read_lines(os.path.join(examples_dir, ingest_core.LABELS))
    model = load_joined_model(base_model_path, head_model_path)
    label_indices, probabilities = predict_split(model, examples_dir, "test", stats["image_size"], batch_size)
    metrics = classification_metrics(label_indices, probabilities)
    metrics["labels"] = labels
    blessed, reason = decide_blessing(metrics, accuracy_threshold)
    os.makedirs(output_dir, exist_ok=True)
    storage.write_json(os.path.join(output_dir, METRICS), metrics)
    storage.write_json(
        os.path.join(output_dir, BLESSING),
        {"blessed": blessed, "reason": reason, "accuracy_threshold": accuracy_threshold},
    )
    logger.info(
        "evaluate: accuracy %.4f, auc %.4f on %d test images; %s",
        metrics["accuracy"], metrics["auc"], metrics["count"], "blessed" if blessed else "NOT blessed",
    )
    return EvaluateResult(metrics, tuple(labels), blessed, reason)
