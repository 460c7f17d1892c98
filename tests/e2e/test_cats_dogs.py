"""End to end on real photos: MobileNet (alpha 0.25, ImageNet weights) transferred to cats vs dogs.

Runs `headstart run` exactly as a user would, through kfp.local, on a class-per-folder tree with
train/ and test/ built from ../shared/fixtures/cats_dogs (70 + 30 photos per class).
"""

import base64
import csv
import glob
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.common.storage import atomic_files
from pipeline.local.summary import STEP_NAMES
from tests.bad_inputs import write_corpus

HEADSTART = os.path.join(os.path.dirname(sys.executable), "headstart")
TRAIN_PER_CLASS = 70
# The first run trains on 63 photos a class; the second adds the other 7 (10% new images).
ADDED_LATER = 7


def split_tree(photos_root, tree_root, train_per_class):
    """train/<class>/ and test/<class>/ as symbolic links to the shared photos; the last 30 are test."""
    for label in ("cats", "dogs"):
        names = sorted(os.listdir(photos_root / label), key=lambda name: int(name.split(".")[1]))
        for index, name in enumerate(names):
            if train_per_class <= index < TRAIN_PER_CLASS:
                continue
            split = "train" if index < TRAIN_PER_CLASS else "test"
            (tree_root / split / label).mkdir(parents=True, exist_ok=True)
            link = tree_root / split / label / name
            if not link.exists():
                os.symlink(photos_root / label / name, link)


