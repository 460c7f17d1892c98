"""The audit's streaming read of long feature vectors: projected on a sample, flips still found."""

import base64
import json
import os

import numpy as np
import pytest

from components.audit import core
from components.common.contract.example_wire import TFRecordFileWriter
from components.common.contract.records import serialize_features
from components.common.storage import atomic_files

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
            atomic_files.write_lines(str(root / "features" / f"{split}.digests.txt"), digests)
            open(root / "examples" / f"{split}-0.tfrecord", "wb").close()
    atomic_files.write_lines(str(root / "features" / "labels.txt"), ["a", "b"])
    atomic_files.write_json(str(root / "features" / "features.json"),
                            {"dim": dim, "counts": counts, "train_views": ["identity"]})
    atomic_files.write_json(str(root / "examples" / "stats.json"),
                            {"image_size": 8, "labels": ["a", "b"], "counts": {split: {} for split in counts},
                             "shards": {split: [f"{split}-0.tfrecord"] for split in counts}})


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


def test_folds_fitted_on_a_sample_still_rank_the_flips_first(tmp_path, monkeypatch):
    # 400 images, 320 in each fold's fit: a 100-image sample of them is fitted instead.
    monkeypatch.setattr(core, "FOLD_FIT_SAMPLE", 100)
    monkeypatch.setattr(core, "PREDICT_BATCH", 7)
    write_features(tmp_path, 400, dim=32)

    audit = core.run(features_dir=str(tmp_path / "features"), examples_dir=str(tmp_path / "examples"),
                     output_dir=str(tmp_path / "audit"), top=5)

    assert {entry["digest"] for entry in audit["mislabeled"][:len(FLIPPED)]} == {
        f"train-{index:04d}" for index in FLIPPED}


def test_a_fold_sample_is_bounded_and_keeps_a_rare_class_whole(monkeypatch):
    monkeypatch.setattr(core, "FOLD_FIT_SAMPLE", 100)
    labels = np.array([0] * 1000 + [1] * 10 + [2] * 300)
    fit = np.arange(len(labels))[::-1]

    sample = core.fold_fit_sample(fit, labels, np.random.default_rng(0))

    assert np.all(np.diff(sample) > 0) and set(sample) <= set(fit)
    counts = np.bincount(labels[sample], minlength=3)
    assert counts[1] == 10  # fewer than the class minimum: all of them
    assert counts[0] == round(100 * 1000 / 1310) and counts[2] == core.FOLD_FIT_CLASS_MINIMUM
    assert np.array_equal(core.fold_fit_sample(fit[:90], labels, np.random.default_rng(0)), fit[:90])


def test_only_the_closest_near_copy_pairs_are_kept_and_in_the_same_order():
    # Noisy variants of four pictures: nearly every image has copies, many at equal distances.
    from components.common.images.near_duplicates import HashedImages, format_hash, hash_and_thumbnail, parse_hashes

    rng = np.random.default_rng(3)
    cumulative = [np.cumsum(np.cumsum(rng.normal(size=(32, 32, 3)), axis=0), axis=1) for _ in range(4)]
    bases = [(picture - picture.min()) / np.ptp(picture) * 255 for picture in cumulative]
    hashes, thumbnails = [], []
    for index in range(60):
        image = np.clip(bases[index % 4] + rng.normal(0, 3, bases[0].shape), 0, 255).astype(np.uint8)
        image_hash, picture = hash_and_thumbnail(image)
        hashes.append(format_hash(image_hash))
        thumbnails.append(np.frombuffer(picture, np.uint8))
    names = [f"image-{index:02d}" for index in range(60)]
    images = HashedImages(names, [f"{name}.jpg" for name in names], ["a"] * 60, ["train"] * 60,
                          parse_hashes(hashes), np.stack(thumbnails))

    every_pair, rows = core.near_duplicate_pairs(images, top=1000)

    assert len(every_pair) > 20
    assert core.near_duplicate_pairs(images, top=5)[0] == every_pair[:5]
    # The CSV gets every pair, in the same order, whatever the report keeps.
    assert [(row["origin"], row["matches"]) for row in core.near_duplicate_pairs(images, top=5)[1]] == \
        [(pair["origin"], pair["matches"]) for pair in every_pair] == [(row["origin"], row["matches"]) for row in rows]
