"""The serving export: a SavedModel that takes raw encoded image bytes.

Signatures:
    serving_default(image_bytes: string[N]) -> probabilities, class_id, class_name, class_names
    serving_images(images: float32[N, S, S, 3] in [0, 255]) -> the same outputs
    explain(image_bytes: string[N]) -> heatmap [N, h, w] in [0, 1] (Grad-CAM of the predicted
        class on the base network's last feature map), pixels uint8[N, S, S, 3] (what the model
        saw), probabilities, class_id; absent when the base has no spatial layer
The bytes signature runs `decode_and_resize`, the very function preprocess used, so a client
sends a JPEG and the model sees the pixels it was trained on.
"""

from typing import Sequence

import keras
import tensorflow as tf

from components.common.images.decoding import decode_and_resize
from components.common.images.views import averaged_over_views
from components.common.model.grad_cam import GradCam, NoFeatureMap
from components.common.model.modeling import class_probabilities


def export_serving_model(model: keras.Model, labels: Sequence[str], image_size: int, export_dir: str,
                         views: Sequence[str] = ("identity",)) -> None:
    """Writes `model` (float images in [0, 255] to head outputs) as a serving SavedModel.

    With more than one of `views` (test-time augmentation), every answer is the average of the
    model's answers over those views of the image, made as extraction made them (`views.py`).
    """
    class_names = tf.constant(list(labels))
    image_spec = tf.TensorSpec([image_size, image_size, 3], tf.uint8)

    def predict(images: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = averaged_over_views(lambda view: class_probabilities(model(view, training=False)),
                                            images, tuple(views))
        class_id = tf.argmax(probabilities, axis=1, output_type=tf.int32)
        return {
            "probabilities": probabilities,
            "class_id": class_id,
            "class_name": tf.gather(class_names, class_id),
            "class_names": tf.tile(class_names[tf.newaxis], [tf.shape(probabilities)[0], 1]),
        }

    def decode(image_bytes: tf.Tensor) -> tf.Tensor:
        return tf.map_fn(lambda data: decode_and_resize(data, image_size), image_bytes, fn_output_signature=image_spec)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve_bytes(image_bytes):
        return predict(tf.cast(decode(image_bytes), tf.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name="images")])
    def serve_images(images):
        return predict(images)

    # A plain tf.Module holding only the variables: keras.export.ExportArchive tracks the whole
    # Keras layer tree, and walking it makes saving about twice as slow for a SavedModel with the
    # same signatures and the same answers.
    module = tf.Module()
    module.model_variables = [variable.value for variable in model.variables]
    signatures = {"serving_default": serve_bytes.get_concrete_function(),
                  "serving_images": serve_images.get_concrete_function()}
    try:
        cam = GradCam(model)
    except NoFeatureMap:
        cam = None
    if cam is not None:
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def explain(image_bytes):
            pixels = decode(image_bytes)
            heatmaps, probabilities = cam(tf.cast(pixels, tf.float32))
            return {"heatmap": heatmaps, "pixels": pixels, "probabilities": probabilities,
                    "class_id": tf.argmax(probabilities, axis=1, output_type=tf.int32)}

        signatures["explain"] = explain.get_concrete_function()
    tf.saved_model.save(module, export_dir, signatures=signatures)
