"""The page of all local runs: `<pipeline-root>/index.html`, rewritten after every `headstart run`.

Each run appends one JSON line to `<pipeline-root>/runs.jsonl` (what the page lists, so a run's
row never depends on artifacts a later clean-up removed); the page is then rendered from all of
them, newest first, with the versions in every serving root those runs pushed to.
"""

import datetime
import html
import json
import os
from typing import Any

from components.common.contract.serving_layout import existing_versions, model_directory, read_evaluation_records
from components.common.storage import atomic_files
from components.evaluate.pushed_mark import with_pushed_version

RUNS_RECORD = "runs.jsonl"
INDEX = "index.html"
REPORTS = "reports"


def record_run(pipeline_root: str, summary: dict[str, Any], *, succeeded: bool, source: str, base: str,
               serving_root: str, model_name: str, finished_at: str | None = None,
               error: str | None = None) -> dict[str, Any]:
    """Appends one run's line to `<pipeline_root>/runs.jsonl`; returns it.

    Args:
        pipeline_root: the local pipeline root the run used.
        summary: the run's summary (`pipeline.local.summary.collect_summary`); its report, if any, is linked
            under `reports/`.
        succeeded: whether every step succeeded.
        source: the run's source, as given.
        base: the base network's name or file name.
        serving_root: where the run pushes, as given.
        model_name: the model's name under the serving root.
        finished_at: when it ended, ISO 8601 (default: now, in local time with its offset).
        error: why the run failed (its first failed step and what it said); None when it succeeded.
    """
    metrics = summary.get("metrics") or {}
    pushed = summary.get("pushed_uri")
    version = int(os.path.basename(pushed.rstrip("/"))) if pushed else None
    report = _linkable_report(pipeline_root, summary, version) if summary.get("report") else None
    record = {
        "finished_at": finished_at or datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "run_id": summary.get("run_id"), "succeeded": succeeded, "source": source, "base": base,
        "accuracy": metrics.get("accuracy"),
        "accuracy_ci95": metrics.get("accuracy_wilson95") or metrics.get("accuracy_ci95"),
        "small_test_split": bool(metrics.get("small_test_split")),
        "test_count": metrics.get("count"), "blessed": bool(summary.get("blessed")),
        "blessing_reason": summary.get("blessing_reason"),
        "version": version,
        "newly_pushed": bool(summary.get("pushed")), "push_reason": summary.get("push_reason"),
        "report": report,
        # Absolute, so the page finds the versions whatever directory a later run starts in.
        "serving_root": serving_root if "://" in serving_root else os.path.abspath(serving_root),
        "model_name": model_name,
        "error": _shortened(error) if error else None,
        "log": _relative_to(pipeline_root, summary["log"]) if summary.get("log") else None,
    }
    # One short line in append mode: two runs finishing at once do not interleave within it.
    with open(os.path.join(pipeline_root, RUNS_RECORD), "a", encoding="utf-8") as runs:
        runs.write(json.dumps(record, sort_keys=True) + "\n")
    return record


# A failure's reason is kept to its start: the whole of it is in the run's log.
ERROR_CHARACTERS = 600


def _shortened(text: str) -> str:
    return text if len(text) <= ERROR_CHARACTERS else text[:ERROR_CHARACTERS - 1] + "\u2026"


def _relative_to(pipeline_root: str, path: str) -> str:
    """`path` relative to the root, as the page links it, when it lies under the root; else absolute."""
    path, root = os.path.abspath(path), os.path.abspath(pipeline_root)
    return os.path.relpath(path, root) if os.path.commonpath([path, root]) == root else path


def _pushed_text(summary: dict[str, Any], version: int | None) -> str:
    if version is None:
        return f"none: {summary.get('push_reason') or 'not blessed'}"
    if summary.get("pushed"):
        return f"version {version}, pushed by this run"
    return f"none: version {version} already serves this model ({summary.get('push_reason') or 'the same model'})"


def _linkable_report(pipeline_root: str, summary: dict[str, Any], version: int | None) -> str:
    """`reports/<run_id>.html`: the run's report, with the version pushed, under a name a browser opens as HTML.

    The report artifact's file is named `report`, without an extension, and a browser shows such a
    local file as text. The copy also says what push did, which evaluate could not know when it
    wrote the report (components/evaluate/pushed_mark.py).
    """
    link = os.path.join(REPORTS, f"{summary['run_id']}.html")
    target = os.path.join(pipeline_root, link)
    with open(summary["report"], encoding="utf-8") as report:
        atomic_files.write_text(target, with_pushed_version(report.read(), _pushed_text(summary, version)))
    return link


def read_runs(pipeline_root: str) -> list[dict[str, Any]]:
    """Every recorded run, newest first; a line a killed writer left unfinished is skipped."""
    path = os.path.join(pipeline_root, RUNS_RECORD)
    runs = []
    for line in open(path, encoding="utf-8") if os.path.isfile(path) else []:
        try:
            runs.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return sorted(runs, key=lambda run: run["finished_at"], reverse=True)


