"""Head training: an MLP head on feature vectors, early stopping on the eval split.

Used by train-head on the pretrained base's features and by transfer-lift on its random-weight
copy's. Output directory layout (head model):
    head.keras      the trained head: features (N, dim) -> probabilities
    history.json    loss and metrics per epoch, and the epoch kept
"""

import logging
import os
import time
from dataclasses import asdict, dataclass, field

import keras
import numpy as np
import tensorflow as tf

from components.common.config.head_config import HeadConfig
from components.common.contract.artifact_files import FEATURES_INFO, HEAD_MODEL_FILE, HISTORY, LABELS
from components.common.contract.record_parsing import parse_feature_batch
from components.common.runtime.training_strategy import choose_strategy
from components.common.storage import atomic_files

logger = logging.getLogger(__name__)

# A split's feature records up to this size are kept in memory after the first epoch; larger
# ones are read from disk every epoch, so memory stays bounded however many images there are.
IN_MEMORY_RECORDS_BYTES = 128 * 1024 * 1024
# The shuffle buffer holds about this many bytes of records (from 256 to 10,000 records): with
# large vectors a fixed count would grow the step's memory with the vector size. Extraction
# writes the train split in digest order, already mixed, so a buffer this size shuffles well.
SHUFFLE_BUFFER_BYTES = 64 * 1024 * 1024
# Training steps per call into TensorFlow: on small heads Python's per-step work dominates.
STEPS_PER_EXECUTION = 16


@dataclass(frozen=True)
class TrainResult:
    """What training produced."""

    head_model_path: str
    epochs_run: int
    best_epoch: int
    history: dict[str, list[float]] = field(repr=False)
    epoch_seconds: list[float] = field(default_factory=list, repr=False)
    config: HeadConfig | None = field(default=None, repr=False)  # what it trained with, searched values included


@dataclass(frozen=True)
class TrainingStatistics:
    """What one pass over the training features tells: per-feature scale, images per class."""

    mean: np.ndarray
    variance: np.ndarray
    class_counts: np.ndarray

    def balanced_class_weights(self) -> dict[int, float]:
        """Per-class weights, total / (classes x count): every class weighs the same in the loss, whatever its size."""
        present = np.maximum(self.class_counts, 1)
        weights = self.class_counts.sum() / (len(self.class_counts) * present)
        return {index: float(weight) for index, weight in enumerate(weights)}


def training_statistics(features: tf.data.Dataset, num_classes: int) -> TrainingStatistics:
    """Per-feature mean and variance and the class counts of the training features, streaming.

    The variance is floored at its average over the features. Pooled activations of a frozen
    base differ in scale per channel, and a head on raw features trains slowly and unevenly; but
    dividing every feature by its own spread would blow up the near-constant ones (a flattened
    feature map has thousands) into noise that swamps the signal on small data.
    """
    count, total, total_squares = 0, 0.0, 0.0
    class_counts = np.zeros(num_classes, dtype=np.int64)
    for vectors, label_indices in features:
        batch = vectors.numpy().astype(np.float64)
        count += len(batch)
        total = total + batch.sum(axis=0)
        total_squares = total_squares + (batch**2).sum(axis=0)
        class_counts += np.bincount(label_indices.numpy(), minlength=num_classes)
    mean = total / count
    variance = np.maximum(total_squares / count - mean**2, 0.0)
    return TrainingStatistics(mean.astype(np.float32), np.maximum(variance, variance.mean()).astype(np.float32),
                              class_counts)