@pytest.fixture(scope="module")
def cats_dogs_run(shared_fixtures, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("cats_dogs")
    split_tree(shared_fixtures / "cats_dogs", tmp_path / "photos", TRAIN_PER_CLASS - ADDED_LATER)
    # Bad and awkward files among the training photos: each must become an example or a reject.
    corpus = write_corpus(tmp_path / "photos" / "train" / "cats", tmp_path / "photos" / "train" / "dogs")
    command = [
        HEADSTART, "run", "--source", str(tmp_path / "photos"), "--base-model", "mobilenet", "--alpha", "0.25",
        "--base-weights", str(shared_fixtures / "mobilenet_2_5_224_tf_no_top.h5"), "--image-size", "224",
        "--pipeline-root", str(tmp_path / "runs"), "--serving-root", str(tmp_path / "serving"),
        "--model-name", "cats_dogs", "--summary", str(tmp_path / "s.json"), "--measure-transfer-lift",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return {"tmp_path": tmp_path, "stdout": completed.stdout, "command": command, "corpus": corpus,
            "summary": json.loads((tmp_path / "s.json").read_text())}


def test_summary_holds_every_field(cats_dogs_run):
    summary = cats_dogs_run["summary"]
    assert summary["run_id"].startswith("headstart-")
    assert list(summary["steps"]) == STEP_NAMES
    for step in summary["steps"].values():
        assert step["status"] == "SUCCESS" and step["seconds"] > 0
    assert summary["counts"]["test"] == {"cats": 30, "dogs": 30}
    corpus = cats_dogs_run["corpus"]
    assert sum(summary["counts"]["train"].values()) + sum(summary["counts"]["eval"].values()) == \
        126 + corpus.examples
    assert summary["rejected"] == corpus.rejected and summary["duplicates"] == corpus.duplicates
    assert summary["metrics"]["count"] == 60
    assert {"accuracy", "auc", "precision", "recall", "confusion_matrix"} <= set(summary["metrics"])
    assert summary["blessed"] is True
    assert summary["fine_tune"]["ran"] is False  # auto, and this machine has no GPU


def test_every_file_of_the_source_is_an_example_a_reject_a_duplicate_or_skipped(cats_dogs_run):
    summary, photos = cats_dogs_run["summary"], cats_dogs_run["tmp_path"] / "photos"
    files = sum(len(names) for _, _, names in os.walk(photos))
    examples = sum(sum(counts.values()) for counts in summary["counts"].values())
    assert files == 200 - 2 * ADDED_LATER + cats_dogs_run["corpus"].files
    assert summary["skipped"] == cats_dogs_run["corpus"].skipped
    assert examples + summary["rejected"] + summary["duplicates"] + sum(summary["skipped"].values()) == files
    assert "2 files skipped (1 hidden file, 1 not an image file (.txt))" in cats_dogs_run["stdout"]
    rejects = [json.loads(line) for path in glob.glob(os.path.join(summary["run_dir"], "*", "*", "rejects*.jsonl"))
               for line in open(path, encoding="utf-8") if line.strip()]
    reasons = {os.path.basename(reject["origin"]): reject["reason"] for reject in rejects}
    assert reasons["bomb.png"].startswith("image too large")
    assert reasons["zero_bytes.jpg"] == "cannot decode image: Input is empty."
    assert reasons["loop_a.jpg"] == "unreadable: Too many levels of symbolic links"
    assert reasons["both_labels.png"].startswith("conflicting labels")
    assert {"truncated.jpg", "text_file.jpg", "loop_b.jpg"} <= set(reasons) and len(reasons) == summary["rejected"]


def test_transfer_reaches_the_accuracy_bar(cats_dogs_run):
    assert cats_dogs_run["summary"]["metrics"]["accuracy"] >= 0.85


def test_the_report_shows_the_transfer_lift(cats_dogs_run):
    summary = cats_dogs_run["summary"]
    lift = summary["metrics"]["transfer_lift"]
    # ImageNet weights against random ones on real photos: the lift is the whole point.
    assert lift["random_accuracy"] < 0.75 and lift["lift"] > 0.15
    report = open(summary["report"], encoding="utf-8").read()
    assert "Transfer lift" in report and f"{lift['random_accuracy']:.4f}" in report
    assert report.count("data:image/png;base64") >= 4  # confusion matrix, ROC, training curves, reliability
    assert f"report: {summary['report']}" in cats_dogs_run["stdout"]


def test_progress_is_shown_without_tensorflow_noise(cats_dogs_run):
    stdout = cats_dogs_run["stdout"]
    assert "[3/9] extract-features" in stdout
    assert "fine-tune: skipped (auto: no GPU found" in stdout and "train_head: epoch" in stdout
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

    metrics = atomic_files.read_json(os.path.join(summary["run_dir"], "evaluate", "evaluation", "metrics.json"))
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


def test_tflite_models_are_checked_and_kept_only_when_they_pass_and_predict_uses_them(cats_dogs_run, shared_fixtures):
    summary, version = cats_dogs_run["summary"], cats_dogs_run["tmp_path"] / "serving" / "cats_dogs" / "1"
    edge = summary["edge"]
    assert json.loads((version / "edge.json").read_text()) == edge
    assert "## Edge models (TFLite)" in (version / "model_card.md").read_text()
    # float16: every test photo keeps its class, probabilities within 0.05 (about 1e-3 on average).
    float16 = edge["float16"]
    assert float16["passed"] and float16["classes_changed"] == 0, float16
    assert float16["max_probability_difference"] <= 0.05 and float16["mean_probability_difference"] < 0.01
    # int8, bias-corrected for its weight rounding, is within a point of the model on one view.
    int8 = edge["int8"]
    assert int8["test_images"] == summary["metrics"]["count"] == 60
    assert int8["passed"], int8
    assert int8["bytes"] < float16["bytes"] < os.path.getsize(version / "variables" / "variables.data-00000-of-00001")
    for check in edge.values():
        assert (version / check["file"]).is_file() == check["passed"]

    photos = [shared_fixtures / "cats_dogs" / kind / f"{kind[:-1]}.{i}.jpg" for kind in ("cats", "dogs")
              for i in range(95, 101)]

    def predict(*options):
        return subprocess.run([HEADSTART, "predict", "--model", str(version), *options, *map(str, photos)],
                              capture_output=True, text=True, timeout=300)

    served, on_float16 = predict(), predict("--tflite", "float16")
    assert served.returncode == on_float16.returncode == 0, served.stderr + on_float16.stderr
    # The SavedModel averages the image and its mirror (test-time augmentation), the TFLite model answers one.
    agree = sum(a.rsplit(" (", 1)[0] == b.rsplit(" (", 1)[0]
                for a, b in zip(on_float16.stdout.splitlines(), served.stdout.splitlines()))
    assert agree >= len(photos) - 2, (on_float16.stdout, served.stdout)
    on_int8 = predict("--tflite", "int8")
    assert on_int8.returncode == 0, on_int8.stderr
    agree = sum(a.rsplit(" (", 1)[0] == b.rsplit(" (", 1)[0]
                for a, b in zip(on_int8.stdout.splitlines(), on_float16.stdout.splitlines()))
    assert agree >= len(photos) - 2, (on_int8.stdout, on_float16.stdout)


def test_grad_cam_is_in_the_report_and_predict_explain_writes_overlays(cats_dogs_run, shared_fixtures, tmp_path):
    summary = cats_dogs_run["summary"]
    report = open(summary["report"], encoding="utf-8").read()
    overlays = report.count('alt="Grad-CAM"')
    wrong = round((1 - summary["metrics"]["accuracy"]) * summary["metrics"]["count"])
    assert overlays == min(wrong, 12) + 6 and "A sample of correct predictions" in report

    # The photo on the left half of a flat grey canvas: the heatmap lies on the photo.
    photo = Image.open(shared_fixtures / "cats_dogs" / "dogs" / "dog.100.jpg").convert("RGB").resize((112, 224))
    canvas = Image.new("RGB", (224, 224), (128, 128, 128))
    canvas.paste(photo, (0, 0))
    composite = tmp_path / "dog_left.png"
    canvas.save(composite)
    explain = tf.saved_model.load(summary["pushed_uri"]).signatures["explain"]
    heatmap = explain(image_bytes=tf.constant([composite.read_bytes()]))["heatmap"][0].numpy()
    half = heatmap.shape[1] // 2
    assert heatmap[:, :half].sum() > 2 * heatmap[:, -half:].sum(), heatmap.round(2)

    completed = subprocess.run([HEADSTART, "predict", "--model", summary["pushed_uri"], "--explain", str(composite)],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    written = tmp_path / "dog_left.gradcam.png"
    assert completed.stdout.strip().endswith(f"Grad-CAM: {written}")
    assert Image.open(written).size == (224, 224)


def test_ten_percent_new_images_are_the_only_ones_extracted_and_the_new_model_meets_the_champion(
        cats_dogs_run, shared_fixtures):
    tmp_path = cats_dogs_run["tmp_path"]
    split_tree(shared_fixtures / "cats_dogs", tmp_path / "photos", TRAIN_PER_CLASS)
    # No transfer lift this time: it would extract every image again through a random base.
    # 60 test images: the tolerance and the evidence bound (blessing rule 4) are loosened to match.
    command = [*cats_dogs_run["command"], "--no-measure-transfer-lift", "--champion-tolerance", "0.1",
               "--max-test-interval", "0.2"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    second = json.loads((tmp_path / "s.json").read_text())

    examples = sum(sum(counts.values()) for counts in second["counts"].values())
    assert second["features"] == {"extracted": 2 * ADDED_LATER, "reused": examples - 2 * ADDED_LATER}
    assert "input:raw_examples" in second["steps"]["preprocess"]["cache"]["why"]
    assert second["steps"]["ingest"]["cache"]["why"] == "changed since the last cached run: extra:source"
    champion = second["champion"]
    assert champion["version"] == 1 and champion["uri"].endswith(os.path.join("cats_dogs", "1"))
    assert second["blessed"] and "not worse than the champion" in second["blessing_reason"]
    assert second["pushed_uri"].endswith(os.path.join("cats_dogs", "2"))
    assert "not worse than the champion" in completed.stdout

    # The same run again: nothing changed, so nothing runs and nothing is pushed twice.
    completed = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    third = json.loads((tmp_path / "s.json").read_text())
    assert all(step["cache"]["reused"] for step in third["steps"].values())
    assert third["metrics"]["accuracy"] == second["metrics"]["accuracy"]
    assert third["push_reason"].startswith("already serving: version 2")

    # The audit's CSV, its first two label issues kept as a person would: relabelled, the next run
    # ingests again (the cache keys on the file's content), and trains another model.
    with open(os.path.join(third["run_dir"], "audit-data", "audit", "audit_issues.csv"), newline="") as f:
        issues = [row for row in csv.DictReader(f) if row["kind"] == "label_issue"][:2]
    relabel = tmp_path / "relabel.csv"
    with open(relabel, "w", newline="") as f:
        writer = csv.DictWriter(f, list(issues[0]))
        writer.writeheader()
        writer.writerows(issues)
    completed = subprocess.run([*command, "--relabel", str(relabel), "--no-edge-export"], capture_output=True,
                               text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    fourth = json.loads((tmp_path / "s.json").read_text())
    assert "extra:relabel" in fourth["steps"]["ingest"]["cache"]["why"]
    assert fourth["relabelled"] == 2 and "2 relabelled (--relabel)" in completed.stdout
    moved = {(row["label"], row["suggested"]) for row in issues}
    assert fourth["counts"] != third["counts"] or moved == {("cats", "dogs"), ("dogs", "cats")}
    assert not fourth["steps"]["train-head"]["cache"]["reused"]
    report = open(fourth["report"], encoding="utf-8").read()
    assert "Excluded and relabelled at ingest" in report and all(row["origin"] in report for row in issues)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_client_posting_jpegs_to_serve_gets_the_evaluate_steps_predictions(cats_dogs_run):
    summary, tmp_path = cats_dogs_run["summary"], cats_dogs_run["tmp_path"]
    run_dir = summary["run_dir"]
    examples_dir = os.path.join(run_dir, "preprocess", "examples")
    test_files = sorted(glob.glob(os.path.join(examples_dir, "test-*.tfrecord")))
    origins = [tf.train.Example.FromString(record.numpy()).features.feature["origin"].bytes_list.value[0].decode()
               for record in tf.data.TFRecordDataset(test_files)]
    with np.load(os.path.join(run_dir, "evaluate", "evaluation", "test_predictions.npz")) as saved:
        expected = saved["probabilities"]
    assert len(origins) == len(expected) == 60

    port = free_port()
    server = subprocess.Popen(
        [HEADSTART, "serve", "--serving-root", str(tmp_path / "serving"), "--model-name", "cats_dogs",
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/models/cats_dogs"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert json.load(response)["model_version_status"][0]["state"] == "AVAILABLE"
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "headstart serve did not start"
                time.sleep(1)
        instances = [{"b64": base64.b64encode(open(origin, "rb").read()).decode()} for origin in origins]
        # Version 1 is the model the first run's evaluate step scored.
        request = urllib.request.Request(f"{url}/versions/1:predict",
                                         data=json.dumps({"instances": instances}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as response:
            predictions = json.load(response)["predictions"]
    finally:
        server.terminate()
        server.wait(timeout=30)

    served = np.array([prediction["probabilities"] for prediction in predictions])
    np.testing.assert_allclose(served, expected, atol=1e-4)
