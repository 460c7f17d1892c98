"""Grad-CAM on the joined classifier: heatmaps in [0, 1] on the base's last feature map, per chosen class."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.common.contract.examples_info import read_stats
from components.common.model.grad_cam import GradCam, NoFeatureMap, overlay
from components.common.model.modeling import load_joined_model
from components.evaluate.core import _shown_images
from components.evaluate.report import correct_sample
from tests.unit.helpers import IMAGE_SIZE


def test_heatmaps_lie_on_the_feature_map_and_opposite_classes_light_opposite_regions(trained):
    model = load_joined_model(trained["base_model_path"], trained["head_model_path"])
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (3, IMAGE_SIZE, IMAGE_SIZE, 3)), tf.float32)
    cam = GradCam(model)

    heatmaps, probabilities = cam(images)
    assert heatmaps.shape == (3, IMAGE_SIZE - 2, IMAGE_SIZE - 2)  # the tiny base's 3x3 valid convolution
    assert np.allclose(probabilities[:, 1], model(images).numpy()[:, 0], atol=1e-5)
    # Scaled to a peak of 1; a map is all 0 where every region argued against the class.
    assert heatmaps.numpy().min() >= 0 and set(heatmaps.numpy().max(axis=(1, 2)).round(5)) <= {0.0, 1.0}
    # Two classes: the second's probability is 1 - the first's, so their gradients are opposite
    # and no region lights up for both.
    first, _ = cam(images, tf.zeros(3, tf.int32))
    second, _ = cam(images, tf.ones(3, tf.int32))
    assert not np.any((first.numpy() > 0) & (second.numpy() > 0))


def test_the_overlay_keeps_the_image_size_and_colours_it():
    pixels = np.full((32, 32, 3), 100, np.uint8)
    heatmap = np.zeros((4, 4))
    heatmap[0, 0] = 1
    drawn = overlay(pixels, heatmap)
    assert drawn.shape == (32, 32, 3) and drawn.dtype == np.uint8
    assert not np.array_equal(drawn[0, 0], drawn[-1, -1])  # hot corner against cold corner


def test_a_base_without_a_spatial_layer_cannot_be_explained():
    images = keras.Input((8, 8, 3))
    extractor = keras.Model(images, keras.layers.GlobalAveragePooling2D()(images), name="feature_extractor")
    head = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")], name="head")
    joined = keras.Model(images, head(extractor(images)))
    with pytest.raises(NoFeatureMap, match="feature_extractor"):
        GradCam(joined)


def test_the_report_explains_a_spread_sample_of_correct_images(trained):
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    probabilities = np.tile([[0.9, 0.1]], (8, 1))
    assert correct_sample(labels, probabilities, limit=3) == [0, 4, 6]  # correct: 0, 2, 4, 6; ends and middle
    shown = _shown_images(read_stats(trained["examples_dir"]), [1, 0], np.zeros(50, int),
                          np.tile([[0.8, 0.2]], (50, 1)), ["blue", "red"])
    assert [image["true"] for image in shown] == ["blue", "blue"]
    assert shown[0]["pixels"].shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
