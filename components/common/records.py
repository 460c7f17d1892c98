"""The record formats that flow between steps, as tf.train.Example protos.

raw example (ingest):       image (encoded bytes), label, origin, digest, split ("" if none)
processed example (preprocess): pixels (raw uint8 HxWx3), label, label_index, origin, digest
feature vector (extract_features): features (float32 list), label_index, digest
"""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

SPLITS = ("train", "eval", "test")


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _floats(values: np.ndarray) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))


@dataclass(frozen=True)
class RawExample:
    """One source image as ingest found it."""

    image: bytes
    label: str
    origin: str
    digest: str
    split: str = ""

    def serialize(self) -> bytes:
        return tf.train.Example(
            features=tf.train.Features(
                feature={
                    "image": _bytes(self.image),
                    "label": _bytes(self.label.encode()),
                    "origin": _bytes(self.origin.encode()),
                    "digest": _bytes(self.digest.encode()),
                    "split": _bytes(self.split.encode()),
                }
            )
        ).SerializeToString()

    @classmethod
    def parse(cls, serialized: bytes) -> "RawExample":
        feature = tf.train.Example.FromString(serialized).features.feature

        def text(key: str) -> str:
            return feature[key].bytes_list.value[0].decode()

        return cls(
            image=feature["image"].bytes_list.value[0],
            label=text("label"),
            origin=text("origin"),
            digest=text("digest"),
            split=text("split"),
        )


def serialize_processed(
    pixels: np.ndarray, label: str, label_index: int, origin: str, digest: str
) -> bytes:
    """Serializes a decoded, resized uint8 image with its label."""
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "pixels": _bytes(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()),
                "label": _bytes(label.encode()),
                "label_index": _int(label_index),
                "origin": _bytes(origin.encode()),
                "digest": _bytes(digest.encode()),
            }
        )
    ).SerializeToString()


PROCESSED_FEATURES = {
    "pixels": tf.io.FixedLenFeature([], tf.string),
    "label_index": tf.io.FixedLenFeature([], tf.int64),
    "origin": tf.io.FixedLenFeature([], tf.string),
    "digest": tf.io.FixedLenFeature([], tf.string),
}


def parse_processed(serialized: tf.Tensor, image_size: int) -> dict[str, tf.Tensor]:
    """Parses a processed example inside tf.data: pixels come back as uint8 (H, W, 3)."""
    parsed = tf.io.parse_single_example(serialized, PROCESSED_FEATURES)
    pixels = tf.io.decode_raw(parsed["pixels"], tf.uint8)
    parsed["pixels"] = tf.reshape(pixels, [image_size, image_size, 3])
    return parsed


def serialize_features(features: np.ndarray, label_index: int) -> bytes:
    """Serializes one feature vector with its label index."""
    return tf.train.Example(
        features=tf.train.Features(
            feature={"features": _floats(features.astype(np.float32)), "label_index": _int(label_index)}
        )
    ).SerializeToString()


def parse_features(serialized: tf.Tensor, dim: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Parses a feature record inside tf.data into (features, label_index)."""
    parsed = tf.io.parse_single_example(
        serialized,
        {
            "features": tf.io.FixedLenFeature([dim], tf.float32),
            "label_index": tf.io.FixedLenFeature([], tf.int64),
        },
    )
    return parsed["features"], parsed["label_index"]
