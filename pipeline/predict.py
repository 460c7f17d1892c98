"""Classify image files with a pushed serving SavedModel, through its `serving_default` signature."""

import os
from dataclasses import dataclass
from typing import Iterator, Sequence

from components.common.pixel_limit import oversize_reason
from components.common.serving_layout import existing_versions, holds_saved_model

NOT_AN_IMAGE = "not a decodable image (JPEG, PNG, GIF, BMP or WebP)"


@dataclass(frozen=True)
class Prediction:
    """One image's class, or the reason it got none.

    Attributes:
        path: the image file as given.
        class_name: the most probable class; None where `error` is set.
        probability: that class's probability; None where `error` is set.
        error: why the file got no class, in words a person can act on; None on success.
    """

    path: str
    class_name: str | None = None
    probability: float | None = None
    error: str | None = None


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


def predict_files(model_dir: str, paths: Sequence[str]) -> Iterator[Prediction]:
    """Classifies each image file with the SavedModel in `model_dir`, in the order given.

    A file that cannot be read, is too large or is no image gets a Prediction with its error set;
    the others still get theirs.

    Args:
        model_dir: a pushed version directory, holding a SavedModel with a `serving_default`
            signature that takes encoded `image_bytes`.
        paths: the image files.

    Yields:
        One Prediction per path.
    """
    import tensorflow as tf

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
            if reason := oversize_reason(data):
                yield Prediction(path, error=reason)
                continue
            outputs = serve(image_bytes=tf.constant([data]))
        except OSError as error:
            yield Prediction(path, error=f"cannot read: {error.strerror or error}")
            continue
        except tf.errors.InvalidArgumentError:
            # TensorFlow's own message is a graph trace; which format was expected is what helps.
            yield Prediction(path, error=NOT_AN_IMAGE)
            continue
        class_id = int(outputs["class_id"][0])
        yield Prediction(path, outputs["class_name"][0].numpy().decode(), float(outputs["probabilities"][0][class_id]))
