"""The run summary: what each step did, the test metrics, the blessing and the pushed model.

It is read from the artifacts a local run left under its run directory
(`<pipeline_root>/run-<time>/<run_id>/<task>/<output>/`), so it reports what happened, not what was meant.
"""

import glob
import os
from typing import Any

from components.common.contract.artifact_files import (
    AUDIT_REPORT,
    BLESSING,
    EDGE_REPORT,
    FEATURES_INFO,
    FINE_TUNE_INFO,
    METRICS,
    NEAR_DUPLICATES_DROPPED,
    PUSH_RESULT,
    RESOURCES_FILE,
    STATS,
)
from components.common.storage import atomic_files
from components.common.storage.step_cache import DECISION_FILE
from components.ingest.sources import skipped_text
from pipeline.definition.pipeline import STEP_NAMES

# Entries of each audit list the summary carries (the audit artifact and the report have them all).
AUDIT_TOP = 5
_REPORTED_METRICS = ("accuracy", "accuracy_ci95", "accuracy_wilson95", "small_test_split",
                     "auc", "log_loss", "precision", "recall", "ece", "per_class",
                     "transfer_lift", "count", "confusion_matrix", "labels")


def _read(run_dir: str, task: str, output: str, name: str) -> Any:
    path = os.path.join(run_dir, task, output, name)
    return atomic_files.read_json(path) if os.path.exists(path) else None


def _first_output_record(run_dir: str, task: str, name: str) -> dict | None:
    """A record a task wrote into its first output: its cache decision or its resource figures."""
    for path in glob.glob(os.path.join(run_dir, task, "*", name)):
        return atomic_files.read_json(path)
    return None


def _step(run_dir: str | None, name: str, observed: dict[str, Any]) -> dict[str, Any]:
    """One step's status and seconds as observed, its cache decision and what its process used."""
    step = {**observed, "cache": _first_output_record(run_dir, name, DECISION_FILE) if run_dir else None}
    used = (_first_output_record(run_dir, name, RESOURCES_FILE) if run_dir else None) or {}
    step.update({"peak_rss_mb": used.get("peak_rss_mb"), "bytes_written": used.get("bytes_written")})
    return step


def _audit_summary(audit: dict[str, Any], top: int = AUDIT_TOP) -> dict[str, Any]:
    """The audit's first entries of each list, without thumbnails, and its counts."""
    kept = ("origin", "split", "label", "score", "suggested", "flagged", "matches", "matches_split")
    return {"images": audit["images"], "flagged_mislabeled": audit["flagged_mislabeled"],
            "train_largest_to_smallest": audit["balance"]["train_largest_to_smallest"],
            **{kind: [{key: entry[key] for key in kept if key in entry} for entry in audit[kind][:top]]
               for kind in ("mislabeled", "near_duplicates", "outliers")}}


