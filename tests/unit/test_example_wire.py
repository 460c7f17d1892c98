"""example_wire writes what TensorFlow writes: the same Example protos, the same TFRecord bytes."""

import numpy as np
import pytest
import tensorflow as tf

from components.common.contract.example_wire import TFRecordFileWriter, encode_example


def _tf_example(features: dict) -> tf.train.Example:
    def feature(value):
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        if isinstance(value, int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        return tf.train.Feature(float_list=tf.train.FloatList(value=value.tolist()))

    return tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in features.items()}))


@pytest.mark.parametrize("features", [
    {"image": b"\x00\xff" * 70_000, "label": "chat noir".encode(), "split": b""},
    {"label_index": 0, "big": 2**62, "negative": -3},
    {"features": np.random.default_rng(0).normal(size=12_544).astype(np.float32), "label_index": 7},
    {"features": np.zeros(0, np.float32)},
])
def test_encoded_examples_parse_back_as_tensorflow_builds_them(features):
    assert tf.train.Example.FromString(encode_example(features)) == _tf_example(features)


def test_float64_arrays_are_written_as_float32_like_tensorflow_does():
    values = np.array([0.1, 1e-30, -2.5])
    parsed = tf.train.Example.FromString(encode_example({"v": values}))
    assert parsed.features.feature["v"].float_list.value == pytest.approx(values.astype(np.float32).tolist())


def test_unsupported_values_are_named():
    with pytest.raises(TypeError, match="str"):
        encode_example({"label": "not bytes"})


def test_tfrecord_files_are_byte_identical_to_tensorflows(tmp_path):
    records = [b"", b"x", encode_example({"features": np.arange(300, dtype=np.float32)}), b"\x00" * 100_000]
    with TFRecordFileWriter(str(tmp_path / "ours.tfrecord")) as writer:
        for record in records:
            writer.write(record)
    with tf.io.TFRecordWriter(str(tmp_path / "theirs.tfrecord")) as writer:
        for record in records:
            writer.write(record)
    assert (tmp_path / "ours.tfrecord").read_bytes() == (tmp_path / "theirs.tfrecord").read_bytes()
    read = [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / "ours.tfrecord"))]
    assert read == records