def build_head(dim: int, num_classes: int, config: HeadConfig, statistics: TrainingStatistics) -> keras.Model:
    """An MLP head: sigmoid with one output for two classes, softmax otherwise.

    The first layer standardizes the features with the training split's statistics.
    """
    features = keras.Input(shape=(dim,), name="features")
    standardize = keras.layers.Normalization(mean=statistics.mean, variance=statistics.variance, name="standardize")
    x = standardize(features)
    regularizer = keras.regularizers.L2(config.l2) if config.l2 > 0 else None
    for index, units in enumerate(config.hidden_units):
        x = keras.layers.Dropout(config.dropout, seed=config.seed + index)(x)
        x = keras.layers.Dense(units, activation="relu", kernel_regularizer=regularizer, name=f"hidden_{index}")(x)
    x = keras.layers.Dropout(config.dropout, seed=config.seed + len(config.hidden_units))(x)
    # float32 outputs even under mixed precision: probabilities must be exact enough to bless.
    if num_classes == 2:
        outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32", kernel_regularizer=regularizer,
                                     name="probability")(x)
    else:
        outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                     kernel_regularizer=regularizer, name="probabilities")(x)
    return keras.Model(features, outputs, name="head")


def loss_and_metric(num_classes: int, label_smoothing: float = 0.0):
    """The head's loss and accuracy metric, for targets as `target_encoding` makes them."""
    if num_classes == 2:
        return (keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
                keras.metrics.BinaryAccuracy(name="accuracy"))
    return (keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
            keras.metrics.CategoricalAccuracy(name="accuracy"))


def target_encoding(num_classes: int):
    """Label indices as the loss wants them: a float for the sigmoid, one-hot for the softmax.

    Works on one example or on a batch (the last axis is the one added or one-hot encoded).
    """
    if num_classes == 2:
        return lambda vectors, label_index: (vectors, tf.expand_dims(tf.cast(label_index, tf.float32), -1))
    return lambda vectors, label_index: (vectors, tf.one_hot(label_index, num_classes))


