"""Feature writing: a frozen base network runs once per image, never once per epoch.

Used by extract-features with the pretrained base and by transfer-lift with its random-weight
copy. Output directory layout (features):
    train.tfrecord, eval.tfrecord, test.tfrecord   feature vectors with label indices
    train.digests.txt, eval..., test...             each record's image digest, in the same order
    test.<view>.tfrecord                            with test-time augmentation: the test images'
                                                    other views, each file in test.tfrecord's order
Train holds every augmented view of each image (its records one after another, the digests file
naming each image once per view); eval and test hold the image itself.
    labels.txt                                      the label vocabulary
    features.json                                   base network, dim, counts per split, how many
                                                    images ran through the base (the rest came
                                                    from the feature store)
"""

import collections
import dataclasses
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from components.common.contract.artifact_files import FEATURE_DIGESTS_SUFFIX, FEATURES_INFO, LABELS
from components.common.contract.example_wire import TFRecordFileWriter
from components.common.contract.examples_info import ExampleStats, read_stats
from components.common.contract.record_parsing import parse_processed
from components.common.contract.records import SPLITS, serialize_features
from components.common.model.feature_store import FeatureStore
from components.common.storage import atomic_files

logger = logging.getLogger(__name__)

# Vectors per feature-store chunk: a few MB for typical feature sizes, large sequential writes.
STORE_CHUNK_ROWS = 1024
# Base network calls running at once, each on its own thread, each on an equal part of a batch.
# One call's intra-op threads leave cores idle between MobileNet's small layers; a second call
# fills them, and the loop parses the next batch meanwhile. extract-features also gives each call
# its own share of the cores (`call_threads.share_cores_between_calls`). Splitting the batch keeps
# the activations held at once those of one batch: two whole batches at once were no faster and
# held more. Two halves beat one call at about the same peak memory (docs/performance.md,
# "Feature extraction").
CALLS_IN_FLIGHT = 2


@dataclasses.dataclass(frozen=True)
class WrittenFeatures:
    """What `write_features` wrote: images per split, and how many images and vectors the base ran on."""

    counts: dict[str, int]
    extracted: int
    vectors_computed: int


