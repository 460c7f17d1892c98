"""The page of all local runs: every recorded run newest first, and the serving versions with their metrics."""

import html.parser
import json

from components.common.contract.serving_layout import EVALUATION_RECORD_FILE, evaluation_record
from components.evaluate.pushed_mark import pushed_mark
from pipeline.reporting import runs_page


class Tables(html.parser.HTMLParser):
    """The text of every table cell, by table and row; and every link."""

    def __init__(self):
        super().__init__()
        self.tables, self.links = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.tables[-1][-1].append("")
        elif tag == "a":
            self.links.append(dict(attrs)["href"])

    def handle_data(self, data):
        if self.tables and self.tables[-1] and self.tables[-1][-1]:
            self.tables[-1][-1][-1] += data


def pushed_version(serving, version, accuracy, run_id):
    directory = serving / "colors" / str(version)
    directory.mkdir(parents=True)
    (directory / "saved_model.pb").write_bytes(b"")
    (directory / EVALUATION_RECORD_FILE).write_text(json.dumps(
        evaluation_record(accuracy=accuracy, test_count=400, labels=["a", "b"], run_id=run_id)))


def summary(root, run_id, accuracy, pushed=None):
    report = root / run_id / "evaluate" / "report"
    report.parent.mkdir(parents=True)
    report.write_text(f"<html><p>{pushed_mark('push exports it as the next version')}</p></html>")
    return {"run_id": run_id, "report": str(report), "blessed": pushed is not None, "pushed_uri": pushed,
            "pushed": run_id != "run-c",
            "metrics": {"accuracy": accuracy, "accuracy_ci95": [accuracy - 0.05, accuracy + 0.04], "count": 400},
            "blessing_reason": "accuracy high enough", "push_reason": "pushed"}


def test_runs_newest_first_with_their_outcome_and_the_serving_versions(tmp_path):
    root, serving = tmp_path / "runs", tmp_path / "serving"
    root.mkdir()
    pushed_version(serving, 1, 0.875, "run-a")
    pushed_version(serving, 2, 0.925, "run-c")
    common = {"source": "/data/colors", "base": "mobilenet", "serving_root": str(serving), "model_name": "colors"}
    runs_page.record_run(str(root), summary(root, "run-a", 0.875, str(serving / "colors" / "1")),
                         succeeded=True, finished_at="2026-11-30T10:00:00+00:00", **common)
    runs_page.record_run(str(root), summary(root, "run-c", 0.925, str(serving / "colors" / "2")),
                         succeeded=True, finished_at="2026-11-30T12:00:00+00:00", **common)
    runs_page.record_run(str(root), {"run_id": "run-b", "metrics": {}, "log": str(root / "logs" / "run-b.log")},
                         succeeded=False, finished_at="2026-11-30T11:00:00+00:00",
                         error="step preprocess did not succeed: the train split has 1 class(es)", **common)
    with open(root / runs_page.RUNS_RECORD, "a") as record:
        record.write('{"finished_at": "2026-11-30T13:0')  # a writer killed mid-line

    page = Tables()
    page.feed(open(runs_page.write_index(str(root))).read())

    runs, versions = page.tables
    assert runs[0][:3] == ["finished", "run", "state"]
    assert [row[1:3] for row in runs[1:]] == [["run-c", "succeeded"], ["run-b", "failed"],
                                              ["why: step preprocess did not succeed: the train split has 1 class(es)"],
                                              ["run-a", "succeeded"]]
    assert runs[1][0] == "2026-11-30 12:00:00"
    assert runs[1][5] == "0.925 (0.875–0.965)" and runs[1][6:8] == ["yes", "2 (already serving)"]
    assert runs[4][6:8] == ["yes", "1"]
    assert runs[2][5:8] == ["–", "–", "–"]
    # Reports are linked under names a browser opens as HTML; a failed run's log is linked.
    assert page.links == ["reports/run-c.html", "logs/run-b.log", "reports/run-a.html"]
    # The copies say what push did, which the report, written before push, could not.
    assert "version 1, pushed by this run" in (root / "reports" / "run-a.html").read_text()
    assert "none: version 2 already serves this model" in (root / "reports" / "run-c.html").read_text()
    record = [json.loads(line) for line in open(root / runs_page.RUNS_RECORD) if line.endswith("\n")]
    assert record[2]["error"].startswith("step preprocess did not succeed") and record[2]["log"] == "logs/run-b.log"
    assert [[cell.strip() for cell in row] for row in versions[1:]] == \
        [["2 (newest: serving)", "0.925", "400", "run-c"], ["1", "0.875", "400", "run-a"]]


def test_a_serving_root_that_cannot_be_read_is_shown_not_fatal(tmp_path, monkeypatch):
    def unreachable(model_dir):
        raise OSError(f"{model_dir}: bucket unreachable")

    monkeypatch.setattr(runs_page, "existing_versions", unreachable)
    models = runs_page.serving_versions([{"serving_root": "gs://models", "model_name": "m"}])
    assert models == [{"model_dir": "gs://models/m", "error": "gs://models/m: bucket unreachable", "versions": []}]
    assert "cannot be read: gs://models/m: bucket unreachable" in runs_page.render([], models)
