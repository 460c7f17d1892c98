"""Preprocess: the Beam pipeline decodes, resizes, splits, and routes bad records to rejects."""

import glob
import hashlib
import io
import json
import os

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from components.common.contract.artifact_files import INDEX, LABELS, MANIFEST, STATS
from components.common.contract.examples_info import read_stats
from components.common.contract.record_parsing import parse_processed
from components.common.contract.records import RawExample
from components.common.images.decoding import decode_and_resize
from components.common.storage import atomic_files
from components.preprocess import core
from components.preprocess.splits import SplitPolicy
from tests.conftest import decompression_bomb, gif_bomb, make_image


def encoded(pixels, fmt="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def raw(data, label, origin, split=""):
    return RawExample(data, label, origin, hashlib.sha256(data).hexdigest(), split)


GOOD = [
    raw(encoded(make_image((200, 0, 0), size=(50, 20), seed=1)), "red", "a.png", "train"),
    raw(encoded(make_image((0, 0, 200), size=(20, 50), seed=2), "JPEG"), "blue", "b.jpg", "test"),
    raw(encoded(make_image((0, 0, 200), size=(64, 64), seed=3).astype(np.uint8)[:, :, 0]), "blue", "gray.png", "train"),
]
BAD = [
    raw(b"this is a text file, not a jpeg", "red", "text.jpg", "train"),
    raw(encoded(make_image((1, 2, 3), seed=4), "JPEG")[:200], "red", "truncated.jpg", "train"),
    raw(b"", "blue", "empty.png", "test"),
    raw(decompression_bomb(), "blue", "bomb.png", "train"),
    raw(gif_bomb(), "red", "bomb.gif", "train"),
]


def test_preprocess_transform_routes_every_record():
    policy = SplitPolicy(explicit_splits=("train", "eval", "test"))
    with TestPipeline() as pipeline:
        outputs = (
            pipeline
            | beam.Create([example.serialize() for example in GOOD + BAD])
            | core.PreprocessImages(image_size=16, labels=["blue", "red"], policy=policy)
        )
        assert_that(
            outputs["examples"] | "SplitLabel" >> beam.Map(lambda e: (e[0], e[1])),
            equal_to([("train", "red"), ("test", "blue"), ("train", "blue")]),
            label="Examples",
        )
        assert_that(
            outputs["rejects"]
            | "Origins" >> beam.Map(lambda r: (r["origin"], r["reason"].split(":")[0])),
            equal_to([("text.jpg", "cannot decode image"), ("truncated.jpg", "cannot decode image"),
                      ("empty.png", "cannot decode image"), ("bomb.png", "image too large"),
                      ("bomb.gif", "image too large")]),
            label="Rejects",
        )
        assert_that(
            outputs["train"] | "TrainPixels" >> beam.Map(
                lambda e: parse_processed(tf.constant(e[2]), 16)["pixels"].shape.as_list()
            ),
            equal_to([[16, 16, 3], [16, 16, 3]]),
            label="TrainShapes",
        )


def write_raw_dir(path, examples, explicit_splits):
    os.makedirs(path)
    with tf.io.TFRecordWriter(os.path.join(path, "examples-00000.tfrecord")) as writer:
        for example in examples:
            writer.write(example.serialize())
    labels = sorted({e.label for e in examples})
    atomic_files.write_lines(os.path.join(path, LABELS), labels)
    atomic_files.write_lines(os.path.join(path, INDEX),
                             [json.dumps([e.digest, e.label, e.split]) for e in examples])
    atomic_files.write_json(os.path.join(path, MANIFEST),
                            {"labels": labels, "explicit_splits": explicit_splits, "rejected": 1})


def test_run_writes_splits_rejects_and_counts(tmp_path):
    write_raw_dir(str(tmp_path / "raw"), GOOD + BAD, ["train", "eval", "test"])

    result = core.run(raw_dir=str(tmp_path / "raw"), output_dir=str(tmp_path / "out"), image_size=8)

    assert result.counts == {"train": {"red": 1, "blue": 1}, "eval": {}, "test": {"blue": 1}}
    assert result.rejected == len(BAD) + 1  # undecodable or too large here, one unreadable at ingest
    stats = atomic_files.read_json(str(tmp_path / "out" / STATS))
    assert stats["counts"] == result.counts and stats["image_size"] == 8
    train_files = glob.glob(str(tmp_path / "out" / "train-*.tfrecord"))
    assert sum(1 for _ in tf.data.TFRecordDataset(train_files)) == 2


def test_compact_examples_keep_the_source_bytes_and_parse_to_the_full_examples_pixels(tmp_path):
    write_raw_dir(str(tmp_path / "raw"), GOOD, ["train", "eval", "test"])

    core.run(raw_dir=str(tmp_path / "raw"), output_dir=str(tmp_path / "full"), image_size=8)
    core.run(raw_dir=str(tmp_path / "raw"), output_dir=str(tmp_path / "compact"), image_size=8, compact_examples=True)

    def parsed_by_origin(name):
        files = glob.glob(str(tmp_path / name / "*-*.tfrecord"))
        return {record["origin"].numpy().decode(): record for record in
                (parse_processed(serialized, 8) for serialized in tf.data.TFRecordDataset(files))}

    full, compact = parsed_by_origin("full"), parsed_by_origin("compact")
    sources = {example.origin: example.image for example in GOOD}
    assert sorted(full) == sorted(compact) == sorted(sources)
    assert read_stats(str(tmp_path / "compact")).compact and not read_stats(str(tmp_path / "full")).compact
    for origin, record in compact.items():
        assert record["image"].numpy() == sources[origin]  # the encoded bytes, not 8x8x3 pixels
        assert full[origin]["image"].numpy() == b""
        np.testing.assert_array_equal(record["pixels"].numpy(), full[origin]["pixels"].numpy())
        np.testing.assert_array_equal(record["pixels"].numpy(),
                                      decode_and_resize(tf.constant(sources[origin]), 8).numpy())


def test_too_few_classes_fail_with_one_clear_message(tmp_path):
    write_raw_dir(str(tmp_path / "raw"), [GOOD[0], BAD[0], GOOD[1]], ["train", "test"])

    with pytest.raises(core.PreprocessError, match="at least two are needed"):
        core.run(raw_dir=str(tmp_path / "raw"), output_dir=str(tmp_path / "out"), image_size=8)


def test_readers_take_the_shards_this_run_wrote_not_an_earlier_attempts(tmp_path):
    """A retried run writes into the directory its first attempt used: a glob would also find that
    attempt's shards (other shard counts, other names) and read its examples twice."""
    write_raw_dir(str(tmp_path / "raw"), GOOD + BAD, ["train", "eval", "test"])
    out = tmp_path / "out"
    out.mkdir()
    with tf.io.TFRecordWriter(str(out / "train-00003-of-00004.tfrecord")) as writer:  # the earlier attempt's
        writer.write(GOOD[0].serialize())
    (out / "rejects-00001-of-00002.jsonl").write_text('{"reason": "an earlier attempt"}\n')

    result = core.run(raw_dir=str(tmp_path / "raw"), output_dir=str(out), image_size=8)

    train_files = read_stats(str(out)).split_files("train")
    assert train_files and str(out / "train-00003-of-00004.tfrecord") not in train_files
    assert sum(1 for _ in tf.data.TFRecordDataset(train_files)) == 2
    assert result.rejected == len(BAD) + 1  # the earlier attempt's rejects are not counted
