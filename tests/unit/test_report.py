"""The evaluation report stays readable, and cheap to draw, at a thousand classes."""

import re

import numpy as np

from components.evaluate.metrics import classification_metrics
from components.evaluate.report import MATRIX_CLASSES, render_report, top_confusions

CLASSES = 1000


def many_class_metrics():
    """Two test images a class, all right but class 7's (taken for 3) and one of class 11's (for 5)."""
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(CLASSES), 2)
    predicted = truth.copy()
    predicted[truth == 7] = 3
    predicted[np.flatnonzero(truth == 11)[0]] = 5
    probabilities = rng.uniform(0, 0.1, (len(truth), CLASSES))
    probabilities[np.arange(len(truth)), predicted] = 5.0
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    labels = [f"class_{index:04d}" for index in range(CLASSES)]
    return classification_metrics(truth, probabilities, labels), labels


def test_top_confusions_are_the_most_frequent_mistakes_first():
    matrix = [[5, 1, 0], [3, 2, 0], [0, 0, 4]]
    assert top_confusions(matrix) == [(1, 0, 3), (0, 1, 1)]


def test_a_thousand_classes_get_top_confusions_and_short_tables():
    metrics, labels = many_class_metrics()
    train = {label: 3 + index % 5 for index, label in enumerate(labels)}
    audit = {"images": 7000, "flagged_mislabeled": 0, "mislabeled": [], "near_duplicates": [], "outliers": [],
             "balance": {"counts": {"train": train, "test": dict.fromkeys(labels, 2)},
                         "train_largest_to_smallest": 2.333}}

    page = render_report(metrics=metrics, labels=labels, history={"loss": [1.0], "val_loss": [1.0]},
                         blessing={"blessed": False, "reasons": ["accuracy below the bar"]}, lift=None,
                         mistakes=[], audit=audit)

    assert "Top confusions" in page and "Confusion matrix" not in page
    first = re.search(r"<th>of the true class</th></tr><tr><td>(\w+)</td><td>(\w+)</td><td>(\d+)</td>", page)
    assert first.groups() == ("class_0007", "class_0003", "2")
    per_class = page.split("<h2>Per class</h2>")[1].split("</table>")[0]
    assert per_class.count("<tr>") == MATRIX_CLASSES + 1 and "class_0007" in per_class
    assert "What to do with these lists." in page  # the audit says what its lists are for
    balance = page.split("<h3>Class balance</h3>")[1].split("</table>")[0]
    assert balance.count("<tr>") == MATRIX_CLASSES + 1
    assert len(page) < 500_000


def test_the_report_opens_with_what_it_covers_and_names_files_whole():
    metrics, labels = many_class_metrics()
    origin = "/data/photos/fixtures/cats_dogs_4k/test/dogs/dog.6216.jpg"
    mistake = {"pixels": np.zeros((8, 8, 3), np.uint8), "true": "dogs", "predicted": "cats", "confidence": 0.9,
               "origin": origin}
    about = {"run": "headstart-2026-12-07-06-00-00", "source": "/data/photos", "base": "mobilenet (weights imagenet)",
             "settings": {"head": "hidden units [128]"}, "model_name": "pets", "champion_version": 4}

    page = render_report(metrics=metrics, labels=labels, history={"loss": [1.0]}, lift=None, mistakes=[mistake],
                         blessing={"blessed": True, "reasons": ["accuracy high enough"]}, about=about)

    head = page.split("<h1>Evaluation on the test split</h1>")[1].split('<p class="verdict">')[0]
    for text in ("headstart-2026-12-07-06-00-00", "/data/photos", "mobilenet (weights imagenet)",
                 "hidden units [128]", "push exports it as the next version of pets, after version 4"):
        assert text in head
    assert origin in page
