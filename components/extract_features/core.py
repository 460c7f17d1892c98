"""Extract features core: the frozen base runs once per image, never once per epoch.

Output directory layout (features):
    train.tfrecord, eval.tfrecord, test.tfrecord   feature vectors with label indices
    labels.txt                                      the label vocabulary
    features.json                                   base network, dim, counts per split, how many
                                                    images ran through the base (the rest came
                                                    from the feature store)
The base network itself is saved as `base.keras` in its own model directory, with
`base_network.json` (its spec, feature size and parameter count).
"""

import logging
import os
import tempfile
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf

from components.common import examples_info, storage
from components.common.artifact_files import FEATURES_INFO
from components.common.records import PROCESSED_FEATURES, SPLITS, parse_processed, serialize_features
from components.extract_features.base_network import BASE_NETWORK_INFO, BaseNetworkSpec, build_feature_extractor
from components.extract_features.feature_store import FeatureStore
from components.ingest import core as ingest_core

logger = logging.getLogger(__name__)

BASE_MODEL_FILE = "base.keras"
# Vectors per feature-store chunk: a few MB for typical feature sizes, large sequential writes.
STORE_CHUNK_ROWS = 1024


@dataclass(frozen=True)
class ExtractResult:
    """What feature extraction produced."""

    dim: int
    counts: dict[str, int]
    base_model_path: str
    extracted: int


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


def _digests_and_labels(examples_dir: str, split: str) -> tuple[list[str], list[int]]:
    """Each processed image's digest and label index, in file order, without decoding pixels."""
    wanted = {key: PROCESSED_FEATURES[key] for key in ("digest", "label_index")}
    digests, label_indices = [], []
    for parsed in tf.data.TFRecordDataset(split_files(examples_dir, split)).map(
        lambda record: tf.io.parse_single_example(record, wanted)
    ):
        digests.append(parsed["digest"].numpy().decode())
        label_indices.append(int(parsed["label_index"]))
    return digests, label_indices


def _fill_store(infer, store: FeatureStore, examples_dir: str, split: str, image_size: int, batch_size: int,
                needed: list[bool]) -> None:
    """Runs the base (`infer`) over the images marked `needed` and adds their vectors to the store."""
    mask = tf.constant(needed)
    images = (
        tf.data.TFRecordDataset(split_files(examples_dir, split))
        .map(lambda record: parse_processed(record, image_size), num_parallel_calls=tf.data.AUTOTUNE,
             deterministic=True)
        .enumerate()
        .filter(lambda index, example: tf.gather(mask, index))
        .map(lambda index, example: (tf.cast(example["pixels"], tf.float32), example["digest"]))
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    pending_digests, pending_vectors, done, total = [], [], 0, sum(needed)
    for batch, batch_digests in images:
        pending_vectors.append(infer(batch).numpy())
        pending_digests += [digest.decode() for digest in batch_digests.numpy()]
        if len(pending_digests) >= STORE_CHUNK_ROWS:
            store.add(pending_digests, np.concatenate(pending_vectors))
            done += len(pending_digests)
            pending_digests, pending_vectors = [], []
            logger.info("extract_features: %s: %d of %d new images done", split, done, total)
    if pending_digests:
        store.add(pending_digests, np.concatenate(pending_vectors))


def _extract_split(infer, store: FeatureStore, examples_dir: str, split: str, image_size: int,
                   batch_size: int, output_path: str) -> tuple[int, int]:
    """Writes a split's feature records; returns (images, images the base had to run on)."""
    digests, label_indices = _digests_and_labels(examples_dir, split)
    needed, seen = [], set()
    for digest in digests:  # an image listed twice (two labels) runs once
        needed.append(digest not in store and digest not in seen)
        seen.add(digest)
    extracted = sum(needed)
    if extracted:
        _fill_store(infer, store, examples_dir, split, image_size, batch_size, needed)
    with storage.atomic_path(output_path) as tmp_path, tf.io.TFRecordWriter(tmp_path) as writer:
        for digest, label_index in zip(digests, label_indices):
            writer.write(serialize_features(store.get(digest), label_index))
    logger.info("extract_features: %s: %d images, %d extracted, %d reused from the feature store",
                split, len(digests), extracted, len(digests) - extracted)
    return len(digests), extracted


def write_features(extractor, examples_dir: str, features_dir: str, image_size: int, batch_size: int,
                   info: dict, store: FeatureStore | None = None) -> dict[str, int]:
    """Writes every split's feature vectors, the labels and features.json; returns counts per split.

    Args:
        store: vectors computed before, by image digest; only images missing there run through
            the base. None for a store that lives only as long as this call.
    """
    os.makedirs(features_dir, exist_ok=True)
    infer = tf.function(lambda images: extractor(images, training=False), reduce_retracing=True)
    with tempfile.TemporaryDirectory() as scratch:
        store = store if store is not None else FeatureStore(scratch)
        done = {
            split: _extract_split(infer, store, examples_dir, split, image_size, batch_size,
                                  os.path.join(features_dir, f"{split}.tfrecord"))
            for split in SPLITS
        }
    counts = {split: count for split, (count, _) in done.items()}
    extracted = sum(extracted for _, extracted in done.values())
    labels = storage.read_lines(os.path.join(examples_dir, ingest_core.LABELS))
    storage.write_lines(os.path.join(features_dir, ingest_core.LABELS), labels)
    storage.write_json(os.path.join(features_dir, FEATURES_INFO),
                       {**info, "dim": int(extractor.output_shape[-1]), "counts": counts, "extracted": extracted,
                        "reused": sum(counts.values()) - extracted})
    return counts


def run(*, examples_dir: str, features_dir: str, base_model_dir: str, spec: BaseNetworkSpec,
        batch_size: int = 32, store_dir: str = "", reuse_features: bool = True) -> ExtractResult:
    """Builds the base network, saves it, and writes the feature vectors of every split.

    Args:
        examples_dir: preprocess's output directory.
        features_dir: the features artifact directory to fill.
        base_model_dir: the base model artifact directory; `base.keras` is written there.
        spec: which base network, weights, input size and pooling.
        batch_size: images per inference batch.
        store_dir: the feature store for this base, weights, image size and preprocessing; vectors
            of images seen before are taken from it and new ones added. "" for no store.
        reuse_features: False to run the base over every image even if the store has it.
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

    store = FeatureStore(store_dir, ignore_existing=not reuse_features) if store_dir else None
    counts = write_features(extractor, examples_dir, features_dir, spec.image_size, batch_size,
                            {"base_model": asdict(spec)}, store)
    extracted = storage.read_json(os.path.join(features_dir, FEATURES_INFO))["extracted"]
    return ExtractResult(dim, counts, base_model_path, extracted)
