"""The blessing compares the challenger with the champion image by image, and with the best recorded version."""

import json
import os

import numpy as np
import pytest

from components.common.contract.artifact_files import BLESSING, METRICS, PREDICTIONS
from components.common.contract.serving_layout import (
    EVALUATION_RECORD_FILE,
    SAVED_MODEL_FILE,
    evaluation_record,
    read_evaluation_records,
)
from components.common.storage import atomic_files, gcs
from components.evaluate.blessing import (
    BlessingPolicy,
    best_in_serving,
    best_recorded,
    decide_blessing,
    paired_comparison,
    redecide_reused,
)

LABELS = ["blue", "red"]


def correctness(count: int, right: int, gains: int = 0, losses: int = 0):
    """(challenger, champion) correctness: the champion gets `right` of `count` images right; the
    challenger also gets `gains` of its misses right and `losses` of its hits wrong."""
    champion = np.arange(count) < right
    challenger = champion.copy()
    challenger[right:right + gains] = True
    challenger[:losses] = False
    return challenger, champion


def decide(challenger_correct, champion_correct, policy=None, best=None):
    policy = policy or BlessingPolicy(accuracy_threshold=0.5)
    challenger = {"accuracy": float(np.mean(challenger_correct)), "auc": 0.9}
    champion = {"version": 2, "accuracy": float(np.mean(champion_correct)), "auc": 0.9}
    paired = paired_comparison(challenger_correct, champion_correct, policy.confidence)
    return decide_blessing(challenger, champion, policy, paired=paired, best=best)


def test_identical_predictions_are_blessed_even_with_no_tolerance():
    challenger, champion = correctness(40, 30)
    blessed, reasons = decide(challenger, champion, BlessingPolicy(accuracy_threshold=0.5, champion_tolerance=0.0))
    assert blessed
    assert "not worse than the champion" in reasons[1] and "paired difference +0.0000" in reasons[1]


def test_a_slightly_worse_challenger_on_a_small_test_set_is_blessed_when_the_images_cannot_tell():
    # One image fixed, two broken, of 40: 0.025 worse, beyond the 0.01 tolerance as a point
    # estimate, but 40 images cannot show that it is worse at all.
    challenger, champion = correctness(40, 36, gains=1, losses=2)
    assert np.mean(challenger) - np.mean(champion) == pytest.approx(-0.025)

    blessed, reasons = decide(challenger, champion)

    assert blessed, reasons
    paired = paired_comparison(challenger, champion, 0.95)
    assert paired.lower < paired.difference < paired.upper and paired.upper >= -0.01
    reason = reasons[1]
    assert reason.startswith("not worse than the champion by more than the tolerance 0.0100 at 95% confidence")
    assert "paired difference -0.0250" in reason and "1 images right only for the challenger, 2 only" in reason
    assert f"bounds {paired.lower:+.4f} to {paired.upper:+.4f}" in reason and "2000 resamples" in reason


def test_a_clearly_worse_challenger_is_refused():
    challenger, champion = correctness(40, 36, gains=0, losses=8)
    blessed, reasons = decide(challenger, champion)
    assert not blessed
    assert reasons[1].startswith("worse than the champion by more than the tolerance 0.0100 at 95% confidence")
    assert "paired difference -0.2000" in reasons[1]


def test_more_images_resolve_a_small_loss_that_few_cannot():
    few = paired_comparison(*correctness(40, 36, losses=2), 0.95)
    many = paired_comparison(*correctness(4000, 3600, losses=200), 0.95)
    assert few.difference == many.difference == pytest.approx(-0.05)
    assert few.upper >= -0.01 > many.upper
    assert decide(*correctness(4000, 3600, losses=200))[0] is False


def test_the_paired_bootstrap_is_seeded():
    challenger, champion = correctness(50, 40, gains=3, losses=4)
    first, second = (paired_comparison(challenger, champion, 0.95) for _ in range(2))
    assert first == second and first.resamples == 2000
    assert paired_comparison(challenger, champion, 0.99).lower < first.lower


def test_a_champion_without_its_paired_comparison_is_refused_as_a_call():
    with pytest.raises(ValueError, match="paired"):
        decide_blessing({"accuracy": 0.9, "auc": 0.9}, {"version": 1, "accuracy": 0.9}, BlessingPolicy())


def test_the_drift_guard_refuses_what_is_within_tolerance_of_the_newest_but_far_below_the_best(tmp_path):
    model_dir = tmp_path / "serving" / "colors"
    push_version(model_dir, 1, accuracy=0.95)
    push_version(model_dir, 2, accuracy=0.85)
    challenger, champion = correctness(40, 34)  # the same predictions as version 2: 0.85

    best = best_in_serving(str(model_dir), LABELS)
    blessed, reasons = decide(challenger, champion, best=best)

    assert best == {"version": 1, "accuracy": 0.95, "test_count": 40, "left_out": []}
    assert "not worse than the champion" in reasons[1]
    assert not blessed
    assert reasons[2].startswith("more than the drift margin below the best recorded blessed accuracy: version 1 "
                                 "recorded 0.9500 on its own test split of 40 images, the challenger scores 0.8500")
    assert "margin 0.0500" in reasons[2] and "not a paired comparison" in reasons[2]


