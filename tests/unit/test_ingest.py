"""Ingest: every kind of source becomes deduplicated raw examples with a label vocabulary."""

import glob
import json
import os

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from components.common.contract import audit_csv
from components.common.contract.artifact_files import EXAMPLES_PATTERN, LABELS, REJECTS
from components.common.contract.records import RawExample
from components.common.storage import atomic_files
from components.ingest import core
from components.ingest.sources import SourceError
from tests.conftest import CLASS_COLORS, make_image, write_image


def read_examples(output_dir):
    files = sorted(glob.glob(os.path.join(output_dir, EXAMPLES_PATTERN)))
    return [RawExample.parse(record.numpy()) for record in tf.data.TFRecordDataset(files)]


def test_folder_tree_without_splits(image_tree, tmp_path):
    result = core.run(source=str(image_tree), output_dir=str(tmp_path / "out"), records_per_shard=15)

    examples = read_examples(tmp_path / "out")
    assert result.count == len(examples) == 40
    assert result.labels == ("blue", "red")
    assert {e.label for e in examples} == {"blue", "red"}
    assert all(e.split == "" for e in examples)
    assert len(glob.glob(str(tmp_path / "out" / EXAMPLES_PATTERN))) == 3  # 15 + 15 + 10
    assert atomic_files.read_lines(str(tmp_path / "out" / LABELS)) == ["blue", "red"]
    example = examples[0]
    assert example.digest == __import__("hashlib").sha256(example.image).hexdigest()


def test_explicit_split_folders_are_kept(tmp_path):
    root = tmp_path / "tree"
    for offset, split in enumerate(("train", "test")):
        for label, color in CLASS_COLORS.items():
            for index in range(3):
                # Distinct seeds: two equal images would be one example, deduplicated by digest.
                write_image(root / split / label / f"{index}.png", make_image(color, seed=10 * offset + index))

    result = core.run(source=str(root), output_dir=str(tmp_path / "out"))

    assert result.explicit_splits == ("train", "test")
    examples = read_examples(tmp_path / "out")
    assert sorted(e.split for e in examples) == ["test"] * 6 + ["train"] * 6


def write_split_tree(root, folders):
    """A tree with these top-level folders, each holding red/ and blue/ with two distinct images."""
    for offset, folder in enumerate(folders):
        for label, color in CLASS_COLORS.items():
            for index in range(2):
                write_image(root / folder / label / f"{index}.png", make_image(color, seed=10 * offset + index))


@pytest.mark.parametrize(
    "folders, splits",
    [
        (["Train", "val", "TEST"], ("train", "eval", "test")),
        (["training", "validation"], ("train", "eval")),
        (["train", "valid", "testing"], ("train", "eval", "test")),
        (["TRAIN", "dev"], ("train", "eval")),
        (["train", "Eval"], ("train", "eval")),
    ],
)
def test_split_folders_go_by_their_common_names(tmp_path, folders, splits):
    write_split_tree(tmp_path / "tree", folders)

    result = core.run(source=str(tmp_path / "tree"), output_dir=str(tmp_path / "out"))

    assert result.explicit_splits == splits
    assert result.labels == ("blue", "red")
    examples = read_examples(tmp_path / "out")
    assert sorted({e.split for e in examples}) == sorted(splits)
    assert len(examples) == 4 * len(folders)


@pytest.mark.parametrize(
    "folders, named",
    [
        (["train", "test", "cats"], ["cats", "test", "train"]),
        (["train", "val", "validation"], ["val", "validation"]),
        (["val", "test"], ["test", "val"]),
    ],
)
def test_split_folders_that_cannot_be_read_one_way_fail_naming_them(tmp_path, folders, named):
    write_split_tree(tmp_path / "tree", folders)

    with pytest.raises(SourceError) as raised:
        core.run(source=str(tmp_path / "tree"), output_dir=str(tmp_path / "out"))
    assert all(f"{name}/" in str(raised.value) for name in named), raised.value


