"""Grad-CAM on the base network: where in an image the base's features made the head choose a class.

The joined classifier is `image -> feature_extractor -> head` (`modeling.load_joined_model`). The
heatmap is taken at the extractor's last layer with a spatial output (the CNN's last feature map,
before pooling or flattening): the gradient of the chosen class's probability with respect to
that map, averaged over space, weights its channels; their weighted sum, negative parts cut, scaled
to [0, 1], is the heatmap (Selvaraju et al., 2017). `overlay` draws it over the image.
"""

import io

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from components.common.model.modeling import class_probabilities

# How much of the overlay is the heatmap's colour; the rest is the image.
HEAT_WEIGHT = 0.45


class NoFeatureMap(ValueError):
    """The base network has no layer with a spatial output to explain, or the model has no base network."""


class GradCam:
    """Heatmaps for the joined classifier's predictions.

    Args:
        model: the joined classifier (image input, then the feature extractor, then the head).

    Raises:
        NoFeatureMap: the base network has no spatial layer.
    """

    def __init__(self, model: keras.Model):
        extractor, self._head = model.layers[-2:] if len(model.layers) >= 3 else (None, None)
        if not isinstance(extractor, keras.Model):
            raise NoFeatureMap(f"{model.name!r} is not a feature extractor joined with a head")
        # The extractor is a chain (`base_network.build_feature_extractor`): input, the network
        # (an application with its preprocessing, or the user's model), then pooling. It is run
        # layer by layer, split after the last layer whose output is spatial: a nested model's
        # output cannot be taken from the outer graph as a tensor of its own.
        self._layers = extractor.layers[1:]
        spatial = [index for index, layer in enumerate(self._layers) if len(layer.output.shape) == 4]
        if not spatial:
            raise NoFeatureMap(f"the base network {extractor.name!r} has no layer with a spatial output")
        self._split = spatial[-1] + 1

    def __call__(self, images: tf.Tensor, class_ids: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """(heatmaps [N, h, w] in [0, 1], probabilities [N, classes]) for float images in [0, 255].

        `class_ids` [N] chooses the class each heatmap explains; by default the predicted one.
        """
        feature_map = images
        for layer in self._layers[:self._split]:
            feature_map = layer(feature_map, training=False)
        with tf.GradientTape() as tape:
            tape.watch(feature_map)
            features = feature_map
            for layer in self._layers[self._split:]:
                features = layer(features, training=False)
            probabilities = class_probabilities(self._head(features, training=False))
            if class_ids is None:
                class_ids = tf.argmax(probabilities, axis=1, output_type=tf.int32)
            chosen = tf.gather(probabilities, class_ids, axis=1, batch_dims=1)
        gradients = tape.gradient(chosen, feature_map)
        channel_weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        heatmaps = tf.nn.relu(tf.reduce_sum(channel_weights * feature_map, axis=-1))
        peak = tf.reduce_max(heatmaps, axis=(1, 2), keepdims=True)
        return tf.math.divide_no_nan(heatmaps, peak), probabilities


def overlay(pixels: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """The image [S, S, 3] (uint8) with the heatmap [h, w] in [0, 1] drawn over it in colour, uint8."""
    from matplotlib import colormaps

    size = pixels.shape[1], pixels.shape[0]
    heat = np.asarray(Image.fromarray((np.clip(heatmap, 0, 1) * 255).astype(np.uint8)).resize(size, Image.BILINEAR))
    colour = colormaps["jet"](heat / 255.0)[..., :3] * 255
    return (pixels.astype(np.float32) * (1 - HEAT_WEIGHT) + colour * HEAT_WEIGHT).round().astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    """An RGB uint8 image as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
