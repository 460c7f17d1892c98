"""Push: the serving export answers raw image bytes as the evaluated model does, atomically versioned."""

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from components.common.contract import artifact_files
from components.common.contract.serving_layout import (
    EVALUATION_RECORD_FILE,
    _pushed_versions,
    existing_versions,
    latest_version_dir,
    read_evaluation_records,
)
from components.common.images.decoding import decode_and_resize
from components.common.model.modeling import class_probabilities, load_joined_model
from components.common.storage import atomic_files
from components.evaluate import core as evaluate_core
from components.evaluate.blessing import BlessingPolicy
from components.push import core
from tests.conftest import CLASS_COLORS
from tests.unit.helpers import IMAGE_SIZE


def push(trained, serving_root, output_dir, evaluation_dir=None):
    return core.run(
        evaluation_dir=evaluation_dir or trained["evaluation_dir"], examples_dir=trained["examples_dir"],
        base_model_path=trained["base_model_path"], head_model_path=trained["head_model_path"],
        serving_root=str(serving_root), model_name="colors", output_dir=str(output_dir),
    )


def test_pushed_model_answers_jpeg_bytes_like_the_evaluated_model(trained, tmp_path):
    result = push(trained, tmp_path / "serving", tmp_path / "push")

    assert result.pushed and result.version == 1
    assert result.uri == str(tmp_path / "serving" / "colors" / "1")
    assert os.listdir(tmp_path / "serving" / "colors") == ["1"]  # no staging directory left behind
    jpegs = [(trained["tree"] / label / "3.jpg").read_bytes() for label in CLASS_COLORS]
    served = tf.saved_model.load(result.uri).signatures["serving_default"](image_bytes=tf.constant(jpegs))

    probabilities = served["probabilities"].numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert [name.decode() for name in served["class_names"].numpy()[0]] == ["blue", "red"]
    assert served["class_name"].numpy()[0].decode() in ("blue", "red")
    model = load_joined_model(trained["base_model_path"], trained["head_model_path"])
    pixels = tf.stack([tf.cast(decode_and_resize(tf.constant(j), IMAGE_SIZE), tf.float32) for j in jpegs])
    np.testing.assert_allclose(probabilities, class_probabilities(model(pixels)).numpy(), atol=1e-4)

    decoded = tf.saved_model.load(result.uri).signatures["serving_images"](images=pixels)
    np.testing.assert_allclose(decoded["probabilities"].numpy(), probabilities, atol=1e-5)


def test_versions_increase_and_nothing_is_overwritten(trained, tmp_path):
    first = push(trained, tmp_path / "serving", tmp_path / "p1")
    second = push(trained, tmp_path / "serving", tmp_path / "p2")
    assert (first.version, second.version) == (1, 2)
    assert existing_versions(str(tmp_path / "serving" / "colors")) == [1, 2]


def test_a_model_not_blessed_is_not_pushed(trained, tmp_path):
    evaluation = tmp_path / "evaluation"
    atomic_files.write_json(str(evaluation / artifact_files.BLESSING), {"blessed": False, "reason": "accuracy too low"})

    result = push(trained, tmp_path / "serving", tmp_path / "push", evaluation_dir=str(evaluation))

    assert not result.pushed and result.uri is None
    assert "accuracy too low" in result.reason
    assert not (tmp_path / "serving").exists()
    assert atomic_files.read_json(str(tmp_path / "push" / artifact_files.PUSH_RESULT))["pushed"] is False


