"""Train head core: an MLP head on cached features, early stopping on the eval split.

Output directory layout (head model):
    head.keras      the trained head: features (N, dim) -> probabilities
    history.json    loss and metrics per epoch, and the epoch kept
"""

import logging
import os
from dataclasses import asdict, dataclass, field

import keras
import numpy as np
import tensorflow as tf

from components.common import storage
from components.common.records import parse_features
from components.extract_features.core import FEATURES_INFO
from components.ingest import core as ingest_core
from components.train_head.devices import choose_strategy

logger = logging.getLogger(__name__)

HEAD_MODEL_FILE = "head.keras"
HISTORY = "history.json"


@dataclass(frozen=True)
class HeadConfig:
    """How the head is built and trained.

    Attributes:
        hidden_units: sizes of the hidden Dense layers; empty for a logistic/softmax head.
        dropout: dropout rate before each Dense layer.
        learning_rate: Adam's learning rate.
        epochs: the most epochs to train.
        batch_size: feature vectors per step.
        patience: epochs without eval-loss improvement before stopping.
        seed: seeds weights, dropout and shuffling.
    """

    hidden_units: tuple[int, ...] = (128,)
    dropout: float = 0.2
    learning_rate: float = 1e-3
    epochs: int = 20
    batch_size: int = 32
    patience: int = 5
    seed: int = 42

    def __post_init__(self):
        if any(units < 1 for units in self.hidden_units):
            raise ValueError(f"hidden_units must be positive, got {list(self.hidden_units)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.patience < 0:
            raise ValueError(f"patience must be non-negative, got {self.patience}")


@dataclass(frozen=True)
class TrainResult:
    """What training produced."""

    head_model_path: str
    epochs_run: int
    best_epoch: int
    history: dict[str, list[float]] = field(repr=False)


def standardization_statistics(train_features: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance of the training features, in one streaming pass.

    The variance is floored at its average over the features. Pooled activations of a frozen
    base differ in scale per channel, and a head on raw features trains slowly and unevenly; but
    dividing every feature by its own spread would blow up the near-constant ones (a flattened
    feature map has thousands) into noise that swamps the signal on small data.
    """
    count, total, total_squares = 0, 0.0, 0.0
    for vectors, _ in train_features:
        batch = vectors.numpy().astype(np.float64)
        count += len(batch)
        total = total + batch.sum(axis=0)
        total_squares = total_squares + (batch**2).sum(axis=0)
    mean = total / count
    variance = np.maximum(total_squares / count - mean**2, 0.0)
    return mean.astype(np.float32), np.maximum(variance, variance.mean()).astype(np.float32)


def build_head(dim: int, num_classes: int, config: HeadConfig, train_features: tf.data.Dataset) -> keras.Model:
    """An MLP head: sigmoid with one output for two classes, softmax otherwise.

    The first layer standardizes the features with the training split's statistics.
    """
    features = keras.Input(shape=(dim,), name="features")
    mean, variance = standardization_statistics(train_features)
    standardize = keras.layers.Normalization(mean=mean, variance=variance, name="standardize")
    x = standardize(features)
    for index, units in enumerate(config.hidden_units):
        x = keras.layers.Dropout(config.dropout, seed=config.seed + index)(x)
        x = keras.layers.Dense(units, activation="relu", name=f"hidden_{index}")(x)
    x = keras.layers.Dropout(config.dropout, seed=config.seed + len(config.hidden_units))(x)
    if num_classes == 2:
        # float32 outputs even under mixed precision: probabilities must be exact enough to bless.
        outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)
    else:
        outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(features, outputs, name="head")


def _dataset(features_dir: str, split: str, dim: int, config: HeadConfig, shuffle: bool) -> tf.data.Dataset:
    dataset = tf.data.TFRecordDataset(os.path.join(features_dir, f"{split}.tfrecord"))
    dataset = dataset.map(lambda record: parse_features(record, dim), num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle:
        # Feature vectors are small; a buffer of 10,000 shuffles thousands of images fully.
        dataset = dataset.shuffle(10_000, seed=config.seed, reshuffle_each_iteration=True)
    return dataset.batch(config.batch_size).prefetch(tf.data.AUTOTUNE)


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


def run(*, features_dir: str, head_model_dir: str, config: HeadConfig) -> TrainResult:
    """Trains the head on the train split's features, early-stopping on the eval split."""
    info = storage.read_json(os.path.join(features_dir, FEATURES_INFO))
    labels = storage.read_lines(os.path.join(features_dir, ingest_core.LABELS))
    dim, counts = info["dim"], info["counts"]
    keras.utils.set_random_seed(config.seed)
    # Seeded is not enough for a rerun to reproduce a model: some kernels are not deterministic.
    tf.config.experimental.enable_op_determinism()
    binary = len(labels) == 2
    strategy = choose_strategy()
    train = _dataset(features_dir, "train", dim, config, shuffle=True)
    with strategy.scope():
        head = build_head(dim, len(labels), config, train)
        metric = (keras.metrics.BinaryAccuracy(name="accuracy") if binary
                  else keras.metrics.SparseCategoricalAccuracy(name="accuracy"))
        head.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
            metrics=[metric],
        )
    has_eval = counts.get("eval", 0) > 0
    monitor = "val_loss" if has_eval else "loss"
    if not has_eval:
        logger.info("train_head: eval split is empty, early stopping watches the training loss")
    history = head.fit(
        train,
        validation_data=_dataset(features_dir, "eval", dim, config, shuffle=False) if has_eval else None,
        epochs=config.epochs,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(monitor=monitor, patience=config.patience, restore_best_weights=True),
            _ProgressLog(config.epochs),
        ],
    )
    losses = history.history[monitor]
    best_epoch = int(min(range(len(losses)), key=losses.__getitem__)) + 1
    os.makedirs(head_model_dir, exist_ok=True)
    head_model_path = os.path.join(head_model_dir, HEAD_MODEL_FILE)
    with storage.atomic_path(head_model_path) as tmp_path:
        head.save(tmp_path)
    history_values = {key: [float(v) for v in values] for key, values in history.history.items()}
    storage.write_json(
        os.path.join(head_model_dir, HISTORY),
        {"history": history_values, "epochs_run": len(losses), "best_epoch": best_epoch, "monitor": monitor,
         "config": asdict(config)},
    )
    logger.info("train_head: %d epochs, best at epoch %d (%s %.4f)", len(losses), best_epoch, monitor, min(losses))
    return TrainResult(head_model_path, len(losses), best_epoch, history_values)
