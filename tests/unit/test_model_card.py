"""The model card: readable where it is read, whatever the class names and paths of the push."""

import re

from components.push.manifests import model_card

LABELS = ["a|b", "<img src=x onerror=alert(1)>", "snake_case *bold*"]


def card(base_network):
    counts = {split: dict.fromkeys(LABELS, 3) for split in ("train", "eval", "test")}
    per_class = {label: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 3} for label in LABELS}
    return model_card(model_name="odd", run_id="run-1", labels=LABELS, counts=counts,
                      metrics={"accuracy": 1.0, "accuracy_ci95": [0.7, 1.0], "per_class": per_class},
                      blessing={"reasons": ["accuracy 1.0000 >= 0.8000"]}, base_network=base_network,
                      head={"config": {"hidden_units": 8}})


def test_class_names_cannot_break_the_tables_or_add_html():
    text = card({"base_model": "mobilenet"})
    table_rows = [line for line in text.splitlines() if line.startswith("| ")]
    # Every row of the data table has split + 3 classes, and of the metrics table 5 cells.
    cells = [len(re.split(r"(?<!\\)\|", row)) - 2 for row in table_rows]
    assert cells[:5] == [4, 4, 4, 4, 4] and cells[5:7] == [5, 5] and set(cells[7:]) == {5}
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "snake\\_case \\*bold\\*" in text


def test_the_card_holds_no_path_of_the_machine_that_pushed():
    text = card({"base_model": "/home/alice/models/base.keras", "base_weights": "/mnt/data/weights/w.h5",
                 "alpha": 0.25, "dim": 256})
    assert "/home/alice" not in text and "/mnt/data" not in text
    assert '"base_model": "base.keras"' in text and '"base_weights": "w.h5"' in text
    shared = card({"base_model": "mobilenet", "base_weights": "gs://bucket/weights/w.h5"})
    assert '"base_weights": "gs://bucket/weights/w.h5"' in shared
