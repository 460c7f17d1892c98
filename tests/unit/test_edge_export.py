"""Edge export's checks: a TFLite model that answers unlike the evaluated model is left out, with the reason."""

import os

import numpy as np

from components.common import storage
from components.common.artifact_files import METRICS, PREDICTIONS
from components.common.modeling import load_joined_model
from components.push import edge_export


def test_models_that_answer_like_the_evaluated_one_are_kept_and_others_left_out(trained, tmp_path):
    model = load_joined_model(trained["base_model_path"], trained["head_model_path"])
    with np.load(os.path.join(trained["evaluation_dir"], PREDICTIONS)) as predictions:
        expected = predictions["probabilities"]
    accuracy = storage.read_json(os.path.join(trained["evaluation_dir"], METRICS))["accuracy"]

    kept = edge_export.export(model, trained["examples_dir"], str(tmp_path))
    assert kept["float16"]["passed"] and kept["float16"]["classes_changed"] == 0, kept
    assert kept["int8"]["passed"] == (kept["int8"]["test_accuracy"] >= accuracy - 0.01)
    assert os.path.isfile(tmp_path / "model_float16.tflite")

    # Against probabilities with every class swapped and an accuracy no model reaches, both fail.
    models = edge_export.convert(model, model.input_shape[1], trained["examples_dir"])
    refused = edge_export.check(models, trained["examples_dir"], expected[:, ::-1], 1.5)
    assert not refused["float16"]["passed"] and refused["float16"]["classes_changed"] > 0
    assert refused["float16"]["reason"].startswith("left out: ")
    assert not refused["int8"]["passed"] and "at most 1% lower" in refused["int8"]["reason"]

    # What a device runs: the float16 model's probabilities from the uint8 pixels, as the SavedModel's.
    image, _ = next(edge_export._images(trained["examples_dir"], "test", model.input_shape[1]))
    on_device = edge_export.EdgeModel(model_path=str(tmp_path / "model_float16.tflite")).probabilities(image)
    assert np.abs(on_device - expected[0]).max() <= edge_export.FLOAT16_TOLERANCE
