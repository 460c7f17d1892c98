"""End to end on the offline demo, as `make run` runs it: digits 0-4 base transferred to 5-9."""

import json
import os
import subprocess
import sys

HEADSTART = os.path.join(os.path.dirname(sys.executable), "headstart")


def run_demo(tmp_path, *extra):
    completed = subprocess.run(
        [HEADSTART, "run", "--pipeline-root", str(tmp_path / "runs"), "--serving-root", str(tmp_path / "serving"),
         "--summary", str(tmp_path / "s.json"), *extra],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed, json.loads((tmp_path / "s.json").read_text())


def test_demo_runs_offline_and_pushes_a_blessed_model_then_reuses_every_step(tmp_path, webhook):
    completed, summary = run_demo(tmp_path, "--notify", webhook.url)
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
    # The pretrained base is worth something on digits: with mirrored and cropped views, which
    # suit photos, it fell below the random one.
    assert lift["pretrained_accuracy"] >= lift["random_accuracy"]
    assert "Summary" in completed.stdout and "served model:" in completed.stdout
    assert all(step["cache"]["reused"] is False for step in summary["steps"].values())
    # Each step's own process: its peak memory and what it wrote. Preprocess writes the pixels;
    # ingest, which never imports TensorFlow, stays far below the steps that do.
    assert all(step["peak_rss_mb"] > 0 and step["bytes_written"] >= 0 for step in summary["steps"].values())
    assert summary["steps"]["preprocess"]["bytes_written"] > 1_000_000
    assert summary["steps"]["ingest"]["peak_rss_mb"] < summary["steps"]["train-head"]["peak_rss_mb"] / 2
    # The data audit ran on the features; its findings are in the summary and the report.
    images = sum(sum(counts.values()) for counts in summary["counts"].values())
    assert summary["audit"]["images"] == images and len(summary["audit"]["outliers"]) == 5
    assert "<h2>Data audit</h2>" in open(summary["report"], encoding="utf-8").read()
    # --notify: one message, with the blessing, the version pushed and the report.
    (message,) = webhook.messages
    assert message["text"].startswith(f"*headstart run {summary['run_id']} succeeded*")
    assert "blessed: yes" in message["text"] and "champion: none serving" in message["text"]
    assert f"pushed: {summary['pushed_uri']}" in message["text"] and "report: file://" in message["text"]

    # Unchanged data, parameters and code: every step is reused, nothing is pushed twice.
    completed, again = run_demo(tmp_path)
    for name, step in again["steps"].items():
        assert step["status"] == "SUCCESS" and step["cache"]["reused"], (name, step)
    assert "inputs, parameters and code unchanged" in again["steps"]["train-head"]["cache"]["why"]
    assert again["steps"]["push"]["cache"]["why"].startswith("already serving: version 1")
    assert again["metrics"] == summary["metrics"]
    assert again["features"] == {"extracted": 0, "reused": summary["features"]["extracted"]}
    assert again["champion"]["version"] == 1 and again["blessed"]
    assert os.listdir(tmp_path / "serving" / "headstart") == ["1"]
    assert "reused: inputs, parameters and code unchanged" in completed.stdout
    # A reused step copies (hard-links) its outputs: it writes next to nothing.
    assert again["steps"]["preprocess"]["bytes_written"] < summary["steps"]["preprocess"]["bytes_written"] / 10

    # The runs page lists both runs, newest first, links their reports, and shows version 1 serving.
    page = (tmp_path / "runs" / "index.html").read_text()
    assert page.index(again["run_id"]) < page.index(summary["run_id"])
    assert f'href="reports/{summary["run_id"]}.html"' in page and "1 (already serving)</td>" in page
    assert f"1 (newest: serving)</td><td>{summary['metrics']['accuracy']:.3f}</td>" in page
    assert f"runs page: {tmp_path / 'runs' / 'index.html'}" in completed.stdout



def test_audit_command_runs_up_to_extraction_and_the_audit_alone(tmp_path):
    completed = subprocess.run(
        [HEADSTART, "audit", "--pipeline-root", str(tmp_path / "runs"), "--summary", str(tmp_path / "s.json"),
         "--audit-top", "3"], capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert list(summary["steps"]) == ["ingest", "preprocess", "extract-features", "audit-data"]
    assert all(step["status"] == "SUCCESS" for step in summary["steps"].values())
    assert len(summary["audit"]["mislabeled"]) == len(summary["audit"]["outliers"]) == 3
    assert "data audit: " in completed.stdout and "served model" not in completed.stdout
    assert not (tmp_path / "runs" / "index.html").exists()  # the runs page lists model runs only
