"""Classify image files with a pushed serving SavedModel, through its `serving_default` signature."""

import os
from typing import Iterator, Sequence

from components.common.pixel_limit import oversize_reason
from components.common.serving_layout import existing_versions, holds_saved_model

NOT_AN_IMAGE = "not a decodable image (JPEG, PNG, GIF, BMP or WebP)"


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


def predict_files(model_dir: str, paths: Sequence[str]) -> Iterator[tuple[str, tuple[str, float] | str]]:
    """Yields (path, (class_name, probability)) per image, or (path, error message)."""
    import tensorflow as tf

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
            if reason := oversize_reason(data):
                yield path, reason
                continue
            outputs = serve(image_bytes=tf.constant([data]))
        except OSError as error:
            yield path, f"cannot read: {error.strerror or error}"
            continue
        except tf.errors.InvalidArgumentError:
            # TensorFlow's own message is a graph trace; which format was expected is what helps.
            yield path, NOT_AN_IMAGE
            continue
        class_id = int(outputs["class_id"][0])
        yield path, (outputs["class_name"][0].numpy().decode(), float(outputs["probabilities"][0][class_id]))
