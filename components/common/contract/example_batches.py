"""Processed images of one split as batches, for the steps that run images through a network."""

import tensorflow as tf

from components.common.contract import examples_info
from components.common.contract.record_parsing import parse_processed


def image_batches(examples_dir: str, split: str, image_size: int, batch_size: int) -> tf.data.Dataset:
    """Processed images of a split as batches of (float32 pixels, label_index), in file order."""
    dataset = tf.data.TFRecordDataset(examples_info.read_stats(examples_dir).split_files(split))
    dataset = dataset.map(
        lambda record: parse_processed(record, image_size), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    dataset = dataset.map(lambda ex: (tf.cast(ex["pixels"], tf.float32), ex["label_index"]))
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
