"""End to end on real photos: MobileNet (alpha 0.25, ImageNet weights) transferred to cats vs dogs.

Runs `headstart run` exactly as a user would, through kfp.local, on a class-per-folder tree with
train/ and test/ built from ../shared/fixtures/cats_dogs (70 + 30 photos per class).
"""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from components.common import storage

HEADSTART = os.path.join(os.path.dirname(sys.executable), "headstart")
TRAIN_PER_CLASS = 70


def split_tree(photos_root, tree_root):
    """train/<class>/ and test/<class>/ as symbolic links to the shared photos."""
    for label in ("cats", "dogs"):
        names = sorted(os.listdir(photos_root / label), key=lambda name: int(name.split(".")[1]))
        for index, name in enumerate(names):
            split = "train" if index < TRAIN_PER_CLASS else "test"
            (tree_root / split / label).mkdir(parents=True, exist_ok=True)
            os.symlink(photos_root / label / name, tree_root / split / label / name)


@pytest.fixture(scope="module")
def cats_dogs_run(shared_fixtures, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("cats_dogs")
    split_tree(shared_fixtures / "cats_dogs", tmp_path / "photos")
    command = [
        HEADSTART, "run", "--source", str(tmp_path / "photos"), "--base-model", "mobilenet", "--alpha", "0.25",
        "--base-weights", str(shared_fixtures / "mobilenet_2_5_224_tf_no_top.h5"), "--image-size", "224",
        "--pipeline-root", str(tmp_path / "runs"), "--serving-root", str(tmp_path / "serving"),
        "--model-name", "cats_dogs", "--summary", str(tmp_path / "s.json"),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return {"tmp_path": tmp_path, "stdout": completed.stdout,
            "summary": json.loads((tmp_path / "s.json").read_text())}


def test_summary_holds_every_field(cats_dogs_run):
    summary = cats_dogs_run["summary"]
    assert summary["run_id"].startswith("headstart-")
    assert list(summary["steps"]) == ["ingest", "preprocess", "extract-features", "train-head", "evaluate", "push"]
    for step in summary["steps"].values():
        assert step["status"] == "SUCCESS" and step["seconds"] > 0
    assert summary["counts"]["test"] == {"cats": 30, "dogs": 30}
    assert sum(summary["counts"]["train"].values()) + sum(summary["counts"]["eval"].values()) == 140
    assert summary["rejected"] == 0
    assert summary["metrics"]["count"] == 60
    assert {"accuracy", "auc", "precision", "recall", "confusion_matrix"} <= set(summary["metrics"])
    assert summary["blessed"] is True


def test_transfer_reaches_the_accuracy_bar(cats_dogs_run):
    assert cats_dogs_run["summary"]["metrics"]["accuracy"] >= 0.85


def test_progress_is_shown_without_tensorflow_noise(cats_dogs_run):
    stdout = cats_dogs_run["stdout"]
    assert "[3/6] extract-features" in stdout and "train_head: epoch" in stdout
    assert "cuda" not in stdout.lower() and "absl" not in stdout


def test_pushed_model_answers_a_jpeg(cats_dogs_run, shared_fixtures):
    summary = cats_dogs_run["summary"]
    assert summary["pushed_uri"] == str(cats_dogs_run["tmp_path"] / "serving" / "cats_dogs" / "1")
    test_photos = [shared_fixtures / "cats_dogs" / "cats" / f"cat.{i}.jpg" for i in range(91, 101)] + [
        shared_fixtures / "cats_dogs" / "dogs" / f"dog.{i}.jpg" for i in range(91, 101)]
    serve = tf.saved_model.load(summary["pushed_uri"]).signatures["serving_default"]
    outputs = serve(image_bytes=tf.constant([photo.read_bytes() for photo in test_photos]))
    predicted = [name.decode() for name in outputs["class_name"].numpy()]
    correct = sum(p == expected for p, expected in zip(predicted, ["cats"] * 10 + ["dogs"] * 10))
    assert correct >= 16  # these photos are test photos: never seen in training

    metrics = storage.read_json(os.path.join(summary["run_dir"], "evaluate", "evaluation", "metrics.json"))
    assert metrics["labels"] == ["cats", "dogs"]


def test_predict_command_prints_class_and_probability(cats_dogs_run, shared_fixtures):
    photo = shared_fixtures / "cats_dogs" / "dogs" / "dog.100.jpg"
    not_an_image = cats_dogs_run["tmp_path"] / "notes.jpg"
    not_an_image.write_text("not a photo")
    completed = subprocess.run(
        [HEADSTART, "predict", "--model", str(cats_dogs_run["tmp_path"] / "serving" / "cats_dogs"),
         str(photo), str(not_an_image)],
        capture_output=True, text=True, timeout=300,
    )
    lines = completed.stdout.strip().splitlines()
    assert completed.returncode == 1  # one of the two files is not an image
    assert lines[0].startswith(f"{photo}: ") and ("cats (" in lines[0] or "dogs (" in lines[0])
    assert lines[1].startswith(f"{not_an_image}: error: not a decodable image")
