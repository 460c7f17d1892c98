"""Run notifications: a Slack-compatible JSON message posted to a webhook when a local run ends.

The message is Slack's incoming-webhook form (`text`, with the same lines as `blocks`), which
Mattermost, Rocket.Chat and most chat webhooks also take. A notification is retried with
exponential backoff and never fails the run: a webhook that stays down costs a warning.
"""

import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable

logger = logging.getLogger(__name__)

ATTEMPTS = 4
FIRST_DELAY_S = 1.0  # then 2 and 4 s: about 7 s in all before giving up
TIMEOUT_S = 10.0
# Answers worth another try: the server is busy or failing, not refusing this message.
RETRIED_STATUSES = {408, 429, 500, 502, 503, 504}


def redacted(url: str) -> str:
    """The webhook without its path, query or credentials, which for Slack and the like are the secret."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}/..." if parts.path.strip("/") or parts.query else f"{parts.scheme}://{host}"


def check_webhook_url(url: str) -> str:
    """The URL unchanged when it can take a POST: http or https with a host; else ValueError naming it."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--notify must be an http:// or https:// webhook URL, got {redacted(url)!r}")
    return url


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
        summary: the run's summary (`pipeline.summary.collect_summary`, with "log").
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


def post(url: str, message: dict, *, attempts: int = ATTEMPTS, first_delay_s: float = FIRST_DELAY_S,
         timeout_s: float = TIMEOUT_S, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Posts `message` as JSON to `url`, retrying with backoff; True once a 2xx answers. Never raises.

    What it logs names the webhook by `redacted(url)` only.

    Args:
        url: the webhook.
        message: the JSON body.
        attempts: tries in all.
        first_delay_s: the wait after the first failure, doubled after each one.
        timeout_s: per request.
        sleep: how to wait (tests pass a recorder).
    """
    body = json.dumps(message).encode()
    delay = first_delay_s
    shown = redacted(url)
    for attempt in range(1, attempts + 1):
        try:
            request = urllib.request.Request(url, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=timeout_s):
                return True
        except urllib.error.HTTPError as answer:
            failure, retry = f"HTTP {answer.code}", answer.code in RETRIED_STATUSES
        except (urllib.error.URLError, OSError) as problem:
            failure, retry = str(getattr(problem, "reason", problem)), True
        except (http.client.InvalidURL, ValueError) as malformed:  # a port that is not a number, and the like
            failure, retry = f"malformed URL ({str(malformed).replace(url, shown)})", False
        except http.client.HTTPException as problem:  # a garbled or cut answer: worth another try
            failure, retry = f"{type(problem).__name__}: {problem}", True
        if not retry or attempt == attempts:
            logger.warning("notification to %s not delivered after %d attempt(s): %s", shown, attempt, failure)
            return False
        logger.info("notification to %s: %s; retrying in %.1f s", shown, failure, delay)
        sleep(delay)
        delay *= 2
    return False
