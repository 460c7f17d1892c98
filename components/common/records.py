"""The record formats that flow between steps, as tf.train.Example protos, and how they are written.

raw example (ingest):       image (encoded bytes), label, origin, digest, split ("" if none)
processed example (preprocess): image (the source's encoded bytes, which preprocess decoded), label,
                            label_index, origin, digest; readers decode it with the shared
                            `images.decode_and_resize` (record_parsing.parse_processed)
feature vector (extract_features): features (float32 list), label_index, digest

Writing needs no TensorFlow (example_wire encodes the protos), so a step that only writes records
does not import it; reading them inside tf.data is in record_parsing.
"""

from dataclasses import dataclass

import numpy as np

from components.common.example_wire import encode_example

SPLITS = ("train", "eval", "test")


@dataclass(frozen=True)
class RawExample:
    """One source image as ingest found it."""

    image: bytes
    label: str
    origin: str
    digest: str
    split: str = ""

    def serialize(self) -> bytes:
        """The example as a serialized tf.train.Example, written without TensorFlow."""
        return encode_example({"image": self.image, "label": self.label.encode(), "origin": self.origin.encode(),
                               "digest": self.digest.encode(), "split": self.split.encode()})

    @classmethod
    def parse(cls, serialized: bytes) -> "RawExample":
        """Reads an example back from what `serialize` wrote; uses TensorFlow's protos."""
        from tensorflow.core.example import example_pb2  # the readers have TensorFlow loaded already

        feature = example_pb2.Example.FromString(serialized).features.feature

        def text(key: str) -> str:
            return feature[key].bytes_list.value[0].decode()

        return cls(
            image=feature["image"].bytes_list.value[0],
            label=text("label"),
            origin=text("origin"),
            digest=text("digest"),
            split=text("split"),
        )


def serialize_processed(image: bytes, label: str, label_index: int, origin: str, digest: str) -> bytes:
    """Serializes an image preprocess accepted, still encoded, with its label, label index, origin and digest.

    The encoded bytes, not the decoded pixels: a 224x224 photo is about 150 KB of pixels against
    25 KB of JPEG, and every reader decodes through the same `decode_and_resize` that preprocess
    and serving use, so the pixels are the same.
    """
    return encode_example({
        "image": image,
        "label": label.encode(),
        "label_index": int(label_index),
        "origin": origin.encode(),
        "digest": digest.encode(),
    })


def serialize_features(features: np.ndarray, label_index: int) -> bytes:
    """Serializes one feature vector with its label index."""
    return encode_example({"features": np.asarray(features, dtype=np.float32), "label_index": int(label_index)})