def test_concurrent_commits_take_distinct_versions(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "1").mkdir()
    (model_dir / "1" / "saved_model.pb").write_bytes(b"existing")
    stagings = []
    for index in range(6):
        staging = model_dir / f".staging-{index}"
        staging.mkdir()
        (staging / "saved_model.pb").write_bytes(str(index).encode())
        stagings.append(staging)

    versions = []
    threads = [threading.Thread(target=lambda s=s: versions.append(core._commit(str(s), str(model_dir))))
               for s in stagings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(versions) == [2, 3, 4, 5, 6, 7]
    assert (model_dir / "1" / "saved_model.pb").read_bytes() == b"existing"
    contents = sorted((model_dir / str(v) / "saved_model.pb").read_bytes() for v in versions)
    assert contents == [str(i).encode() for i in range(6)]


def test_a_folder_without_saved_model_is_no_version_and_its_number_stays_taken(tmp_path):
    model_dir = tmp_path / "colors"
    (model_dir / "1").mkdir(parents=True)
    (model_dir / "1" / "saved_model.pb").write_bytes(b"whole")
    (model_dir / "2" / "variables").mkdir(parents=True)  # copied by hand without its saved_model.pb
    (model_dir / "2" / "variables" / "variables.index").write_bytes(b"partial")
    assert existing_versions(str(model_dir)) == [1]
    assert latest_version_dir(str(tmp_path), "colors") == str(model_dir / "1")

    staging = model_dir / ".staging-new"
    staging.mkdir()
    (staging / "saved_model.pb").write_bytes(b"new")
    assert core._commit(str(staging), str(model_dir)) == 3
    assert existing_versions(str(model_dir)) == [1, 3]
    assert (model_dir / "2" / "variables" / "variables.index").read_bytes() == b"partial"


def test_only_folders_named_in_ascii_digits_are_versions(tmp_path):
    """A folder named "²" passes str.isdigit() and crashes int(); "٣" is read by int() as 3."""
    model_dir = tmp_path / "colors"
    for name in ("1", "\u00b2", "\u0663"):
        (model_dir / name).mkdir(parents=True)
        (model_dir / name / "saved_model.pb").write_bytes(b"whole")
    assert existing_versions(str(model_dir)) == [1]
    staging = model_dir / ".staging-new"
    staging.mkdir()
    (staging / "saved_model.pb").write_bytes(b"new")
    assert core._commit(str(staging), str(model_dir)) == 2
    # The same rule for a gs:// listing.
    assert _pushed_versions(["1/saved_model.pb", "\u0663/saved_model.pb", "\u00b2/saved_model.pb"]) == [1]


@pytest.mark.parametrize("name", ["", "a/b", ".hidden"])
def test_bad_model_names_are_refused(trained, tmp_path, name):
    with pytest.raises(ValueError, match="model_name"):
        core.run(evaluation_dir=trained["evaluation_dir"], examples_dir=trained["examples_dir"],
                 base_model_path="", head_model_path="", serving_root=str(tmp_path), model_name=name,
                 output_dir=str(tmp_path / "out"))


def test_push_writes_a_model_card_and_deployment_manifests(trained, tmp_path):
    import yaml

    push(trained, tmp_path / "serving", tmp_path / "push")

    card = (tmp_path / "serving" / "colors" / "1" / "model_card.md").read_text()
    assert "# Model card: colors" in card and "blue, red" in card and "bootstrap 95% interval" in card
    service = yaml.safe_load((tmp_path / "push" / core.KSERVE_MANIFEST).read_text())
    assert service["kind"] == "InferenceService"
    assert service["spec"]["predictor"]["tensorflow"]["storageUri"] == str(tmp_path / "serving" / "colors")
    deployment, k8s_service = yaml.safe_load_all((tmp_path / "push" / core.TF_SERVING_MANIFEST).read_text())
    assert (deployment["kind"], k8s_service["kind"]) == ("Deployment", "Service")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--model_base_path={tmp_path / 'serving' / 'colors'}" in args and "--model_name=colors" in args


def test_an_export_that_answers_differently_is_not_pushed(trained, tmp_path):
    evaluation = tmp_path / "evaluation"
    evaluation.mkdir()
    for name in (artifact_files.BLESSING, artifact_files.METRICS):
        (evaluation / name).write_bytes((Path(trained["evaluation_dir"]) / name).read_bytes())
    with np.load(Path(trained["evaluation_dir"]) / artifact_files.PREDICTIONS) as real:
        np.savez(evaluation / artifact_files.PREDICTIONS, label_indices=real["label_indices"],
                 probabilities=1.0 - real["probabilities"])

    with pytest.raises(RuntimeError, match="infra-validation failed"):
        push(trained, tmp_path / "serving", tmp_path / "push", evaluation_dir=str(evaluation))
    assert os.listdir(tmp_path / "serving" / "colors") == []  # no version, no staging left


def test_the_champion_is_measured_on_this_runs_test_split(trained, tmp_path):
    push(trained, tmp_path / "serving", tmp_path / "push")

    result = evaluate_core.run(
        examples_dir=trained["examples_dir"], base_model_path=trained["base_model_path"],
        head_model_path=trained["head_model_path"], output_dir=str(tmp_path / "evaluation"),
        # The fixture's test split is far too small to replace a champion under the evidence rule.
        policy=BlessingPolicy(accuracy_threshold=0.0, champion_tolerance=0.0, max_test_interval=1.0),
        serving_root=str(tmp_path / "serving"), model_name="colors",
    )

    # The champion is this very model, exported: the same accuracy on the same images.
    assert result.champion["version"] == 1
    assert result.champion["accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert result.blessed and "not worse than the champion by more than the tolerance 0.0000" in result.reason
    assert "the champion (version 1)" in result.reason
    blessing = atomic_files.read_json(str(tmp_path / "evaluation" / artifact_files.BLESSING))
    assert blessing["champion"]["version"] == 1 and blessing["champion_tolerance"] == 0.0
    assert blessing["paired"]["difference"] == 0.0 and blessing["paired"]["count"] == result.metrics["count"]
    # The pushed version recorded its evaluation; this run is held to it as the best recorded.
    assert blessing["best_recorded"] == {"version": 1, "accuracy": result.metrics["accuracy"],
                                         "test_count": result.metrics["count"], "left_out": []}
    assert "within the drift margin of the best recorded blessed accuracy: version 1" in result.reason


def test_a_pushed_version_records_the_evaluation_that_blessed_it(trained, tmp_path):
    result = push(trained, tmp_path / "serving", tmp_path / "push")

    metrics = atomic_files.read_json(os.path.join(trained["evaluation_dir"], artifact_files.METRICS))
    record = atomic_files.read_json(os.path.join(result.uri, EVALUATION_RECORD_FILE))
    assert record == {"accuracy": metrics["accuracy"], "test_count": metrics["count"], "labels": ["blue", "red"],
                      "run_id": ""}
    assert read_evaluation_records(str(tmp_path / "serving" / "colors")) == {1: record}
