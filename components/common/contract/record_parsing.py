"""Reading the records of records.py inside tf.data."""

import tensorflow as tf

from components.common.images.decoding import decode_and_resize

PROCESSED_FEATURES = {
    "pixels": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "image": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "label_index": tf.io.FixedLenFeature([], tf.int64),
    "origin": tf.io.FixedLenFeature([], tf.string),
    "digest": tf.io.FixedLenFeature([], tf.string),
}


def parse_processed(serialized: tf.Tensor, image_size: int) -> dict[str, tf.Tensor]:
    """Parses a processed example inside tf.data: pixels come back as uint8 (S, S, 3).

    A compact example's encoded image is decoded with the function preprocess ran on the same
    bytes (and serving runs), so its pixels are the ones a full example would have stored.
    """
    parsed = tf.io.parse_single_example(serialized, PROCESSED_FEATURES)
    parsed["pixels"] = tf.cond(
        tf.strings.length(parsed["pixels"]) > 0,
        lambda: tf.reshape(tf.io.decode_raw(parsed["pixels"], tf.uint8), [image_size, image_size, 3]),
        lambda: decode_and_resize(parsed["image"], image_size),
    )
    return parsed


def parse_feature_batch(serialized: tf.Tensor, dim: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Parses a batch of feature records at once into (features (N, dim), label_index (N,)).

    One vectorized parse per batch instead of one per record: on the head's small models the
    input pipeline, not the arithmetic, sets the pace of an epoch.
    """
    parsed = tf.io.parse_example(serialized, {"features": tf.io.FixedLenFeature([dim], tf.float32),
                                              "label_index": tf.io.FixedLenFeature([], tf.int64)})
    return parsed["features"], parsed["label_index"]
