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

import hashlib
import logging
import os
import tempfile
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf

from components.common import examples_info, storage
from components.common.requested_gpus import check_requested_gpus
from components.common.artifact_files import BASE_MODEL_FILE, FEATURES_INFO
from components.common.example_wire import TFRecordFileWriter
from components.common.record_parsing import parse_processed
from components.common.records import SPLITS, serialize_features
from components.extract_features.base_network import BASE_NETWORK_INFO, BaseNetworkSpec, build_feature_extractor
from components.extract_features.feature_store import FeatureStore
from components.ingest import core as ingest_core

logger = logging.getLogger(__name__)

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
    """The processed-example shards of one split (see `examples_info.split_files`)."""
    return examples_info.split_files(examples_dir, split)


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


def _record_batches(examples_dir: str, image_size: int, batch_size: int) -> tf.data.Dataset:
    """Every split's processed records, split after split in file order, batched as
    (uint8 pixels, digests, label indices, split indices into SPLITS).

    One dataset for all splits: its functions are traced once, not once per split. Pixels stay
    uint8 until inside the network: a quarter of the bytes through the input pipeline. Parsing
    runs in the loop's own thread: it is about 1% of the network's time here (stored pixels are
    a copy, not a decode), and on 2 cores parallel input threads only competed with the network
    (measured with `make bench`'s row 1 loop: 192 img/s with AUTOTUNE parallelism and prefetch,
    206 without, mean of 4 alternating rounds each).
    """
    files = [(path, index) for index, split in enumerate(SPLITS) for path in split_files(examples_dir, split)]
    paths = tf.constant([path for path, _ in files], tf.string)
    split_indices = tf.constant([index for _, index in files], tf.int64)
    return (
        tf.data.Dataset.from_tensor_slices((paths, split_indices))
        .flat_map(lambda path, split: tf.data.TFRecordDataset(path).map(lambda record: (record, split)))
        .map(lambda record, split: _pixels_digest_label_split(parse_processed(record, image_size), split))
        .batch(batch_size)
    )


def _pixels_digest_label_split(example: dict[str, tf.Tensor], split: tf.Tensor) -> tuple[tf.Tensor, ...]:
    return example["pixels"], example["digest"], example["label_index"], split


def inference_function(extractor, image_size: int):
    """The base over a batch of uint8 images, traced once for every batch size (a trace costs about
    as much as a hundred images' inference on a small machine)."""
    return tf.function(
        lambda pixels: extractor(tf.cast(pixels, tf.float32), training=False),
        input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.uint8)],
    )


class _StoreFiller:
    """Collects new vectors and adds them to the store in chunks of STORE_CHUNK_ROWS."""

    def __init__(self, store: FeatureStore, images: int):
        self._store, self._images = store, images
        self._digests: list[str] = []
        self._vectors: list[np.ndarray] = []
        self._pending: set[str] = set()
        self.added = 0

    def __contains__(self, digest: str) -> bool:
        return digest in self._store or digest in self._pending

    def add(self, digests: list[str], vectors: np.ndarray) -> None:
        self._digests += digests
        self._pending.update(digests)
        self._vectors.append(vectors)
        if len(self._digests) >= STORE_CHUNK_ROWS:
            self.flush()
            logger.info("extract_features: %d new images through the base network (the examples hold %d)",
                        self.added, self._images)

    def flush(self) -> None:
        if self._digests:
            self._store.add(self._digests, np.concatenate(self._vectors))
            self.added += len(self._digests)
            self._digests, self._vectors, self._pending = [], [], set()


