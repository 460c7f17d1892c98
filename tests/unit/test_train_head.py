"""Head training: learns separable features, saves the head and its history, validates config."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components.common.config.head_config import HeadConfig
from components.common.contract.artifact_files import FEATURES_INFO, HISTORY, LABELS
from components.common.contract.records import serialize_features
from components.common.model.head_training import TrainingStatistics
from components.common.storage import atomic_files
from components.evaluate.report import head_search_section
from components.train_head import core, search


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
    atomic_files.write_lines(os.path.join(directory, LABELS), labels)
    atomic_files.write_json(os.path.join(directory, FEATURES_INFO), {"dim": dim, "counts": counts})


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


def test_head_search_beats_a_poor_configured_head_and_trains_with_what_it_chose(tmp_path):
    write_features(str(tmp_path / "features"), ["cat", "dog"])
    # A learning rate this small leaves the head near its initial loss after 6 epochs.
    poor = HeadConfig(hidden_units=(), learning_rate=1e-5, epochs=6, patience=6, tune_seconds=12)

    result = core.run(features_dir=str(tmp_path / "features"), head_model_dir=str(tmp_path / "head"), config=poor)

    history = json.loads((tmp_path / "head" / HISTORY).read_text())
    tuning = history["tuning"]
    configured = next(row for row in tuning["trials"] if row["trial"] == 0)
    assert configured["learning_rate"] == 1e-5 and configured["hidden_units"] == []
    assert tuning["candidates"] in search.CANDIDATE_COUNTS and tuning["seconds"] <= 12 + 5
    top = max(row["rung"] for row in tuning["trials"])
    best = min((row for row in tuning["trials"] if row["rung"] == top and row["eval_cross_entropy"] is not None),
               key=lambda row: row["eval_cross_entropy"])
    assert {name: best[name] for name in search.SEARCH_SPACE} == tuning["chosen"] != {
        name: configured[name] for name in search.SEARCH_SPACE}
    assert best["eval_cross_entropy"] < configured["eval_cross_entropy"]
    # The head that was saved trained with the chosen values, not the configured ones.
    assert {name: history["config"][name] for name in search.SEARCH_SPACE} == tuning["chosen"]
    assert max(result.history["val_accuracy"]) >= configured["eval_accuracy"]
    section = head_search_section(tuning)
    assert "Head search" in section and section.count("<tr>") == len(tuning["trials"]) + 1


def test_head_search_out_of_time_trains_the_configured_head(tmp_path):
    write_features(str(tmp_path / "features"), ["cat", "dog"])
    config = HeadConfig(epochs=2, tune_seconds=1)  # the probe alone takes longer than a second

    core.run(features_dir=str(tmp_path / "features"), head_model_dir=str(tmp_path / "head"), config=config)

    history = json.loads((tmp_path / "head" / HISTORY).read_text())
    assert history["tuning"]["stopped"].startswith("the budget ran out in rung 1")
    assert history["tuning"]["chosen"] == {"hidden_units": [128], "dropout": 0.2, "l2": 0.0, "learning_rate": 1e-3}
    assert history["config"]["hidden_units"] == [128]


def test_successive_halving_rungs_reach_the_configured_epochs_and_fit_the_estimate():
    assert search.rung_epochs(20, 27) == [2, 7, 20]
    assert search.rung_epochs(20, 9) == [7, 20]
    assert search.rung_epochs(20, 3) == [20]
    # 27 new heads and 2 epochs each, then 9 heads 5 epochs more, then 3 heads 13 more.
    assert search.estimated_seconds(27, 20, 1.0, 0.1) == pytest.approx(27 * 1.2 + 9 * 0.5 + 3 * 1.3)
    values = search.candidate_values(HeadConfig(), 9)
    assert values[0] == {"hidden_units": (128,), "dropout": 0.2, "l2": 0.0, "learning_rate": 1e-3}
    assert len({tuple(sorted(v.items())) for v in values}) == 9  # distinct
    assert values == search.candidate_values(HeadConfig(), 9)  # seeded


def test_tune_seconds_must_not_be_negative():
    with pytest.raises(ValueError, match="tune_seconds"):
        HeadConfig(tune_seconds=-1)
