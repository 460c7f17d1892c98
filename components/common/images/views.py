"""The augmented views of an image, made identically for extraction, evaluation and serving.

A view is made from the processed S x S pixels (never from the original file), so the exported
model, which decodes and resizes first, makes exactly the views extraction made. Crops are central,
resized back to S with bilinear filtering and rounded to uint8, as stored pixels are.
"""

import tensorflow as tf

from components.common.config.view_policy import VIEW_NAMES

CROP_FRACTIONS = {"crop85": 0.85, "crop70": 0.70}


def view_of(pixels: tf.Tensor, view: str) -> tf.Tensor:
    """One view of a batch of uint8 images [N, S, S, 3], as uint8 [N, S, S, 3]."""
    if view == "identity":
        return pixels
    if view == "flip":
        return tf.image.flip_left_right(pixels)
    if view not in CROP_FRACTIONS:
        raise ValueError(f"unknown view {view!r}; the views are {VIEW_NAMES}")
    size = tf.shape(pixels)[1:3]
    cropped = tf.image.central_crop(pixels, CROP_FRACTIONS[view])
    resized = tf.image.resize(tf.cast(cropped, tf.float32), size, method="bilinear")
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def answers_over_views(predict, images: tf.Tensor, views: tuple[str, ...]) -> list[tf.Tensor]:
    """`predict` (float images in [0, 255] to probabilities) on each of the views of `images`, in order.

    The image itself goes in as given; the other views are made from it as uint8 pixels, as
    extraction made them from the stored pixels.
    """
    pixels = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 255.0)), tf.uint8)
    return [predict(images) if view == "identity" else predict(tf.cast(view_of(pixels, view), tf.float32))
            for view in views]


def averaged_over_views(predict, images: tf.Tensor, views: tuple[str, ...]) -> tf.Tensor:
    """The mean of `predict`'s answers over the views of `images` (`answers_over_views`)."""
    answers = answers_over_views(predict, images, views)
    return answers[0] if len(answers) == 1 else tf.add_n(answers) / float(len(answers))
