"""Run notifications: a Slack-compatible JSON message posted to a webhook when a local run ends.

The message is Slack's incoming-webhook form (`text`, with the same lines as `blocks`), which
Mattermost, Rocket.Chat and most chat webhooks also take. A notification is retried with
exponential backoff and never fails the run: a webhook that stays down costs a warning.
"""

import urllib.parse
from typing import Any

from components.common.runtime.webhook import check_webhook_url, post, redacted  # noqa: F401 - the CLI's names


def _verdict(paired: dict) -> str:
    """The paired test's verdict on challenger against champion, in words."""
    bounds = f"difference {paired['difference']:+.4f}, bounds {paired['lower']:+.4f} to {paired['upper']:+.4f} " \
             f"at {paired['confidence']:.0%} one-sided, {paired['count']} paired test images"
    if paired["lower"] > 0:
        return f"challenger better ({bounds})"
    if paired["upper"] < 0:
        return f"challenger worse ({bounds})"
    return f"no significant difference ({bounds})"


def _comparison_line(summary: dict[str, Any]) -> str:
    """Challenger against champion, with the paired test's verdict; or that there was no champion."""
    champion, accuracy = summary.get("champion"), summary.get("metrics", {}).get("accuracy")
    if not champion:
        return "champion: none serving, so no comparison"
    if champion.get("same_model"):
        return f"champion: version {champion['version']} is this very model"
    line = f"challenger accuracy {accuracy:.4f} against champion version {champion['version']} " \
           f"{champion['accuracy']:.4f}" if accuracy is not None else f"champion: version {champion['version']}"
    paired = summary.get("paired")
    return line + (f"; paired test: {_verdict(paired)}" if paired else "")


def run_message(summary: dict[str, Any], *, succeeded: bool, error: str | None, source: str, base: str) -> dict:
    """The notification for one finished run.

    Args:
        summary: the run's summary (`pipeline.local.summary.collect_summary`, with "log").
        succeeded: whether every step succeeded.
        error: why the run failed, when it did.
        source: the run's source, as given.
        base: the base network, as given.
    """
    run_id = summary.get("run_id") or "(no run directory)"
    head = f"headstart run {run_id} {'succeeded' if succeeded else 'FAILED'}"
    lines = [f"source {source}, base {base}"]
    if not succeeded:
        lines.append(f"error: {error}")
    metrics = summary.get("metrics") or {}
    if "accuracy" in metrics:
        low, high = metrics.get("accuracy_ci95", (float("nan"), float("nan")))
        lines.append(f"test accuracy {metrics['accuracy']:.4f} (95% CI {low:.4f}-{high:.4f}, "
                     f"{metrics.get('count', 0)} images)")
    if summary.get("blessing_reason") is not None:
        lines.append(f"blessed: {'yes' if summary.get('blessed') else 'no'} ({summary['blessing_reason']})")
        lines.append(_comparison_line(summary))
    pushed = summary.get("pushed_uri")
    why_not = summary.get("push_reason") or "push did not run"
    lines.append(f"pushed: {pushed}" if pushed else f"pushed: nothing ({why_not})")
    if summary.get("report"):
        lines.append(f"report: {_link(summary['report'])}")
    lines.append(f"log: {summary.get('log')}")
    text = "\n".join([f"*{head}*", *lines])
    return {"text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def _link(path: str) -> str:
    """A link a chat client opens: URIs as they are, local paths as file:// URLs."""
    return path if "://" in path else "file://" + urllib.parse.quote(path)
