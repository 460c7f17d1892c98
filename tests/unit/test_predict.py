"""`headstart predict`: each file gets a class or one plain reason it got none."""

import pytest
import tensorflow as tf

from components.common.images.decoding import decode_and_resize
from pipeline.serving.predict import NOT_AN_IMAGE, Prediction, predict_files, saved_model_classifier
from tests.conftest import make_image, write_image


class _ConstantClassifier(tf.Module):
    """The serving signature's shape of a pushed model, decoding as the export does, always 'red'."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(self, image_bytes):
        pixels = tf.map_fn(lambda data: decode_and_resize(data, 8), image_bytes,
                           fn_output_signature=tf.TensorSpec([8, 8, 3], tf.uint8))
        count = tf.shape(pixels)[0]
        return {
            "class_id": tf.zeros([count], tf.int64),
            "class_name": tf.fill([count], "red"),
            "probabilities": tf.tile([[0.75, 0.25]], [count, 1]),
        }


def test_a_file_that_is_no_image_gets_one_plain_reason(tmp_path):
    model = _ConstantClassifier()
    tf.saved_model.save(model, str(tmp_path / "model"), signatures={"serving_default": model.serve})
    photo = write_image(tmp_path / "photo.png", make_image((200, 40, 40)))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture\n")

    classify = saved_model_classifier(str(tmp_path / "model"))
    results = list(predict_files(classify, [str(photo), str(notes), str(tmp_path / "gone.jpg")]))

    assert results[:2] == [
        Prediction(str(photo), "red", 0.75),
        Prediction(str(notes), error=NOT_AN_IMAGE),
    ]
    assert NOT_AN_IMAGE == "not a decodable image (JPEG, PNG, GIF, BMP or WebP)"
    assert results[2] == Prediction(str(tmp_path / "gone.jpg"), error="cannot read: No such file or directory")


def test_a_version_without_the_tflite_model_asked_for_says_why(tmp_path):
    from pipeline.serving.predict import tflite_classifier

    with pytest.raises(ValueError, match="has no int8 TFLite model .*model_int8.tflite.*edge.json"):
        tflite_classifier(str(tmp_path), "int8")