def test_the_drift_guard_blesses_within_its_margin_and_never_tightens_below_the_tolerance():
    challenger, champion = correctness(40, 36)
    best = {"version": 1, "accuracy": 0.94, "test_count": 200}
    blessed, reasons = decide(challenger, champion, best=best)
    assert blessed and reasons[2].startswith("within the drift margin of the best recorded blessed accuracy")

    strict = BlessingPolicy(accuracy_threshold=0.5, drift_margin=0.0, champion_tolerance=0.05)
    assert strict.effective_drift_margin == 0.05
    assert decide(challenger, champion, strict, best=best)[0] is True
    assert decide(challenger, champion, BlessingPolicy(accuracy_threshold=0.5, drift_margin=0.0), best=best)[0] is False


def test_without_a_champion_the_best_record_still_guards():
    blessed, reasons = decide_blessing({"accuracy": 0.85, "auc": 0.9}, None, BlessingPolicy(0.5),
                                       best={"version": 4, "accuracy": 0.99, "test_count": 100})
    assert not blessed
    assert reasons[1] == "no comparable champion in serving" and "version 4 recorded 0.9900" in reasons[2]


def push_version(model_dir, version, accuracy=None, labels=LABELS, record_text=None, saved_model=True,
                 test_count=40):
    version_dir = model_dir / str(version)
    version_dir.mkdir(parents=True)
    if saved_model:
        (version_dir / SAVED_MODEL_FILE).write_bytes(b"model")
    if record_text is None and accuracy is not None:
        record_text = json.dumps(evaluation_record(accuracy=accuracy, test_count=test_count, labels=labels))
    if record_text is not None:
        (version_dir / EVALUATION_RECORD_FILE).write_text(record_text)


def test_records_are_read_from_whole_versions_and_the_unreadable_are_left_out(tmp_path):
    model_dir = tmp_path / "colors"
    push_version(model_dir, 1)  # pushed before records existed
    push_version(model_dir, 2, accuracy=0.9)
    push_version(model_dir, 3, accuracy=0.99, saved_model=False)  # being uploaded: no version yet
    push_version(model_dir, 4, record_text="{not json")
    push_version(model_dir, 5, record_text=json.dumps({"accuracy": 1.5, "test_count": 3, "labels": LABELS}))
    push_version(model_dir, 6, accuracy=0.97, labels=["cat", "dog"])
    push_version(model_dir, 7, accuracy=0.8)

    records = read_evaluation_records(str(model_dir))

    assert sorted(records) == [2, 6, 7]
    assert records[2] == {"accuracy": 0.9, "test_count": 40, "labels": LABELS, "run_id": ""}
    assert best_recorded(records, LABELS) == {"version": 2, "accuracy": 0.9, "test_count": 40, "left_out": []}
    assert best_recorded(records, ["cat", "dog"])["version"] == 6
    assert best_recorded(records, ["a", "b", "c"]) is None
    assert read_evaluation_records(str(tmp_path / "no-model")) == {}


def test_records_are_read_from_a_bucket_with_one_listing(tmp_path, monkeypatch):
    """The gs:// path: one listing finds whole versions and their records, each record read once."""
    model_dir = tmp_path / "colors"
    push_version(model_dir, 1, accuracy=0.9)
    push_version(model_dir, 2, accuracy=0.95, saved_model=False)
    push_version(model_dir, 3, accuracy=0.8)
    push_version(model_dir, 4)
    objects = {os.path.relpath(os.path.join(root, name), model_dir).replace(os.sep, "/")
               for root, _, names in os.walk(model_dir) for name in names}
    listed, read = [], []

    def list_objects(uri):
        listed.append(uri)
        return iter(sorted((name, "hash") for name in objects))

    def read_bytes(uri):
        read.append(uri)
        return (model_dir / uri.removeprefix("gs://models/colors/")).read_bytes()

    monkeypatch.setattr(gcs, "list_objects", list_objects)
    monkeypatch.setattr(gcs, "read_bytes", read_bytes)

    records = read_evaluation_records("gs://models/colors")

    assert sorted(records) == [1, 3] and records[1]["accuracy"] == 0.9
    assert listed == ["gs://models/colors"]
    assert read == [f"gs://models/colors/{v}/{EVALUATION_RECORD_FILE}" for v in (1, 3)]


def test_a_reused_evaluation_is_held_to_the_best_record_again(tmp_path):
    model_dir = tmp_path / "serving" / "colors"
    push_version(model_dir, 1, accuracy=0.99, test_count=2000)
    push_version(model_dir, 2, accuracy=0.85, test_count=2000)
    evaluation = tmp_path / "evaluation"
    labels = np.array([0, 1] * 20)
    probabilities = np.eye(2)[np.where(np.arange(40) < 34, labels, 1 - labels)]
    atomic_files.write_json(str(evaluation / METRICS), {"accuracy": 0.85, "auc": 0.9, "count": 40, "labels": LABELS})
    atomic_files.write_json(str(evaluation / BLESSING), {"blessed": True, "accuracy_threshold": 0.5,
                                                         "auc_threshold": 0.0, "champion_tolerance": 0.01})
    np.savez(evaluation / PREDICTIONS, label_indices=labels, probabilities=probabilities)

    blessed, reason = redecide_reused(str(evaluation), str(model_dir / "2"))

    assert not blessed and "more than the drift margin below the best recorded blessed accuracy: version 1" in reason
    stored = atomic_files.read_json(str(evaluation / BLESSING))
    assert stored["paired"]["difference"] == 0.0 and stored["best_recorded"]["version"] == 1
    assert stored["confidence"] == 0.95 and stored["drift_margin"] == 0.05
