"""The one preprocessing function: encoded bytes to a resized RGB uint8 image.

Preprocess, feature extraction (through the stored pixels) and the exported serving model all
go through `decode_and_resize`, so the model in serving sees exactly the pixels it was trained on.
"""

import tensorflow as tf


def decode_and_resize(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
    """Decodes one encoded image (JPEG, PNG, GIF, BMP, WebP) to RGB and resizes it.

    Args:
        image_bytes: a scalar tf.string with the encoded image.
        image_size: the side of the square output, in pixels.

    Returns:
        A uint8 tensor of shape (image_size, image_size, 3).

    Raises:
        tf.errors.InvalidArgumentError: the bytes are not a decodable image.
    """
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, 3])
    # Antialiasing matters when shrinking 500-pixel photos to 224: without it, aliasing noise
    # reaches the base network.
    resized = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)