def collect_summary(run_dir: str | None, steps: dict[str, dict[str, Any]],
                    step_names: list[str] = STEP_NAMES) -> dict[str, Any]:
    """Builds the summary of one run.

    Args:
        run_dir: the run's directory under the pipeline root (None if it never started).
        steps: status and seconds per task, as observed while it ran.
        step_names: the pipeline's tasks in run order (the audit pipeline has four).
    """
    found = (lambda *parts: _read(run_dir, *parts)) if run_dir else (lambda *parts: None)
    stats = found("preprocess", "examples", STATS) or {}
    ingested = found("ingest", "raw_examples", "manifest.json") or {}
    metrics = found("evaluate", "evaluation", METRICS) or {}
    blessing = found("evaluate", "evaluation", BLESSING) or {}
    pushed = found("push", "push_result", PUSH_RESULT) or {}
    tuned = found("fine-tune", "tuned_head", FINE_TUNE_INFO)
    features = found("extract-features", "features", FEATURES_INFO) or {}
    audit = found("audit-data", "audit", AUDIT_REPORT)
    report = os.path.join(run_dir, "evaluate", "report") if run_dir else None
    steps = {name: _step(run_dir, name, steps.get(name, {"status": "NOT_RUN", "seconds": 0.0})) for name in step_names}
    extracted, from_store = features.get("extracted"), features.get("reused")
    if (steps["extract-features"]["cache"] or {}).get("reused"):
        extracted, from_store = 0, sum(features.get("counts", {}).values())  # features.json is the first run's
    return {
        "run_id": os.path.basename(run_dir) if run_dir else None,
        "run_dir": run_dir,
        "steps": steps,
        "metrics": {key: metrics[key] for key in _REPORTED_METRICS if key in metrics},
        "counts": stats.get("counts", {}),
        "rejected": stats.get("rejected", 0),
        "duplicates": ingested.get("duplicates", 0),
        # Images --exclude left out and --relabel gave another label.
        "excluded": len(ingested.get("excluded", [])), "relabelled": len(ingested.get("relabelled", [])),
        # Files in the source that are not images of it (a .txt, .DS_Store), by reason.
        "skipped": ingested.get("skipped", {}),
        # Test images dropped as near copies (re-encoded, resized, cropped) of train or eval images.
        "near_duplicates": stats.get(NEAR_DUPLICATES_DROPPED, 0),
        # Images the base network ran on in this run's extraction, and those the feature store had.
        "features": {"extracted": extracted, "reused": from_store},
        "blessed": bool(blessing.get("blessed", False)),
        "blessing_reason": blessing.get("reason"),
        "champion": blessing.get("champion"),
        # The paired test of challenger against champion on the same test images, when there was one.
        "paired": blessing.get("paired"),
        "fine_tune": tuned,
        # The version this run pushed, or the one already serving this same model (then "pushed" is false).
        "pushed": bool(pushed.get("pushed")),
        "pushed_uri": pushed.get("uri"),
        "push_reason": pushed.get("reason"),
        # Each TFLite model's size and parity check, when this run pushed with edge export.
        "edge": found("push", "push_result", EDGE_REPORT),
        "report": report if report and os.path.isfile(report) else None,
        "audit": _audit_summary(audit) if audit else None,
    }


def _resources_text(step: dict[str, Any]) -> str:
    """A step's peak memory and bytes written, as the summary line shows them; empty if unknown."""
    peak, written = step.get("peak_rss_mb"), step.get("bytes_written")
    if peak is None or written is None:
        return ""
    return f"{peak:6.0f} MB peak {written / 1e6:8.1f} MB written  "


def _audit_lines(audit: dict[str, Any] | None) -> list[str]:
    """The audit's counts and its most suspicious entries, as the summary shows them."""
    if not audit:
        return []
    lines = [f"  data audit: {audit['images']} images, {audit['flagged_mislabeled']} flagged as likely mislabelled, "
             f"largest to smallest training class {audit['train_largest_to_smallest']}"]
    lines += [f"    likely mislabelled: {entry['origin']} ({entry['split']}, {entry['label']}; looks like "
              f"{entry['suggested']}, score {entry['score']:.2f})" for entry in audit["mislabeled"] if entry["flagged"]]
    lines += [f"    near duplicates: {entry['origin']} ({entry['split']}) ~ {entry['matches']} "
              f"({entry['matches_split']})" for entry in audit["near_duplicates"]]
    lines += [f"    outlier: {entry['origin']} ({entry['split']}, {entry['label']}; {entry['score']:.1f} MADs out)"
              for entry in audit["outliers"][:3]]
    return lines


def _blessing_and_push_lines(summary: dict[str, Any]) -> list[str]:
    """Blessed or not and why, the model served, and its TFLite models' checks."""
    lines = [f"  blessed: {'yes' if summary['blessed'] else 'no'}"]
    lines.extend(f"    - {reason}" for reason in (summary["blessing_reason"] or "").split("; ") if reason)
    served = summary["pushed_uri"] or "none, " + (summary["push_reason"] or "push did not run")
    lines.append(f"  served model: {served}")
    for variant, check in (summary.get("edge") or {}).items():
        lines.append(f"    TFLite {variant}: {check['bytes'] / 1e6:.2f} MB, {check['reason']}")
    return lines