def _record_batches(stats: ExampleStats, batch_size: int) -> tf.data.Dataset:
    """Every split's processed records, split after split in file order, in batches.

    Each batch is (uint8 pixels, digests, label indices, split indices into SPLITS).

    One dataset for all splits: its functions are traced once, not once per split. Pixels stay
    uint8 until inside the network: a quarter of the bytes through the input pipeline. Stored
    pixels are parsed in the loop's own thread while the network's calls run on theirs (parsing
    is a small part of the network's time). Compact examples' images are decoded on
    tf.data's threads, in order, a batch ahead of the network.
    """
    files = [(path, index) for index, split in enumerate(SPLITS) for path in stats.split_files(split)]
    paths = tf.constant([path for path, _ in files], tf.string)
    split_indices = tf.constant([index for _, index in files], tf.int64)
    records = (tf.data.Dataset.from_tensor_slices((paths, split_indices))
               .flat_map(lambda path, split: tf.data.TFRecordDataset(path).map(lambda record: (record, split))))

    def parsed(record, split):
        return _pixels_digest_label_split(parse_processed(record, stats.image_size), split)

    if not stats.compact:
        return records.map(parsed).batch(batch_size)
    return records.map(parsed, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(batch_size).prefetch(1)


def _pixels_digest_label_split(example: dict[str, tf.Tensor], split: tf.Tensor) -> tuple[tf.Tensor, ...]:
    return example["pixels"], example["digest"], example["label_index"], split


def inference_function(extractor, image_size: int):
    """The base over a batch of uint8 images, as a function traced once for every batch size.

    One trace for all batch sizes matters: a trace costs as much as the inference of many images.
    """
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
        self.images_added = 0  # images whose own vector (the identity view) was computed

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
            self.images_added += sum("#" not in key for key in self._digests)
            self._digests, self._vectors, self._pending = [], [], set()


class _Inference:
    """Runs the base on each batch in CALLS_IN_FLIGHT parts at once; adds the vectors to the filler in call order."""

    def __init__(self, infer, filler: _StoreFiller):
        self._infer, self._filler = infer, filler
        self._threads = ThreadPoolExecutor(CALLS_IN_FLIGHT, thread_name_prefix="extract")
        self._calls: collections.deque = collections.deque()
        self._queued: set[str] = set()  # keys of calls whose vectors are not in the filler yet

    def __contains__(self, key: str) -> bool:
        return key in self._queued or key in self._filler

    def __enter__(self):
        return self

    def __exit__(self, *failure) -> None:
        self._threads.shutdown(cancel_futures=True)

    def submit(self, keys: list[str], pixels: tf.Tensor, view: str) -> None:
        """Queues the base's calls on one view of `pixels`; `keys` name its vectors, row by row.

        Returns once the calls before these are done, while these run.
        """
        from components.common.images.views import view_of

        self._queued.update(keys)
        part = -(-len(keys) // CALLS_IN_FLIGHT)
        for start in range(0, len(keys), part):
            rows = pixels[start:start + part]
            self._calls.append((keys[start:start + part],
                                self._threads.submit(lambda rows=rows: self._infer(view_of(rows, view)).numpy())))
        while len(self._calls) > CALLS_IN_FLIGHT:
            self._collect_oldest()

    def finish(self) -> None:
        """Waits for every queued call and hands its vectors to the filler."""
        while self._calls:
            self._collect_oldest()

    def _collect_oldest(self) -> None:
        keys, call = self._calls.popleft()
        self._filler.add(keys, call.result())
        self._queued.difference_update(keys)


def store_key(digest: str, view: str) -> str:
    """The feature store's key of one view of an image: the image's own vector keeps the bare digest."""
    return digest if view == "identity" else f"{digest}#{view}"


def _views_of_split(split: str, train_views: tuple[str, ...], test_views: tuple[str, ...]) -> tuple[str, ...]:
    return {"train": train_views, "test": test_views}.get(split, ("identity",))


def _extract(infer, store: FeatureStore, stats: ExampleStats, batch_size: int, features_dir: str,
             train_views: tuple[str, ...], test_views: tuple[str, ...]) -> WrittenFeatures:
    """Writes every split's feature records; returns the images per split, and those the base ran on.

    One pass over the records runs the base on the views the store lacks; each split's records
    are then written from the store, train and eval in digest order, test in file order.
    """
    digests: dict[str, list[str]] = {split: [] for split in SPLITS}
    label_indices: dict[str, list[int]] = {split: [] for split in SPLITS}
    filler = _StoreFiller(store, sum(sum(per_label.values()) for per_label in stats.counts.values()))
    with _Inference(infer, filler) as inference:
        for pixels, batch_digests, batch_labels, batch_splits in _record_batches(stats, batch_size):
            names = [digest.decode() for digest in batch_digests.numpy()]
            splits = [SPLITS[index] for index in batch_splits.numpy()]
            for view in dict.fromkeys(train_views + test_views):
                keys = [store_key(name, view) for name in names]
                new = [row for row, key in enumerate(keys)  # an image listed twice (two labels) runs once
                       if view in _views_of_split(splits[row], train_views, test_views)
                       and key not in inference and key not in keys[:row]]
                if new:
                    subset = pixels if len(new) == len(names) else tf.gather(pixels, new)
                    inference.submit([keys[row] for row in new], subset, view)
            for name, label_index, split in zip(names, batch_labels.numpy(), splits):
                digests[split].append(name)
                label_indices[split].append(int(label_index))
        inference.finish()
    filler.flush()
    for split in SPLITS:
        rows = list(zip(digests[split], label_indices[split]))
        if split != "test":  # the test split keeps the examples' order, which evaluate's report follows
            # Head training reads through a shuffle buffer of bounded size. A folder tree's
            # examples come class after class; in digest order, a fixed pseudo-random one, the
            # classes are mixed through the file, so a small buffer shuffles well.
            rows.sort()
        record_views = train_views if split == "train" else ("identity",)
        _write_split(store, os.path.join(features_dir, f"{split}.tfrecord"), rows, record_views)
        atomic_files.write_lines(os.path.join(features_dir, f"{split}{FEATURE_DIGESTS_SUFFIX}"),
                                 [digest for digest, _ in rows for _ in record_views])
        if split == "test":
            for view in test_views[1:]:
                _write_split(store, os.path.join(features_dir, f"test.{view}.tfrecord"), rows, (view,))
    counts = {split: len(digests[split]) for split in SPLITS}
    logger.info("extract_features: %s; %d through the base network, %d from the feature store (%d vectors "
                "computed, views %s for train, %s for test)",
                ", ".join(f"{split} {count}" for split, count in counts.items()), filler.images_added,
                sum(counts.values()) - filler.images_added, filler.added, "+".join(train_views), "+".join(test_views))
    return WrittenFeatures(counts, filler.images_added, filler.added)


def _write_split(store: FeatureStore, path: str, rows: list[tuple[str, int]], views: tuple[str, ...]) -> None:
    """One feature file: for each (digest, label index), the vector of each view, one after another."""
    with atomic_files.atomic_path(path) as tmp_path, TFRecordFileWriter(tmp_path) as writer:
        for digest, label_index in rows:
            for view in views:
                writer.write(serialize_features(store.get(store_key(digest, view)), label_index))


def write_features(extractor, examples_dir: str, features_dir: str, batch_size: int,
                   info: dict, store: FeatureStore | None = None, train_views: tuple[str, ...] = ("identity",),
                   test_views: tuple[str, ...] = ("identity",)) -> WrittenFeatures:
    """Writes every split's feature vectors, the labels and features.json; returns what it wrote.

    Args:
        extractor: the feature extractor (see `base_network`): float32 images in [0, 255] to one
            feature vector each.
        examples_dir: preprocess's output: each split's processed records and the labels.
        features_dir: where the feature records, the labels and features.json are written.
        batch_size: images read at a time; the base runs on each batch in CALLS_IN_FLIGHT parts at once.
        info: what features.json records about the base; the vector size and the counts are added.
        store: vectors computed before, by image digest (and view); only views missing there run
            through the base. None for a store that lives only as long as this call.
        train_views: the views of each training image to write (`view_policy.VIEW_NAMES`).
        test_views: the views of each test image; beyond the image itself, each in its own file.
    """
    os.makedirs(features_dir, exist_ok=True)
    stats = read_stats(examples_dir)
    infer = inference_function(extractor, stats.image_size)
    with tempfile.TemporaryDirectory() as scratch:
        store = store if store is not None else FeatureStore(scratch)
        written = _extract(infer, store, stats, batch_size, features_dir, tuple(train_views), tuple(test_views))
    labels = atomic_files.read_lines(os.path.join(examples_dir, LABELS))
    atomic_files.write_lines(os.path.join(features_dir, LABELS), labels)
    atomic_files.write_json(os.path.join(features_dir, FEATURES_INFO), {
        **info, "dim": int(extractor.output_shape[-1]), "counts": written.counts, "extracted": written.extracted,
        "reused": sum(written.counts.values()) - written.extracted, "vectors_computed": written.vectors_computed,
        "train_views": list(train_views), "test_views": list(test_views)})
    return written