def _extract(infer, store: FeatureStore, examples_dir: str, image_size: int, batch_size: int,
             features_dir: str) -> tuple[dict[str, int], int]:
    """Writes every split's feature records; returns (images per split, images the base ran on).

    One pass over the records runs the base on the images the store lacks; each split's records
    are then written in file order from the store.
    """
    digests: dict[str, list[str]] = {split: [] for split in SPLITS}
    label_indices: dict[str, list[int]] = {split: [] for split in SPLITS}
    preprocessed = examples_info.read_stats(examples_dir)["counts"]
    filler = _StoreFiller(store, sum(sum(per_label.values()) for per_label in preprocessed.values()))
    for pixels, batch_digests, batch_labels, batch_splits in _record_batches(examples_dir, image_size, batch_size):
        names = [digest.decode() for digest in batch_digests.numpy()]
        new = []
        for row, digest in enumerate(names):  # an image listed twice (two labels) runs once
            if digest not in filler and digest not in names[:row]:
                new.append(row)
        if new:
            subset = pixels if len(new) == len(names) else tf.gather(pixels, new)
            filler.add([names[row] for row in new], infer(subset).numpy())
        for name, label_index, split_index in zip(names, batch_labels.numpy(), batch_splits.numpy()):
            digests[SPLITS[split_index]].append(name)
            label_indices[SPLITS[split_index]].append(int(label_index))
    filler.flush()
    for split in SPLITS:
        output_path = os.path.join(features_dir, f"{split}.tfrecord")
        with storage.atomic_path(output_path) as tmp_path, TFRecordFileWriter(tmp_path) as writer:
            for digest, label_index in zip(digests[split], label_indices[split]):
                writer.write(serialize_features(store.get(digest), label_index))
    counts = {split: len(digests[split]) for split in SPLITS}
    logger.info("extract_features: %s; %d through the base network, %d from the feature store",
                ", ".join(f"{split} {count}" for split, count in counts.items()), filler.added,
                sum(counts.values()) - filler.added)
    return counts, filler.added


def write_features(extractor, examples_dir: str, features_dir: str, image_size: int, batch_size: int,
                   info: dict, store: FeatureStore | None = None) -> dict[str, int]:
    """Writes every split's feature vectors, the labels and features.json; returns counts per split.

    Args:
        store: vectors computed before, by image digest; only images missing there run through
            the base. None for a store that lives only as long as this call.
    """
    os.makedirs(features_dir, exist_ok=True)
    infer = inference_function(extractor, image_size)
    with tempfile.TemporaryDirectory() as scratch:
        store = store if store is not None else FeatureStore(scratch)
        counts, extracted = _extract(infer, store, examples_dir, image_size, batch_size, features_dir)
    labels = storage.read_lines(os.path.join(examples_dir, ingest_core.LABELS))
    storage.write_lines(os.path.join(features_dir, ingest_core.LABELS), labels)
    storage.write_json(os.path.join(features_dir, FEATURES_INFO),
                       {**info, "dim": int(extractor.output_shape[-1]), "counts": counts, "extracted": extracted,
                        "reused": sum(counts.values()) - extracted})
    return counts


def weights_digest(model) -> str:
    """A digest of a network's weights, in order: equal only for the same numbers."""
    hasher = hashlib.sha256()
    for weight in model.weights:
        hasher.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return hasher.hexdigest()


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
    check_requested_gpus("extract-features")
    resized_to = examples_info.image_size(examples_dir)
    if resized_to != spec.image_size:
        raise ValueError(f"examples were resized to {resized_to} but the base network takes {spec.image_size}")
    with tempfile.TemporaryDirectory(prefix="headstart-base-") as fetched:
        extractor = build_feature_extractor(spec.localized(fetched))
    os.makedirs(base_model_dir, exist_ok=True)
    base_model_path = os.path.join(base_model_dir, BASE_MODEL_FILE)
    with storage.atomic_path(base_model_path) as tmp_path:
        extractor.save(tmp_path)
    dim = int(extractor.output_shape[-1])
    storage.write_json(os.path.join(base_model_dir, BASE_NETWORK_INFO),
                       {**asdict(spec), "dim": dim, "parameters": int(extractor.count_params())})

    if store_dir and spec.weights == "none":
        # A random base is drawn afresh on every build: vectors of two draws must never mix.
        store_dir = f"{store_dir}-weights-{weights_digest(extractor)[:16]}"
    store = FeatureStore(store_dir, ignore_existing=not reuse_features) if store_dir else None
    counts = write_features(extractor, examples_dir, features_dir, spec.image_size, batch_size,
                            {"base_model": asdict(spec)}, store)
    extracted = storage.read_json(os.path.join(features_dir, FEATURES_INFO))["extracted"]
    return ExtractResult(dim, counts, base_model_path, extracted)