def _metrics_lines(metrics: dict[str, Any]) -> list[str]:
    """The test metrics, with a warning when the test split is too small for them to mean much."""
    if not metrics:
        return []
    shown = ", ".join(f"{key} {metrics[key]:.4f}" for key in ("accuracy", "auc", "precision", "recall", "ece")
                      if key in metrics)
    low, high = metrics.get("accuracy_wilson95") or metrics.get("accuracy_ci95", (float("nan"), float("nan")))
    lines = [f"  test metrics: {shown} ({metrics.get('count', 0)} images; accuracy 95% CI {low:.4f}-{high:.4f})"]
    if metrics.get("small_test_split"):
        lines.append(f"  warning: {metrics.get('count', 0)} test images are too few for this accuracy to mean much "
                     f"(anywhere from {low:.4f} to {high:.4f}); use a larger test split")
    return lines


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The run summary as a person reads it at the end of `headstart run`, one string per line.

    Args:
        summary: a run's summary, as `collect_summary` builds it with the run's log path added under
            "log" (as `headstart run` has it, and its --summary JSON).

    Returns:
        The lines, without line ends, starting with the "Summary" heading.
    """
    lines = ["Summary"]
    for name, step in summary["steps"].items():
        cache = step.get("cache") or {}
        done = ("reused: " if cache.get("reused") else "ran: ") + cache["why"] if cache else ""
        lines.append(f"  {name:<17} {step['status']:<8} {step['seconds']:7.1f} s  {_resources_text(step)}{done}")
    metrics = summary["metrics"]
    lines.extend(_metrics_lines(metrics))
    tuned = summary.get("fine_tune") or {}
    if tuned.get("ran"):
        before, after = tuned["eval_accuracy_before"], tuned["eval_accuracy_after"]
        shown = f"eval accuracy {before:.4f} before, {after:.4f} after" if before is not None else "no eval split"
        lines.append(f"  fine-tune: {tuned['reason']}; {shown}; the {tuned.get('model_kept', 'fine-tuned')} "
                     "model goes on")
    elif tuned:
        lines.append(f"  fine-tune: skipped ({tuned['reason']})")
    lift = metrics.get("transfer_lift")
    if lift:
        lines.append(f"  transfer lift: {lift['lift']:+.4f} accuracy (pretrained base "
                     f"{lift['pretrained_accuracy']:.4f}, random-weight base {lift['random_accuracy']:.4f})")
    if summary["counts"]:
        lines.append("  images: " + ", ".join(f"{split} {sum(c.values())}" for split, c in summary["counts"].items())
                     + f", rejected {summary['rejected']}"
                     + (f"; {skipped_text(summary['skipped'])}" if summary.get("skipped") else ""))
        if summary.get("excluded") or summary.get("relabelled"):
            lines.append(f"  edits: {summary['excluded']} images excluded (--exclude), {summary['relabelled']} "
                         "relabelled (--relabel)")
        lines.append(f"  near duplicates: {summary.get('near_duplicates', 0)} test images dropped as near copies of "
                     "train or eval images")
    extracted = summary.get("features", {}).get("extracted")
    if extracted is not None:
        lines.append(f"  feature extraction: {extracted} images through the base network, "
                     f"{summary['features']['reused']} from the feature store")
    if "push" in summary["steps"]:  # `headstart audit` trains, blesses and pushes nothing
        lines.extend(_blessing_and_push_lines(summary))
    lines.extend(_audit_lines(summary.get("audit")))
    if summary.get("report"):
        lines.append(f"  report: {summary['report']}")
    lines.append(f"  artifacts: {summary['run_dir']}")
    lines.append(f"  log: {summary['log']}")
    return lines
