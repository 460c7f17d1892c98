"""End to end on the offline demo, as `make run` runs it: digits 0-4 base transferred to 5-9."""

import json
import os
import subprocess
import sys

HEADSTART = os.path.join(os.path.dirname(sys.executable), "headstart")


def test_demo_runs_offline_and_pushes_a_blessed_model(tmp_path):
    completed = subprocess.run(
        [HEADSTART, "run", "--pipeline-root", str(tmp_path / "runs"), "--serving-root", str(tmp_path / "serving"),
         "--summary", str(tmp_path / "s.json")],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert all(step["status"] == "SUCCESS" for step in summary["steps"].values())
    assert set(summary["counts"]["test"]) == {f"digit_{d}" for d in range(5, 10)}
    assert sum(summary["counts"]["train"].values()) + sum(summary["counts"]["eval"].values()) == 200
    # The base never saw digits 5-9; 200 labels and its features still classify them.
    assert summary["metrics"]["accuracy"] >= 0.8
    assert summary["blessed"] and os.path.isfile(os.path.join(summary["pushed_uri"], "saved_model.pb"))
    # The demo measures the transfer lift by default: both accuracies are reported.
    lift = summary["metrics"]["transfer_lift"]
    assert 0 <= lift["random_accuracy"] <= 1
    assert lift["lift"] == lift["pretrained_accuracy"] - lift["random_accuracy"]
    assert "Summary" in completed.stdout and "served model:" in completed.stdout
