"""The joined model: saved base (feature extractor) plus trained head, images to probabilities."""

import os

import keras
import numpy as np
import tensorflow as tf

from components.common.contract.artifact_files import FEATURES_INFO
from components.common.contract.record_parsing import parse_feature_batch
from components.common.model.base_network import load_saved_model  # also registers the base's layers
from components.common.storage import atomic_files


def load_joined_model(base_model_path: str, head_model_path: str, trusted: bool = False) -> keras.Model:
    """Loads the saved base and head and joins them: float32 images in [0, 255] to head outputs.

    `trusted` is the run's own `trust_base_model`: only it lets the base load outside safe mode.
    The head, which this project's own code wrote, is always loaded in safe mode.
    """
    base = load_saved_model(base_model_path, trusted)
    head = keras.saving.load_model(head_model_path, compile=False, safe_mode=True)
    images = keras.Input(shape=base.input_shape[1:], name="image")
    return keras.Model(images, head(base(images, training=False), training=False), name="classifier")


def class_probabilities(head_outputs: tf.Tensor) -> tf.Tensor:
    """Probabilities for every class, (N, num_classes), from the head's outputs.

    A two-class head has one sigmoid output p (the second class); it becomes [1 - p, p].
    """
    head_outputs = tf.cast(head_outputs, tf.float32)
    if head_outputs.shape[-1] == 1:
        return tf.concat([1.0 - head_outputs, head_outputs], axis=-1)
    return head_outputs


def head_predictions(features_dir: str, head_model_path: str, split: str,
                     batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(label indices, class probabilities) of a saved head over a split's feature vectors.

    The base network's work is already in the vectors: no image goes through it again.
    """
    dim = atomic_files.read_json(os.path.join(features_dir, FEATURES_INFO))["dim"]
    head = keras.saving.load_model(head_model_path, compile=False, safe_mode=True)
    dataset = tf.data.TFRecordDataset(os.path.join(features_dir, f"{split}.tfrecord"))
    labels, probabilities = [], []
    for vectors, label_indices in dataset.batch(batch_size).map(lambda records: parse_feature_batch(records, dim)):
        probabilities.append(class_probabilities(head(vectors, training=False)).numpy())
        labels.append(label_indices.numpy())
    if not labels:
        raise ValueError(f"the {split} split in {features_dir} is empty")
    return np.concatenate(labels), np.concatenate(probabilities)
