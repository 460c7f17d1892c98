"""The run summary as `headstart run` prints it: built from the summary dict alone, line by line."""

import copy

from pipeline.local.summary import summary_lines

SUMMARY = {
    "run_dir": "runs/headstart-1",
    "log": "runs/logs/headstart-1.log",
    "steps": {
        "ingest": {"status": "SUCCESS", "seconds": 1.25, "cache": {"reused": True, "why": "inputs unchanged"}},
        "train-head": {"status": "SUCCESS", "seconds": 12.0, "cache": {"reused": False, "why": "no earlier result"}},
        "push": {"status": "NOT_RUN", "seconds": 0.0, "cache": None},
    },
    "metrics": {"accuracy": 0.9, "auc": 0.95, "accuracy_ci95": [0.85, 0.94], "count": 40,
                "transfer_lift": {"lift": 0.3, "pretrained_accuracy": 0.9, "random_accuracy": 0.6}},
    "fine_tune": {"ran": False, "reason": "no GPU"},
    "counts": {"train": {"a": 30, "b": 30}, "test": {"a": 20, "b": 20}},
    "rejected": 2,
    "skipped": {"not an image file (.txt)": 3, "hidden file": 1},
    "near_duplicates": 1,
    "features": {"extracted": 98, "reused": 2},
    "blessed": True,
    "blessing_reason": "accuracy 0.9000 >= 0.8000; no serving model to compare with",
    "pushed_uri": "serving/headstart/3",
    "push_reason": None,
    "report": None,
}


def test_each_part_of_the_run_gets_its_line():
    lines = summary_lines(SUMMARY)

    assert lines[0] == "Summary"
    assert lines[1] == "  ingest            SUCCESS      1.2 s  reused: inputs unchanged"
    assert lines[2] == "  train-head        SUCCESS     12.0 s  ran: no earlier result"
    assert lines[3] == "  push              NOT_RUN      0.0 s  "
    assert "  test metrics: accuracy 0.9000, auc 0.9500 (40 images; accuracy 95% CI 0.8500-0.9400)" in lines
    assert "  fine-tune: skipped (no GPU)" in lines
    assert ("  transfer lift: +0.3000 accuracy (pretrained base 0.9000, random-weight base 0.6000)") in lines
    assert ("  images: train 60, test 40, rejected 2; 4 files skipped (3 not an image file (.txt), 1 hidden file)"
            in lines)
    assert "  feature extraction: 98 images through the base network, 2 from the feature store" in lines
    assert lines[-6:] == [
        "  blessed: yes",
        "    - accuracy 0.9000 >= 0.8000",
        "    - no serving model to compare with",
        "  served model: serving/headstart/3",
        "  artifacts: runs/headstart-1",
        "  log: runs/logs/headstart-1.log",
    ]


def test_a_run_that_stopped_early_says_what_it_lacks():
    summary = copy.deepcopy(SUMMARY)
    summary.update(metrics={}, fine_tune=None, counts={}, features={"extracted": None, "reused": None},
                   blessed=False, blessing_reason=None, pushed_uri=None)

    lines = summary_lines(summary)

    assert not [line for line in lines if line.startswith(("  test metrics", "  fine-tune", "  images",
                                                           "  feature extraction", "    - "))]
    assert "  blessed: no" in lines
    assert "  served model: none, push did not run" in lines


def test_a_fine_tune_that_ran_reports_both_accuracies():
    summary = {**SUMMARY, "fine_tune": {"ran": True, "reason": "a GPU was found", "eval_accuracy_before": 0.8,
                                        "eval_accuracy_after": 0.85, "model_kept": "fine-tuned"}}

    assert ("  fine-tune: a GPU was found; eval accuracy 0.8000 before, 0.8500 after; the fine-tuned model goes on"
            in summary_lines(summary))


def test_a_small_test_split_gets_its_honest_interval_and_a_warning():
    summary = copy.deepcopy(SUMMARY)
    summary["metrics"].update(accuracy=1.0, accuracy_ci95=[1.0, 1.0], accuracy_wilson95=[0.8157, 1.0], count=17,
                              small_test_split=True)
    lines = summary_lines(summary)
    assert any("(17 images; accuracy 95% CI 0.8157-1.0000)" in line for line in lines), lines
    assert "  warning: 17 test images are too few for this accuracy to mean much (anywhere from 0.8157 to " \
           "1.0000); use a larger test split" in lines
