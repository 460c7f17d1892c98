"""Preprocess drops test images that are near copies of train images: re-encoded, resized, cropped."""

import io
import json
import os
import shutil

import tensorflow as tf
from PIL import Image

from components.common.contract.artifact_files import HASHES
from components.common.contract.examples_info import read_stats
from components.common.contract.record_parsing import parse_processed
from components.common.storage import atomic_files
from components.ingest import core as ingest_core
from components.preprocess import core as preprocess_core

IMAGE_SIZE = 64


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def origin_of(record) -> str:
    return parse_processed(record, IMAGE_SIZE)["origin"].numpy().decode()


def copies(photo: Image.Image) -> dict[str, bytes]:
    """Edits that leave the same photo: another JPEG quality, 10% smaller, 5% cropped."""
    width, height = photo.size
    edge_x, edge_y = int(width * 0.025), int(height * 0.025)
    return {
        "reencoded": jpeg(photo, quality=40),
        "resized": jpeg(photo.resize((int(width * 0.9), int(height * 0.9)), Image.LANCZOS)),
        "cropped": jpeg(photo.crop((edge_x, edge_y, width - edge_x, height - edge_y))),
    }


def test_test_copies_of_train_photos_are_dropped_and_distinct_test_photos_stay(shared_fixtures, tmp_path):
    tree, expected_dropped, distinct_test = tmp_path / "photos", {}, set()
    for label in ("cats", "dogs"):
        photos = sorted((shared_fixtures / "cats_dogs" / label).glob("*.jpg"))
        for split in ("train", "test"):
            (tree / split / label).mkdir(parents=True)
        for photo in photos[:6]:  # in train, with copies of it in test
            shutil.copy(photo, tree / "train" / label / photo.name)
            for kind, data in copies(Image.open(photo)).items():
                copy = tree / "test" / label / f"{kind}-{photo.name}"
                copy.write_bytes(data)
                expected_dropped[str(copy)] = str(tree / "train" / label / photo.name)
        for photo in photos[6:10]:  # seen in train only
            shutil.copy(photo, tree / "train" / label / photo.name)
        for photo in photos[10:14]:  # seen in test only
            shutil.copy(photo, tree / "test" / label / photo.name)
            distinct_test.add(str(tree / "test" / label / photo.name))
    raw_dir, examples_dir = str(tmp_path / "raw"), str(tmp_path / "examples")
    ingest_core.run(source=str(tree), output_dir=raw_dir)

    result = preprocess_core.run(raw_dir=raw_dir, output_dir=examples_dir, image_size=IMAGE_SIZE)

    dropped = [json.loads(line)
               for line in atomic_files.read_lines(os.path.join(examples_dir, "near_duplicates.jsonl"))]
    assert {copy["origin"]: copy["matches"] for copy in dropped} == expected_dropped
    assert all(0 <= copy["distance"] <= 16 for copy in dropped)
    stats = read_stats(examples_dir)
    assert result.near_duplicates_dropped == stats.near_duplicates_dropped == 36
    assert stats.counts["test"] == result.counts["test"] == {"cats": 4, "dogs": 4}
    assert {label: stats.counts["train"][label] + stats.counts["eval"].get(label, 0)
            for label in ("cats", "dogs")} == {"cats": 10, "dogs": 10}
    assert all(name.startswith("test-deduplicated-") for name in stats.shards["test"])
    test_files = stats.split_files("test")
    assert {origin_of(record) for record in tf.data.TFRecordDataset(test_files)} == distinct_test
    # Only the shards stats.json names are left, and no temporary file.
    left = sorted(name for name in os.listdir(examples_dir) if name.startswith(("test-", ".tmp")))
    assert left == sorted(stats.shards["test"])


def test_distinct_images_that_hash_alike_are_not_dropped(tmp_path):
    """The demo's digits, scanned at 8x8: hundreds of test digits are within the hash distance of a
    training digit of their class, yet each is another hand's digit. None may be dropped."""
    from components.common.images import near_duplicates

    ingest_core.run(source="demo:digits", output_dir=str(tmp_path / "raw"))
    result = preprocess_core.run(raw_dir=str(tmp_path / "raw"), output_dir=str(tmp_path / "examples"),
                                 image_size=32)

    images = [json.loads(line) for line in open(tmp_path / "examples" / HASHES)]
    test = near_duplicates.parse_hashes([image["hash"] for image in images if image["split"] == "test"])
    seen = near_duplicates.parse_hashes([image["hash"] for image in images if image["split"] != "test"])
    hash_close = sum(
        int(min(bin(int(q[0] ^ r[0])).count("1") + bin(int(q[1] ^ r[1])).count("1") for r in seen)
            <= near_duplicates.MAX_DISTANCE)
        for q in test)
    assert hash_close > 100  # the hash alone would have taken these for copies
    assert result.near_duplicates_dropped == 0 and sum(result.counts["test"].values()) == len(test) == 696
