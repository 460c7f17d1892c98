"""Edge export's checks: a TFLite model that answers unlike the evaluated model is left out, with the reason."""

import os

import numpy as np

from components.common.contract.artifact_files import METRICS, PREDICTIONS
from components.common.model.modeling import load_joined_model
from components.common.storage import atomic_files
from components.push import edge_export
from components.push.edge_export import EdgeModel


def test_models_that_answer_like_the_evaluated_one_are_kept_and_others_left_out(trained, tmp_path):
    model = load_joined_model(trained["base_model_path"], trained["head_model_path"])
    predictions_path = os.path.join(trained["evaluation_dir"], PREDICTIONS)
    with np.load(predictions_path) as predictions:
        expected, labels = predictions["single_view_probabilities"], predictions["label_indices"]
    accuracy = atomic_files.read_json(os.path.join(trained["evaluation_dir"], METRICS))["accuracy"]

    kept = edge_export.export(model, trained["examples_dir"], str(tmp_path), predictions_path)
    assert kept["float16"]["passed"] and kept["float16"]["agreement"] >= edge_export.FLOAT16_MIN_AGREEMENT, kept
    assert kept["float16"]["model_accuracy"] == accuracy  # one view, no test-time augmentation here
    assert kept["int8"]["passed"] == (kept["int8"]["test_accuracy"] >= accuracy - 0.01)
    assert os.path.isfile(tmp_path / "model_float16.tflite")

    # Against a model that answers every image with the other class, and is right by labels swapped
    # the same way, both TFLite models lose nearly all its accuracy and its classes: both fail.
    swapped = 1 - labels
    models = edge_export.convert(model, model.input_shape[1], trained["examples_dir"])
    refused = edge_export.check(models, trained["examples_dir"], np.eye(2, dtype=np.float32)[swapped], swapped)
    assert not refused["float16"]["passed"] and refused["float16"]["classes_changed"] > 0
    assert refused["float16"]["reason"].startswith("left out: ")
    assert not refused["int8"]["passed"] and "at most 1 point lower" in refused["int8"]["reason"]

    # What a device runs: the float16 model's probabilities from the uint8 pixels, as the SavedModel's
    # (rounding the weights to float16 moves them by about 1e-3).
    image, _ = next(edge_export._images(trained["examples_dir"], "test", model.input_shape[1]))
    on_device = edge_export.EdgeModel(model_path=str(tmp_path / "model_float16.tflite")).probabilities(image)
    assert np.abs(on_device - expected[0]).max() <= 0.05


def test_a_large_test_split_is_checked_on_an_even_sample_of_it():
    sample = edge_export.sample_indices(10_000)
    assert len(sample) == edge_export.CHECK_IMAGES and sample[0] == 0 and sample[-1] == 9_999
    assert np.all(np.diff(sample) >= 8)  # spread over the split, not its first images
    assert edge_export.sample_indices(60).tolist() == list(range(60))


def test_an_int8_input_scale_other_than_one_is_applied_to_the_pixels():
    """Calibration images darker than 255 give the input another scale; EdgeModel must quantize with it."""
    import keras

    images = keras.Input((8, 8, 3))
    brightness = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(images))
    decide = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(images, decide(brightness))
    decide.set_weights([np.array([[10.0, -10.0]] * 3, "float32"), np.array([-2.0, 2.0], "float32")])
    rng = np.random.default_rng(0)  # images from black to mid-grey: the answer turns on brightness
    dark = (rng.uniform(0, 1, (20, 1, 8, 8, 3)) * rng.uniform(0, 100, (20, 1, 1, 1, 1))).astype("float32")

    edge = EdgeModel(model_content=edge_export.int8_model(model, 8, list(dark)))

    scale, _ = edge._input["quantization"]
    assert abs(scale - 1.0) > 0.1  # the case at hand: pixels are not the quantized values
    for image in dark[:5]:
        np.testing.assert_allclose(edge.probabilities(image.astype(np.uint8)), model(image.astype(np.uint8)
                                   .astype("float32")).numpy()[0], atol=0.03)