def serving_versions(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The versions in each serving model the runs pushed to, newest first, with their evaluation records."""
    models = []
    for serving_root, model_name in dict.fromkeys((run["serving_root"], run["model_name"]) for run in runs):
        model_dir = model_directory(serving_root, model_name)
        try:
            versions = existing_versions(model_dir)
            records = read_evaluation_records(model_dir)
        except Exception as error:  # noqa: BLE001 - an unreadable serving root is shown, never fatal to a run
            models.append({"model_dir": model_dir, "error": str(error), "versions": []})
            continue
        models.append({"model_dir": model_dir, "versions": [
            {"version": version, **records.get(version, {})} for version in sorted(versions, reverse=True)]})
    return models


def _accuracy(run: dict[str, Any]) -> str:
    if run.get("accuracy") is None:
        return "&ndash;"
    low, high = run.get("accuracy_ci95") or (None, None)
    interval = f" <span class=ci>({low:.3f}&ndash;{high:.3f})</span>" if low is not None else ""
    small = (f' <span class=small title="{run.get("test_count")} test images: too few for this accuracy to mean '
             f'much">small test split</span>') if run.get("small_test_split") else ""
    return f"{run['accuracy']:.3f}{interval}{small}"


def _when(finished_at: str) -> str:
    """"2026-11-30 12:00:00" from the ISO time with its offset, which the cell's title keeps."""
    return finished_at[:19].replace("T", " ")


def _run_row(run: dict[str, Any]) -> str:
    escape = html.escape
    state = "succeeded" if run["succeeded"] else "failed"
    blessed = ("yes" if run["blessed"] else "no") if run["succeeded"] else "&ndash;"
    version = "&ndash;"
    if run.get("version") is not None:
        version = str(run["version"]) + ("" if run.get("newly_pushed") else " (already serving)")
    links = [f'<a href="{escape(run[name])}">{name}</a>' for name in ("report", "log") if run.get(name)]
    finished = run["finished_at"]
    row = (f'<tr class={state}><td title="{escape(finished)}">{escape(_when(finished))}</td>'
           f'<td>{escape(str(run["run_id"]))}</td>'
           f'<td>{state}</td><td>{escape(run["source"])}</td><td>{escape(run["base"])}</td>'
           f'<td>{_accuracy(run)}</td><td title="{escape(run.get("blessing_reason") or "")}">{blessed}</td>'
           f'<td title="{escape(run.get("push_reason") or "")}">{version}</td><td>{" ".join(links)}</td></tr>')
    if not run["succeeded"]:
        reason = run.get("error") or "no reason recorded (see the log)"
        row += f"<tr class=failed><td></td><td colspan=8 class=reason>why: {escape(reason)}</td></tr>"
    return row


def _small_record(entry: dict[str, Any]) -> str:
    """A mark on a version whose recorded accuracy comes from a test split too small to count (blessing rule 4)."""
    from components.common.model.accuracy_evidence import too_small
    from components.evaluate.blessing import BlessingPolicy

    if not entry.get("test_count") or not too_small(entry["accuracy"], entry["test_count"],
                                                    BlessingPolicy().max_test_interval):
        return ""
    return " <span class=small>small test split</span>"


def _model_section(model: dict[str, Any]) -> str:
    escape = html.escape
    heading = f"<h3>{escape(model['model_dir'])}</h3>"
    if model.get("error"):
        return heading + f"<p>cannot be read: {escape(model['error'])}</p>"
    if not model["versions"]:
        return heading + "<p>no version pushed yet</p>"
    rows = "".join(
        f'<tr><td>{entry["version"]}{" (newest: serving)" if index == 0 else ""}</td>'
        f'<td>{entry["accuracy"]:.3f}{_small_record(entry)}</td><td>{entry.get("test_count", "")}</td>'
        f'<td>{escape(str(entry.get("run_id", "")))}</td></tr>' if "accuracy" in entry else
        f'<tr><td>{entry["version"]}</td><td colspan=3>no evaluation record</td></tr>'
        for index, entry in enumerate(model["versions"]))
    return heading + ("<table><tr><th>version</th><th>test accuracy</th><th>test images</th><th>run</th></tr>"
                      f"{rows}</table>")


STYLE = """body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:1.5em}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}
tr.failed td{background:#fdecea}.reason{white-space:pre-wrap;font-family:monospace;font-size:85%}
.ci{color:#666;font-size:90%}
.small{background:#fff3cd;color:#8a6d00;font-size:85%;padding:0 .3em}"""


def render(runs: list[dict[str, Any]], models: list[dict[str, Any]]) -> str:
    """The page: the runs, newest first, then the serving versions."""
    run_rows = "".join(_run_row(run) for run in runs) or "<tr><td colspan=9>no run recorded yet</td></tr>"
    return (
        "<!DOCTYPE html><html><head><meta charset=utf-8><title>headstart runs</title>"
        f"<style>{STYLE}</style></head><body><h1>headstart runs</h1>"
        f"<p>{len(runs)} run(s), newest first. Hover over blessed or version for the reason.</p>"
        "<table><tr><th>finished</th><th>run</th><th>state</th><th>source</th><th>base</th>"
        "<th>test accuracy (95% CI)</th><th>blessed</th><th>version pushed</th><th></th></tr>"
        f"{run_rows}</table><h2>Serving</h2>{''.join(_model_section(model) for model in models)}"
        "</body></html>\n"
    )


def write_index(pipeline_root: str) -> str:
    """Renders `<pipeline_root>/index.html` from every recorded run; returns its path."""
    runs = read_runs(pipeline_root)
    path = os.path.join(pipeline_root, INDEX)
    partial = f"{path}.tmp-{os.getpid()}"
    with open(partial, "w", encoding="utf-8") as page:
        page.write(render(runs, serving_versions(runs)))
    os.replace(partial, path)  # a browser reloading the page never reads half of it
    return path
