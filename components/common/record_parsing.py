"""Reading the records of records.py inside tf.data."""

import tensorflow as tf

PROCESSED_FEATURES = {
    "pixels": tf.io.FixedLenFeature([], tf.string),
    "label_index": tf.io.FixedLenFeature([], tf.int64),
    "origin": tf.io.FixedLenFeature([], tf.string),
    "digest": tf.io.FixedLenFeature([], tf.string),
}


def parse_processed(serialized: tf.Tensor, image_size: int) -> dict[str, tf.Tensor]:
    """Parses a processed example inside tf.data: pixels come back as uint8 (H, W, 3)."""
    parsed = tf.io.parse_single_example(serialized, PROCESSED_FEATURES)
    pixels = tf.io.decode_raw(parsed["pixels"], tf.uint8)
    parsed["pixels"] = tf.reshape(pixels, [image_size, image_size, 3])
    return parsed


def parse_feature_batch(serialized: tf.Tensor, dim: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Parses a batch of feature records at once into (features (N, dim), label_index (N,)).

    One vectorized parse per batch instead of one per record: on the head's small models the
    input pipeline, not the arithmetic, sets the pace of an epoch.
    """
    parsed = tf.io.parse_example(serialized, {"features": tf.io.FixedLenFeature([dim], tf.float32),
                                              "label_index": tf.io.FixedLenFeature([], tf.int64)})
    return parsed["features"], parsed["label_index"]