def feature_batches(features_dir: str, split: str, dim: int, batch_size: int, shuffle_seed: int | None = None,
                     ) -> tf.data.Dataset:
    """A split's (features, label_index) batches; shuffled record by record when a seed is given."""
    path = os.path.join(features_dir, f"{split}.tfrecord")
    dataset = tf.data.TFRecordDataset(path)
    if os.path.getsize(path) <= IN_MEMORY_RECORDS_BYTES:
        dataset = dataset.cache()  # read from disk once, not once per epoch
    if shuffle_seed is not None:
        records = max(256, min(10_000, SHUFFLE_BUFFER_BYTES // (4 * dim)))
        dataset = dataset.shuffle(records, seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).map(lambda records: parse_feature_batch(records, dim),
                                         num_parallel_calls=tf.data.AUTOTUNE)


def feature_dataset(features_dir: str, split: str, dim: int, num_classes: int, config: HeadConfig,
                    shuffle: bool) -> tf.data.Dataset:
    """A split's batches as the head's `fit` takes them: (features, targets), shuffled for training."""
    batches = feature_batches(features_dir, split, dim, config.batch_size, config.seed if shuffle else None)
    return batches.map(target_encoding(num_classes)).prefetch(tf.data.AUTOTUNE)


class _ProgressLog(keras.callbacks.Callback):
    """About ten log lines over the whole training, for the command line's progress view."""

    def __init__(self, epochs: int):
        super().__init__()
        self._every = max(1, epochs // 10)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self._every:
            return
        shown = ", ".join(f"{key} {value:.4f}" for key, value in sorted((logs or {}).items()))
        logger.info("train_head: epoch %d: %s", epoch + 1, shown)


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of each epoch, validation included; the first one includes tracing."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        """Starts the epoch's clock."""
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        """Records the epoch's seconds."""
        self.seconds.append(time.perf_counter() - self._start)


def cross_entropy_metric(num_classes: int) -> keras.metrics.Metric:
    """The head's cross-entropy as a metric: unlike the loss, without L2 penalty or label smoothing."""
    if num_classes == 2:
        return keras.metrics.BinaryCrossentropy(name="cross_entropy")
    return keras.metrics.CategoricalCrossentropy(name="cross_entropy")


def compiled_head(strategy, dim: int, num_classes: int, config: HeadConfig, statistics: TrainingStatistics,
                  with_cross_entropy: bool = False) -> keras.Model:
    """The head, built and compiled for training under `strategy`, with its accuracy (and cross-entropy) metric.

    The metrics are made inside the strategy's scope, as their variables must be.
    """
    with strategy.scope():
        head = build_head(dim, num_classes, config, statistics)
        loss, metric = loss_and_metric(num_classes, config.label_smoothing)
        metrics = [metric, cross_entropy_metric(num_classes)] if with_cross_entropy else [metric]
        head.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss, metrics=metrics,
                     steps_per_execution=STEPS_PER_EXECUTION)
    return head


def features_shape(features_dir: str) -> tuple[int, dict[str, int], list[str]]:
    """The features' vector size, images per split and class names."""
    info = atomic_files.read_json(os.path.join(features_dir, FEATURES_INFO))
    return info["dim"], info["counts"], atomic_files.read_lines(os.path.join(features_dir, LABELS))


def train(*, features_dir: str, head_model_dir: str, config: HeadConfig,
          more_history: dict | None = None) -> TrainResult:
    """Trains the head on the train split's features, early-stopping on the eval split.

    `more_history` goes into history.json beside the training's own entries (the head search's).
    """
    dim, counts, labels = features_shape(features_dir)
    keras.utils.set_random_seed(config.seed)
    # Seeded is not enough for a rerun to reproduce a model: some kernels are not deterministic.
    tf.config.experimental.enable_op_determinism()
    num_classes = len(labels)
    strategy = choose_strategy()
    statistics = training_statistics(feature_batches(features_dir, "train", dim, 1024), num_classes)
    class_weight = statistics.balanced_class_weights() if config.class_weights else None
    if class_weight:
        logger.info("train_head: class weights %s", {labels[i]: round(w, 3) for i, w in class_weight.items()})
    train = feature_dataset(features_dir, "train", dim, num_classes, config, shuffle=True)
    head = compiled_head(strategy, dim, num_classes, config, statistics)
    has_eval = counts.get("eval", 0) > 0
    monitor = "val_loss" if has_eval else "loss"
    if not has_eval:
        logger.info("train_head: eval split is empty, early stopping watches the training loss")
    timer = EpochTimer()
    evaluation = feature_dataset(features_dir, "eval", dim, num_classes, config, shuffle=False) if has_eval else None
    history = head.fit(
        train,
        validation_data=evaluation,
        epochs=config.epochs,
        class_weight=class_weight,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(monitor=monitor, patience=config.patience, restore_best_weights=True),
            _ProgressLog(config.epochs),
            timer,
        ],
    )
    losses = history.history[monitor]
    best_epoch = int(min(range(len(losses)), key=losses.__getitem__)) + 1
    os.makedirs(head_model_dir, exist_ok=True)
    head_model_path = os.path.join(head_model_dir, HEAD_MODEL_FILE)
    with atomic_files.atomic_path(head_model_path) as tmp_path:
        head.save(tmp_path)
    history_values = {key: [float(v) for v in values] for key, values in history.history.items()}
    atomic_files.write_json(
        os.path.join(head_model_dir, HISTORY),
        {"history": history_values, "epochs_run": len(losses), "best_epoch": best_epoch, "monitor": monitor,
         "epoch_seconds": [round(seconds, 4) for seconds in timer.seconds], "config": asdict(config),
         **(more_history or {})},
    )
    logger.info("train_head: %d epochs, best at epoch %d (%s %.4f)", len(losses), best_epoch, monitor, min(losses))
    return TrainResult(head_model_path, len(losses), best_epoch, history_values, timer.seconds, config)


def recorded_config(head_model_dir: str) -> HeadConfig:
    """The settings a head was trained with, as `train` recorded them beside it (searched values included)."""
    recorded = atomic_files.read_json(os.path.join(head_model_dir, HISTORY))["config"]
    return HeadConfig(**{**recorded, "hidden_units": tuple(recorded["hidden_units"])})
