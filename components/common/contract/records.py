"""The record formats that flow between steps, as tf.train.Example protos, and how they are written.

raw example (ingest):       image (encoded bytes), label, origin, digest, split ("" if none)
processed example (preprocess): pixels (raw uint8 HxWx3) or, with compact examples, image (the
                            source's encoded bytes, which preprocess decoded once already), label,
                            label_index, origin, digest; record_parsing.parse_processed gives the
                            pixels of either
feature vector (extract_features): features (float32 list), label_index, digest

Writing needs no TensorFlow (example_wire encodes the protos), so a step that only writes records
does not import it; reading them inside tf.data is in record_parsing.
"""

from dataclasses import dataclass

import numpy as np

from components.common.contract.example_wire import encode_example

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


def serialize_processed(pixels: np.ndarray | None, image: bytes | None, label: str, label_index: int, origin: str,
                        digest: str) -> bytes:
    """Serializes an image preprocess accepted with its label: its decoded, resized uint8 pixels, or its encoded bytes.

    Exactly one of `pixels` and `image`. The encoded bytes are compact examples: a 224x224 image's
    pixels are 150,528 bytes, a photo's JPEG a fraction of that (docs/performance.md, 'Disk per
    image'), and readers decode them with the same `decode_and_resize` that made the pixels.
    """
    if (pixels is None) == (image is None):
        raise ValueError("a processed example holds either its pixels or its encoded image")
    return encode_example({
        **({"image": image} if pixels is None else {"pixels": np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()}),
        "label": label.encode(),
        "label_index": int(label_index),
        "origin": origin.encode(),
        "digest": digest.encode(),
    })


def serialize_features(features: np.ndarray, label_index: int) -> bytes:
    """Serializes one feature vector with its label index."""
    return encode_example({"features": np.asarray(features, dtype=np.float32), "label_index": int(label_index)})
