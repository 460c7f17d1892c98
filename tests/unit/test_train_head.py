"""Head training: learns separable features, saves the head and its history, validates config."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components.common import storage
from components.common.artifact_files import FEATURES_INFO, HISTORY, LABELS
from components.common.head_config import HeadConfig
from components.common.head_training import TrainingStatistics
from components.common.records import serialize_features
from components.train_head import core


def write_features(directory, labels, per_class=30, dim=6, seed=0):
    """Features whose class is visible in one dimension, at a scale the head must standardize."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    counts = {}
    for split, count in (("train", per_class), ("eval", per_class // 3), ("test", per_class // 3)):
        with tf.io.TFRecordWriter(os.path.join(directory, f"{split}.tfrecord")) as writer:
            for index in range(count * len(labels)):
                label_index = index % len(labels)
                vector = rng.normal(size=dim) * 50
                vector[0] = 500.0 * label_index + rng.normal() * 40
                writer.write(serialize_features(vector, label_index))
        counts[split] = count * len(labels)
    storage.write_lines(os.path.join(directory, LABELS), labels)
    storage.write_json(os.path.join(directory, FEATURES_INFO), {"dim": dim, "counts": counts})


@pytest.mark.parametrize("labels, output_units", [(["cat", "dog"], 1), (["a", "b", "c"], 3)])
def test_head_learns_and_is_saved(tmp_path, labels, output_units):
    write_features(str(tmp_path / "features"), labels)

    result = core.run(features_dir=str(tmp_path / "features"), head_model_dir=str(tmp_path / "head"),
                      config=HeadConfig(hidden_units=(8,), epochs=40, patience=40, learning_rate=0.01))

    import keras

    head = keras.saving.load_model(result.head_model_path)
    assert head.output_shape == (None, output_units)
    # The weights kept are those of the best eval epoch.
    assert result.history["val_accuracy"][result.best_epoch - 1] >= 0.9
    history = json.loads((tmp_path / "head" / HISTORY).read_text())
    assert history["epochs_run"] == len(history["history"]["loss"]) == result.epochs_run
    assert 1 <= history["best_epoch"] <= result.epochs_run


def test_training_is_seeded(tmp_path):
    write_features(str(tmp_path / "features"), ["cat", "dog"])
    config = HeadConfig(epochs=3)
    first = core.run(features_dir=str(tmp_path / "features"), head_model_dir=str(tmp_path / "h1"), config=config)
    second = core.run(features_dir=str(tmp_path / "features"), head_model_dir=str(tmp_path / "h2"), config=config)
    assert first.history["loss"] == pytest.approx(second.history["loss"], rel=1e-5)


def test_early_stopping_stops_before_the_last_epoch(tmp_path):
    write_features(str(tmp_path / "features"), ["cat", "dog"])
    result = core.run(features_dir=str(tmp_path / "features"), head_model_dir=str(tmp_path / "head"),
                      config=HeadConfig(epochs=300, patience=2, learning_rate=0.05))
    assert result.epochs_run < 300


@pytest.mark.parametrize(
    "kwargs, name",
    [({"epochs": 0}, "epochs"), ({"epochs": -3}, "epochs"), ({"dropout": 1.0}, "dropout"),
     ({"hidden_units": (0,)}, "hidden_units"), ({"learning_rate": 0}, "learning_rate"),
     ({"batch_size": 0}, "batch_size")],
)
def test_bad_config_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        HeadConfig(**kwargs)


def test_class_weights_balance_an_imbalanced_training_split(tmp_path):

    statistics = TrainingStatistics(np.zeros(2), np.ones(2), np.array([90, 10]))
    weights = statistics.balanced_class_weights()
    assert weights[0] * 90 == pytest.approx(weights[1] * 10)  # each class weighs the same in total
    assert weights[1] == pytest.approx(100 / (2 * 10))


def test_head_options_l2_label_smoothing_and_class_weights_train(tmp_path):
    write_features(str(tmp_path / "features"), ["a", "b", "c"])
    config = HeadConfig(hidden_units=(8,), epochs=30, patience=30, learning_rate=0.01, l2=1e-3,
                             label_smoothing=0.1, class_weights=True)

    result = core.run(features_dir=str(tmp_path / "features"), head_model_dir=str(tmp_path / "head"), config=config)

    import keras

    head = keras.saving.load_model(result.head_model_path)
    assert head.get_layer("hidden_0").kernel_regularizer is not None
    assert result.history["val_accuracy"][result.best_epoch - 1] >= 0.9
    history = json.loads((tmp_path / "head" / HISTORY).read_text())
    assert history["config"]["label_smoothing"] == 0.1 and history["config"]["class_weights"] is True


@pytest.mark.parametrize("kwargs, name", [({"l2": -1.0}, "l2"), ({"label_smoothing": 1.0}, "label_smoothing")])
def test_bad_head_options_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        HeadConfig(**kwargs)
