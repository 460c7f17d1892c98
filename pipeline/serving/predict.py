"""Classify image files with a pushed version: its SavedModel's `serving_default`, or one of its TFLite models."""

import json
import os
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from components.common.contract.serving_layout import EVALUATION_RECORD_FILE, existing_versions, holds_saved_model
from components.common.images.pixel_limit import oversize_reason

NOT_AN_IMAGE = "not a decodable image (JPEG, PNG, GIF, BMP or WebP)"


@dataclass(frozen=True)
class Prediction:
    """One image's class, or the reason it got none.

    Attributes:
        path: the image file as given.
        class_name: the most probable class; None where `error` is set.
        probability: that class's probability; None where `error` is set.
        error: why the file got no class, in words a person can act on; None on success.
        explanation: the Grad-CAM overlay written for it, when one was asked for.
    """

    path: str
    class_name: str | None = None
    probability: float | None = None
    error: str | None = None
    explanation: str | None = None


def resolve_model_dir(path: str) -> str:
    """A version directory as given, or a model directory's newest version.

    Raises:
        ValueError: no SavedModel there.
    """
    if holds_saved_model(path):
        return path
    versions = existing_versions(path)
    if not versions:
        raise ValueError(f"{path} holds neither a saved_model.pb nor numbered versions")
    return os.path.join(path, str(versions[-1]))


def saved_model_classifier(model_dir: str) -> Callable[[bytes], tuple[str, float]]:
    """Encoded image bytes to (class, probability) through the SavedModel's `serving_default`."""
    import tensorflow as tf

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]

    def classify(data: bytes) -> tuple[str, float]:
        outputs = serve(image_bytes=tf.constant([data]))
        class_id = int(outputs["class_id"][0])
        return outputs["class_name"][0].numpy().decode(), float(outputs["probabilities"][0][class_id])

    return classify


def tflite_classifier(model_dir: str, variant: str) -> Callable[[bytes], tuple[str, float]]:
    """Encoded image bytes to (class, probability) through a version's TFLite model.

    The bytes go through the same `decode_and_resize` as `serving_default`, then the model; the
    class names are the version's evaluation record's.

    Raises:
        ValueError: the version has no such TFLite model, or no record of its classes.
    """
    import tensorflow as tf

    from components.common.images.decoding import decode_and_resize
    from components.push.edge_export import FILES, EdgeModel

    path = os.path.join(model_dir, FILES[variant])
    if not os.path.isfile(path):
        raise ValueError(f"{model_dir} has no {variant} TFLite model ({FILES[variant]}): it was pushed without "
                         "edge export, or the model failed its check (see edge.json there)")
    record_path = os.path.join(model_dir, EVALUATION_RECORD_FILE)
    if not os.path.isfile(record_path):
        raise ValueError(f"{model_dir} has no {EVALUATION_RECORD_FILE}, which names the classes")
    with open(record_path, encoding="utf-8") as record:
        labels = json.load(record)["labels"]
    model = EdgeModel(model_path=path)
    decode = tf.function(lambda data: decode_and_resize(data, model.image_size),
                         input_signature=[tf.TensorSpec([], tf.string)])

    def classify(data: bytes) -> tuple[str, float]:
        probabilities = model.probabilities(decode(tf.constant(data)).numpy())
        class_id = int(probabilities.argmax())
        return labels[class_id], float(probabilities[class_id])

    return classify


def explanation_writer(model_dir: str) -> Callable[[str, bytes], str]:
    """Writes an image's Grad-CAM overlay beside it, as `<name>.gradcam.png`; returns that path.

    The overlay comes from the version's `explain` signature: the heatmap of the predicted class
    over the very pixels the model saw.

    Raises:
        ValueError: the version has no `explain` signature.
    """
    import tensorflow as tf

    from components.common.model.grad_cam import overlay, png_bytes

    signatures = tf.saved_model.load(model_dir).signatures
    if "explain" not in signatures:
        raise ValueError(f"{model_dir} has no `explain` signature: it was pushed before Grad-CAM was exported, or "
                         "its base network has no spatial layer")
    explain = signatures["explain"]

    def write(path: str, data: bytes) -> str:
        answer = explain(image_bytes=tf.constant([data]))
        target = os.path.splitext(path)[0] + ".gradcam.png"
        with open(target, "wb") as f:
            f.write(png_bytes(overlay(answer["pixels"][0].numpy(), answer["heatmap"][0].numpy())))
        return target

    return write


def predict_files(classify: Callable[[bytes], tuple[str, float]], paths: Sequence[str],
                  explain: Callable[[str, bytes], str] | None = None) -> Iterator[Prediction]:
    """Classifies each image file, in the order given.

    A file that cannot be read, is too large or is no image gets a Prediction with its error set;
    the others still get theirs.

    Args:
        classify: encoded image bytes to (class, probability): `saved_model_classifier` or
            `tflite_classifier`.
        paths: the image files.
        explain: writes an image's explanation and returns its path (`explanation_writer`); None
            for none.

    Yields:
        One Prediction per path.
    """
    import tensorflow as tf

    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
            if reason := oversize_reason(data):
                yield Prediction(path, error=reason)
                continue
            class_name, probability = classify(data)
            explanation = explain(path, data) if explain else None
        except OSError as error:
            yield Prediction(path, error=f"cannot read: {error.strerror or error}")
            continue
        except tf.errors.InvalidArgumentError:
            # TensorFlow's own message is a graph trace; which format was expected is what helps.
            yield Prediction(path, error=NOT_AN_IMAGE)
            continue
        yield Prediction(path, class_name, probability, explanation=explanation)
