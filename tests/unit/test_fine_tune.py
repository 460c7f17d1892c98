"""Fine-tuning: off on CPU unless asked; when on, the top of the base moves and BatchNorm does not."""

import json

import keras
import numpy as np
import pytest

from components.common.contract.artifact_files import BASE_MODEL_FILE, HEAD_MODEL_FILE, HISTORY
from components.fine_tune import core


def run(trained, tmp_path, mode, **kwargs):
    return core.run(
        examples_dir=trained["examples_dir"], base_model_path=trained["base_model_path"],
        head_model_path=trained["head_model_path"], base_output_dir=str(tmp_path / "base"),
        head_output_dir=str(tmp_path / "head"), config=core.FineTuneConfig(fine_tune_mode=mode, **kwargs),
    )


def kernels(path):
    model = keras.saving.load_model(path)
    return [layer.get_weights()[0] for layer in core._weighted_leaf_layers(model)]


@pytest.mark.parametrize("mode", ["off", "auto"])  # auto on this CPU-only machine: off
def test_skipped_phase_passes_the_models_through_unchanged(trained, tmp_path, mode):
    result = run(trained, tmp_path, mode)

    assert not result.ran and ("off" in result.reason or "no GPU" in result.reason)
    for before, after in zip(kernels(trained["base_model_path"]), kernels(str(tmp_path / "base" / BASE_MODEL_FILE))):
        np.testing.assert_array_equal(before, after)
    assert (tmp_path / "head" / HEAD_MODEL_FILE).exists() and (tmp_path / "head" / core.FINE_TUNE_INFO).exists()


def test_fine_tuning_moves_the_unfrozen_top_of_the_base(trained, tmp_path):
    result = run(trained, tmp_path, "on", fine_tune_epochs=2, fine_tune_learning_rate=1e-3, fine_tune_patience=5)

    assert result.ran and 0 <= result.eval_accuracy_after <= 1
    before = kernels(trained["base_model_path"])
    after = kernels(str(tmp_path / "base" / BASE_MODEL_FILE))
    assert not np.allclose(before[-1], after[-1])  # the top layer was trained
    history = json.loads((tmp_path / "head" / HISTORY).read_text())
    assert "fine_tune_history" in history and "loss" in history["history"]


def test_unfreeze_top_keeps_batch_normalization_frozen():
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for index in range(5):
        x = keras.layers.Conv2D(2, 3, padding="same", name=f"conv_{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn_{index}")(x)
    base = keras.Model(inputs, x)
    base.trainable = False

    unfrozen = core.unfreeze_top(base, 0.4)  # the top 4 of 10 weighted layers: conv_3, bn_3, conv_4, bn_4

    assert unfrozen == 2
    assert [layer.name for layer in base.layers if layer.weights and layer.trainable] == ["conv_3", "conv_4"]


@pytest.mark.parametrize("kwargs, name", [({"fine_tune_mode": "maybe"}, "fine_tune_mode"),
                                          ({"fine_tune_fraction": 0}, "fine_tune_fraction"),
                                          ({"fine_tune_epochs": 0}, "fine_tune_epochs")])
def test_bad_fine_tune_settings_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        core.FineTuneConfig(**kwargs)


def test_a_fine_tuned_model_that_scores_lower_on_eval_is_not_kept(trained, tmp_path, monkeypatch):
    """The two-colour task is too easy to make fine-tuning score lower for real: the eval
    measurements, before and after, are set here; the training and the saving are real."""
    measured = iter([0.9, 0.6])
    monkeypatch.setattr(core, "_accuracy", lambda *args: next(measured))

    result = run(trained, tmp_path, "on", fine_tune_epochs=1, fine_tune_learning_rate=1e-2, fine_tune_patience=5)

    assert result.ran and (result.eval_accuracy_before, result.eval_accuracy_after) == (0.9, 0.6)
    assert result.model_kept == "frozen" and "kept the frozen-base model" in result.reason
    for before, after in zip(kernels(trained["base_model_path"]), kernels(str(tmp_path / "base" / BASE_MODEL_FILE))):
        np.testing.assert_array_equal(before, after)  # phase one's base, not the trained one
    assert json.loads((tmp_path / "head" / core.FINE_TUNE_INFO).read_text())["model_kept"] == "frozen"


def test_a_fine_tuned_model_that_scores_at_least_as_well_is_kept(trained, tmp_path):
    result = run(trained, tmp_path, "on", fine_tune_epochs=1, fine_tune_learning_rate=1e-2, fine_tune_patience=5)
    assert result.eval_accuracy_after >= result.eval_accuracy_before and result.model_kept == "fine-tuned"


def test_auto_is_keyed_by_the_gpus_tensorflow_sees_not_by_device_files(monkeypatch):
    """A node with /dev/nvidia0 but no usable driver skips phase two; keyed by the device files,
    that skip would be reused once the driver works. The key holds what the decision holds."""
    from components.fine_tune import config

    assert config.gpus_tensorflow_sees() == 0  # no device files here: TensorFlow need not be asked
    monkeypatch.setattr(config, "gpu_device_files", lambda: True)
    assert config.gpus_tensorflow_sees() == 0  # files, but this TensorFlow finds no GPU: as auto decides
