"""Extract features core: the frozen base runs once per image, never once per epoch.

Output directory layout (features):
    train.tfrecord, eval.tfrecord, test.tfrecord   feature vectors with label indices
    labels.txt                                      the label vocabulary
    features.json                                   base network, dim, counts per split
The base network itself is saved as `base.keras` in its own model directory, with
`base_network.json` (its spec, feature size and parameter count).
"""

import logging
import os
from dataclasses import asdict, dataclass

import tensorflow as tf

from components.common import examples_info, storage
from components.common.records import SPLITS, parse_processed, serialize_features
from components.extract_features.base_network import BaseNetworkSpec, build_feature_extractor
from components.ingest import core as ingest_core

logger = logging.getLogger(__name__)

BASE_MODEL_FILE = "base.keras"
BASE_NETWORK_INFO = "base_network.json"
FEATURES_INFO = "features.json"


@dataclass(frozen=True)
class ExtractResult:
    """What feature extraction produced."""

    dim: int
    counts: dict[str, int]
    base_model_path: str


def split_files(examples_dir: str, split: str) -> list[str]:
    """The processed-example shards of one split."""
    return storage.sorted_glob(os.path.join(examples_dir, f"{split}-*.tfrecord"))


def image_batches(examples_dir: str, split: str, image_size: int, batch_size: int) -> tf.data.Dataset:
    """Processed images of a split as batches of (float32 pixels, label_index), in file order."""
    files = split_files(examples_dir, split)
    dataset = tf.data.TFRecordDataset(files)
    dataset = dataset.map(
        lambda record: parse_processed(record, image_size), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    dataset = dataset.map(lambda ex: (tf.cast(ex["pixels"], tf.float32), ex["label_index"]))
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _extract_split(extractor, examples_dir, split, image_size, batch_size, output_path) -> int:
    infer = tf.function(lambda images: extractor(images, training=False), reduce_retracing=True)
    count = 0
    with storage.atomic_path(output_path) as tmp_path, tf.io.TFRecordWriter(tmp_path) as writer:
        for images, label_indices in image_batches(examples_dir, split, image_size, batch_size):
            features = infer(images).numpy()
            for vector, label_index in zip(features, label_indices.numpy()):
                writer.write(serialize_features(vector, int(label_index)))
            count += len(features)
    logger.info("extract_features: %s: %d images", split, count)
    return count


def write_features(extractor, examples_dir: str, features_dir: str, image_size: int, batch_size: int,
                   info: dict) -> dict[str, int]:
    """Writes every split's feature vectors, the labels and features.json; returns counts per split."""
    os.makedirs(features_dir, exist_ok=True)
    counts = {
        split: _extract_split(extractor, examples_dir, split, image_size, batch_size,
                              os.path.join(features_dir, f"{split}.tfrecord"))
        for split in SPLITS
    }
    labels = storage.read_lines(os.path.join(examples_dir, ingest_core.LABELS))
    storage.write_lines(os.path.join(features_dir, ingest_core.LABELS), labels)
    storage.write_json(os.path.join(features_dir, FEATURES_INFO),
                       {**info, "dim": int(extractor.output_shape[-1]), "counts": counts})
    return counts


def run(*, examples_dir: str, features_dir: str, base_model_dir: str, spec: BaseNetworkSpec,
        batch_size: int = 32) -> ExtractResult:
    """Builds the base network, saves it, and writes the feature vectors of every split.

    Args:
        examples_dir: preprocess's output directory.
        features_dir: the features artifact directory to fill.
        base_model_dir: the base model artifact directory; `base.keras` is written there.
        spec: which base network, weights, input size and pooling.
        batch_size: images per inference batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    resized_to = examples_info.image_size(examples_dir)
    if resized_to != spec.image_size:
        raise ValueError(f"examples were resized to {resized_to} but the base network takes {spec.image_size}")
    extractor = build_feature_extractor(spec)
    os.makedirs(base_model_dir, exist_ok=True)
    base_model_path = os.path.join(base_model_dir, BASE_MODEL_FILE)
    with storage.atomic_path(base_model_path) as tmp_path:
        extractor.save(tmp_path)
    dim = int(extractor.output_shape[-1])
    storage.write_json(os.path.join(base_model_dir, BASE_NETWORK_INFO),
                       {**asdict(spec), "dim": dim, "parameters": int(extractor.count_params())})

    counts = write_features(extractor, examples_dir, features_dir, spec.image_size, batch_size,
                            {"base_model": asdict(spec)})
    return ExtractResult(dim, counts, base_model_path)
