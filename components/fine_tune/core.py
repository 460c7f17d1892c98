"""Fine-tune core: unfreeze the top of the base and train base and head together, gently.

Phase one (train_head) trained the head on frozen features. Phase two unfreezes the last
`unfreeze_fraction` of the base's weighted layers (BatchNormalization layers stay frozen and in
inference mode: their statistics from pretraining are worth more than those of a few small
batches) and trains end to end on images with light augmentation (horizontal flip, a small
random crop by zoom) at a low learning rate, early-stopping on the eval split.

It costs a pass through the base per image per epoch, which the frozen recipe avoids: off by
default on CPU, on when a GPU is found, unless the mode says otherwise.

Output directories: the (fine-tuned, or when skipped unchanged) base network and head, in the
same layouts as extract_features and train_head write them, plus `fine_tune.json`.
"""

import logging
import os
from dataclasses import asdict

import keras
import numpy as np
import tensorflow as tf

from components.common.config.requested_gpus import check_requested_gpus
from components.common.contract import examples_info
from components.common.contract.artifact_files import BASE_MODEL_FILE, FINE_TUNE_INFO, HEAD_MODEL_FILE, HISTORY, LABELS
from components.common.contract.example_batches import image_batches
from components.common.model import base_network
from components.common.model.head_training import loss_and_metric, target_encoding
from components.common.model.modeling import class_probabilities
from components.common.storage import atomic_files
from components.fine_tune.config import (
    NO_GPU_REASON,
    FineTuneConfig,
    FineTuneResult,
    copy_unchanged,
    pass_through,
)

logger = logging.getLogger(__name__)


def _weighted_leaf_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers that hold weights, nested models flattened, from input to output."""
    leaves = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            leaves.extend(_weighted_leaf_layers(layer))
        elif layer.weights:
            leaves.append(layer)
    return leaves


def unfreeze_top(base: keras.Model, fraction: float) -> int:
    """Makes the top `fraction` of the base's weighted layers trainable, BatchNorm excepted.

    Returns:
        How many layers were unfrozen.
    """
    base.trainable = True
    leaves = _weighted_leaf_layers(base)
    cutoff = len(leaves) - max(1, round(fraction * len(leaves)))
    unfrozen = 0
    for index, layer in enumerate(leaves):
        layer.trainable = index >= cutoff and not isinstance(layer, keras.layers.BatchNormalization)
        unfrozen += layer.trainable
    return unfrozen


def _training_pairs(examples_dir, split, image_size, batch_size, num_classes, shuffle_seed=None):
    dataset = image_batches(examples_dir, split, image_size, batch_size).unbatch()
    if shuffle_seed is not None:
        dataset = dataset.shuffle(2048, seed=shuffle_seed)
    return dataset.map(target_encoding(num_classes)).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _accuracy(base, head, examples_dir, split, image_size, batch_size) -> float | None:
    correct = total = 0
    for images, labels in image_batches(examples_dir, split, image_size, batch_size):
        predicted = np.argmax(class_probabilities(head(base(images, training=False), training=False)), axis=1)
        correct += int((predicted == labels.numpy()).sum())
        total += len(predicted)
    return correct / total if total else None


def run(*, examples_dir: str, base_model_path: str, head_model_path: str, base_output_dir: str,
        head_output_dir: str, config: FineTuneConfig, trust_base_model: bool = False) -> FineTuneResult:
    """Runs phase two when enabled; otherwise passes the phase-one models through unchanged.

    `trust_base_model`, the run's own trust in its base, loads the saved base outside Keras safe mode.
    """
    check_requested_gpus("fine-tune")
    reason = config.skip_reason()
    if reason is None and config.fine_tune_mode == "auto" and not tf.config.list_physical_devices("GPU"):
        reason = NO_GPU_REASON  # device files, but none TensorFlow can use
    if reason is not None:
        return pass_through(base_model_path, head_model_path, base_output_dir, head_output_dir, reason)
    copy_unchanged(base_model_path, head_model_path, base_output_dir, head_output_dir)

    keras.utils.set_random_seed(config.seed)
    image_size = examples_info.read_stats(examples_dir).image_size
    num_classes = len(atomic_files.read_lines(os.path.join(examples_dir, LABELS)))
    base = base_network.load_saved_model(base_model_path, trust_base_model)
    head = keras.saving.load_model(head_model_path, compile=False, safe_mode=True)
    before = _accuracy(base, head, examples_dir, "eval", image_size, config.batch_size)
    unfrozen = unfreeze_top(base, config.fine_tune_fraction)

    images = keras.Input(shape=(image_size, image_size, 3), name="image")
    augmented = keras.layers.RandomFlip("horizontal", seed=config.seed)(images)
    augmented = keras.layers.RandomZoom((-0.1, 0.0), seed=config.seed)(augmented)  # zoom in: a small crop
    # training=False keeps every BatchNormalization in inference mode, trainable or not.
    outputs = head(base(augmented, training=False))
    model = keras.Model(images, outputs)
    loss, metric = loss_and_metric(num_classes)
    model.compile(optimizer=keras.optimizers.Adam(config.fine_tune_learning_rate), loss=loss, metrics=[metric])
    has_eval = before is not None
    logger.info("fine_tune: %d layers of the base unfrozen; training end to end at learning rate %g",
                unfrozen, config.fine_tune_learning_rate)
    history = model.fit(
        _training_pairs(examples_dir, "train", image_size, config.batch_size, num_classes, config.seed),
        validation_data=(_training_pairs(examples_dir, "eval", image_size, config.batch_size, num_classes)
                         if has_eval else None),
        epochs=config.fine_tune_epochs, verbose=0,
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss" if has_eval else "loss",
                                                 patience=config.fine_tune_patience, restore_best_weights=True)],
    )
    after = _accuracy(base, head, examples_dir, "eval", image_size, config.batch_size)
    reason = f"{unfrozen} layers unfrozen, {len(history.history['loss'])} epochs"
    if before is not None and after < before:
        # Phase one's model scores better on eval: it stands (copied to the outputs above).
        reason += f"; kept the frozen-base model: its eval accuracy {before:.4f} beats the fine-tuned {after:.4f}"
        kept = "frozen"
    else:
        base.trainable = False
        with atomic_files.atomic_path(os.path.join(base_output_dir, BASE_MODEL_FILE)) as tmp_path:
            base.save(tmp_path)
        with atomic_files.atomic_path(os.path.join(head_output_dir, HEAD_MODEL_FILE)) as tmp_path:
            head.save(tmp_path)
        kept = "fine-tuned"
    phase_one = atomic_files.read_json(os.path.join(head_output_dir, HISTORY))
    phase_one["fine_tune_history"] = {key: [float(v) for v in values] for key, values in history.history.items()}
    atomic_files.write_json(os.path.join(head_output_dir, HISTORY), phase_one)
    result = FineTuneResult(True, reason, before, after, kept)
    atomic_files.write_json(os.path.join(head_output_dir, FINE_TUNE_INFO), asdict(result))
    if before is not None:
        logger.info("fine_tune: eval accuracy %.4f before, %.4f after", before, after)
    return result
