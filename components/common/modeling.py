"""The joined model: saved base (feature extractor) plus trained head, images to probabilities."""

import keras
import tensorflow as tf

# Importing registers the custom preprocessing layer the saved base uses.
from components.extract_features.base_network import load_base


def load_joined_model(base_model_path: str, head_model_path: str) -> keras.Model:
    """Loads the saved base and head and joins them: float32 images in [0, 255] to head outputs."""
    base = load_base(base_model_path)
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