def test_duplicates_are_dropped_by_content(image_tree, tmp_path):
    duplicate = image_tree / "red" / "copy_of_red_0.jpg"
    duplicate.write_bytes((image_tree / "red" / "red_0.jpg").read_bytes())

    result = core.run(source=str(image_tree), output_dir=str(tmp_path / "out"))

    assert (result.count, result.duplicates) == (40, 1)


def test_csv_manifest_with_relative_paths(image_tree, tmp_path):
    manifest = image_tree / "manifest.csv"
    manifest.write_text("uri,label\nred/red_0.jpg,warm\nblue/blue_1.png,cold\nmissing.png,cold\n")

    result = core.run(source=str(manifest), output_dir=str(tmp_path / "out"))

    assert result.count == 2 and result.labels == ("cold", "warm")
    assert result.rejected == 1
    [reject] = atomic_files.read_lines(str(tmp_path / "out" / REJECTS))
    assert "missing.png" in reject and "unreadable" in reject


def test_csv_rows_that_are_blank_or_escape_the_folder_are_rejected_with_their_line(image_tree, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes((image_tree / "red" / "red_1.png").read_bytes())
    (image_tree / "link.png").symlink_to(secret)
    manifest = image_tree / "mixed.csv"
    manifest.write_text(f"red/red_0.jpg,warm\nred/red_2.jpg,\n,cold\n../secret.png,cold\n{secret},cold\n"
                        "link.png,cold\nblue/blue_1.png,cold\n")

    result = core.run(source=str(manifest), output_dir=str(tmp_path / "out"))

    assert result.count == 2 and result.rejected == 5
    reasons = [json.loads(line)["reason"] for line in atomic_files.read_lines(str(tmp_path / "out" / REJECTS))]
    assert [reason.split(": ")[0].rsplit(":", 1)[1] for reason in reasons] == ["2", "3", "4", "5", "6"]
    assert "expected 'uri,label'" in reasons[0] and "expected 'uri,label'" in reasons[1]
    assert all("outside the manifest's folder" in reason for reason in reasons[2:])


def test_labels_with_line_breaks_or_only_blanks_are_rejected_and_the_vocabulary_stays_one_per_line(
        image_tree, tmp_path):
    for folder in ("two\nlines", "carriage\rreturn", "   "):
        write_image(image_tree / folder / "odd.png", make_image((9, 9, 9), seed=len(folder)))
    manifest = image_tree / "quoted.csv"
    manifest.write_text('red/red_0.jpg,warm\nblue/blue_1.png,cold\nred/red_2.jpg,"hot\nday"\n')

    from_folders = core.run(source=str(image_tree), output_dir=str(tmp_path / "folders"))
    from_csv = core.run(source=str(manifest), output_dir=str(tmp_path / "csv"))

    for result, out, refused in ((from_folders, "folders", 3), (from_csv, "csv", 1)):
        assert atomic_files.read_lines(str(tmp_path / out / LABELS)) == list(result.labels)
        assert len(result.labels) == 2 and result.rejected == refused
        reasons = [json.loads(line)["reason"] for line in atomic_files.read_lines(str(tmp_path / out / REJECTS))]
        assert all(reason.startswith("label ") and ("blank" in reason or "one line" in reason) for reason in reasons)


def test_files_that_are_not_images_are_counted_by_reason_and_change_the_source_digest(image_tree, tmp_path):
    from components.ingest.source_digest import source_digest

    before = source_digest(str(image_tree))
    (image_tree / "red" / "notes.txt").write_text("taken in May")
    (image_tree / "blue" / "notes.TXT").write_text("taken in June")
    (image_tree / "red" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (image_tree / "README").write_text("photos")

    result = core.run(source=str(image_tree), output_dir=str(tmp_path / "out"))

    assert result.count == 40
    assert result.skipped == {"hidden file": 1, "not an image file (.txt)": 2, "outside any class folder": 1}
    assert atomic_files.read_json(str(tmp_path / "out" / "manifest.json"))["skipped"] == result.skipped
    assert source_digest(str(image_tree)) != before


def audit_file(path, rows, *, relabel, columns=("kind", "origin", "digest", "label", "suggested")):
    """An audit CSV as a person leaves it after editing, read back as ingest reads it."""
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return audit_csv.read_choices(str(path), path.read_bytes(), relabel=relabel)


def test_exclude_and_relabel_files_change_images_by_digest_or_origin(image_tree, tmp_path, caplog):
    first = core.run(source=str(image_tree), output_dir=str(tmp_path / "before"))
    examples = {e.origin: e for e in read_examples(tmp_path / "before")}
    red = sorted(origin for origin, e in examples.items() if e.label == "red")
    # By digest (the file may have moved since the audit), by origin, and a row naming no image.
    relabel = audit_file(tmp_path / "relabel.csv", [
        {"kind": "label_issue", "origin": "/elsewhere/red_0.png", "digest": examples[red[0]].digest,
         "label": "red", "suggested": "blue"},
        {"kind": "label_issue", "origin": red[1], "label": "red", "suggested": "blue"},
        {"kind": "label_issue", "origin": "/gone.png", "digest": "0" * 64, "label": "red", "suggested": "blue"},
        {"kind": "label_issue", "origin": red[3], "label": "red", "suggested": "red"}],  # kept as it was
        relabel=True)
    exclude = audit_file(tmp_path / "exclude.csv", [{"kind": "outlier", "origin": red[2]}], relabel=False,
                         columns=("kind", "origin"))

    with caplog.at_level("WARNING"):
        result = core.run(source=str(image_tree), output_dir=str(tmp_path / "after"), exclude=exclude,
                          relabel=relabel)

    assert (first.count, result.count) == (40, 39) and (result.excluded, result.relabelled) == (1, 2)
    # Only the row naming /gone.png found no image of the source.
    assert "1 rows of the --relabel file name no image" in caplog.text and "--exclude file" not in caplog.text
    after = {e.origin: e.label for e in read_examples(tmp_path / "after")}
    assert after[red[0]] == after[red[1]] == "blue" and red[2] not in after
    manifest = atomic_files.read_json(str(tmp_path / "after" / "manifest.json"))
    assert [entry["origin"] for entry in manifest["excluded"]] == [red[2]]
    assert {(e["origin"], e["label"], e["relabelled"]) for e in manifest["relabelled"]} == {
        (red[0], "red", "blue"), (red[1], "red", "blue")}


@pytest.mark.parametrize("text, message", [
    ("kind,label\nlabel_issue,red\n", "needs an 'origin' or a 'digest' column"),
    ("origin,label\nred/red_0.jpg,red\n", "needs a 'suggested' column"),
    ("origin,suggested\nred/red_0.jpg,\n", r"relabel.csv:2: no label in 'suggested'"),
])
def test_a_relabel_file_that_cannot_be_used_fails_naming_it(tmp_path, text, message):
    path = tmp_path / "relabel.csv"
    path.write_text(text)
    with pytest.raises(audit_csv.AuditFileError, match=message):
        audit_csv.read_choices(str(path), path.read_bytes(), relabel=True)


def test_tfds_source_offline_with_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        result = core.run(source="tfds:mnist", output_dir=str(tmp_path / "out"))

    examples = read_examples(tmp_path / "out")
    assert result.count == len(examples) > 0
    assert set(result.explicit_splits) == {"train", "test"}
    assert all(e.label in [str(d) for d in range(10)] for e in examples)
    assert tf.io.decode_png(examples[0].image).shape[-1] == 3


def test_demo_digits_is_the_target_task(tmp_path):
    result = core.run(source="demo:digits", output_dir=str(tmp_path / "out"))

    assert result.labels == tuple(f"digit_{d}" for d in range(5, 10))
    examples = read_examples(tmp_path / "out")
    train = [e for e in examples if e.split == "train"]
    assert len(train) == 5 * 40  # few labels per class; the rest is test
    assert result.count > 800


@pytest.mark.parametrize("source", ["/no/such/folder", "demo:nothing"])
def test_missing_sources_fail_clearly(source, tmp_path):
    with pytest.raises(SourceError, match="nothing|does not exist"):
        core.run(source=source, output_dir=str(tmp_path / "out"))


def test_a_folder_without_images_fails(tmp_path):
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    with pytest.raises(SourceError, match="no image"):
        core.run(source=str(tmp_path / "empty"), output_dir=str(tmp_path / "out"))
