"""The audit's streaming read of long feature vectors: projected on a sample, flips still found."""

import base64
import json
import os

import numpy as np
import pytest

from components.audit import core
from components.common import storage
from components.common.example_wire import TFRecordFileWriter
from components.common.records import serialize_features

FLIPPED = (5, 17, 33)  # training images whose label is the other class's


def write_features(root, images: int, dim: int) -> None:
    """Two classes far apart in `dim` dimensions, with the labels of FLIPPED swapped; and their hash records."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(2, dim)) * 3
    counts = {"train": images * 7 // 10, "eval": images // 10}
    counts["test"] = images - counts["train"] - counts["eval"]
    os.makedirs(root / "features"), os.makedirs(root / "examples")
    with open(root / "examples" / "hashes.jsonl", "w", encoding="utf-8") as hashes:
        for split, count in counts.items():
            writer = TFRecordFileWriter(str(root / "features" / f"{split}.tfrecord"))
            digests = []
            for index in range(count):
                picture = index % 2
                label = 1 - picture if split == "train" and index in FLIPPED else picture
                writer.write(serialize_features(np.abs(centers[picture] + rng.normal(size=dim)), label))
                digests.append(f"{split}-{index:04d}")
                hashes.write(json.dumps({"split": split, "label": "ab"[label], "digest": digests[-1],
                                         "origin": f"{digests[-1]}.jpg", "hash": f"{rng.integers(2**62):032x}",
                                         "thumbnail": base64.b64encode(bytes(1024)).decode()}) + "\n")
            writer.close()
            storage.write_lines(str(root / "features" / f"{split}.digests.txt"), digests)
            open(root / "examples" / f"{split}-0.tfrecord", "wb").close()
    storage.write_lines(str(root / "features" / "labels.txt"), ["a", "b"])
    storage.write_json(str(root / "features" / "features.json"),
                       {"dim": dim, "counts": counts, "train_views": ["identity"]})
    storage.write_json(str(root / "examples" / "stats.json"),
                       {"image_size": 8, "shards": {split: [f"{split}-0.tfrecord"] for split in counts}})


@pytest.mark.parametrize("images, sample", [(120, core.PROJECTION_SAMPLE), (400, 64)])
def test_long_vectors_are_projected_on_a_sample_and_flips_still_rank_first(tmp_path, monkeypatch, images, sample):
    # 120 images: fewer than the 256 components asked for. 400 with a 64-vector sample: the
    # projection is fitted on a spread of images, not on all of them.
    monkeypatch.setattr(core, "PROJECTION_SAMPLE", sample)
    write_features(tmp_path, images, dim=core.MAX_DIMENSIONS + 300)

    audit = core.run(features_dir=str(tmp_path / "features"), examples_dir=str(tmp_path / "examples"),
                     output_dir=str(tmp_path / "audit"), top=5)

    assert audit["images"] == images
    assert {entry["digest"] for entry in audit["mislabeled"][:len(FLIPPED)]} == {
        f"train-{index:04d}" for index in FLIPPED}
    assert audit["mislabeled"][0]["origin"] == audit["mislabeled"][0]["digest"] + ".jpg"
