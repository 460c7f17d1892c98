"""The cluster's run notification: the same chat message as a local run's, posted by the exit task.

The webhook URL is a secret, so it comes from an environment variable the deployment fills from a
Kubernetes secret (`--env-from-secret HEADSTART_NOTIFY_URL=SECRET/KEY`), never from a run
parameter, which the KFP UI shows to anyone who can see the run. The exit task only knows how the
run ended (KFP's final status), not the other steps' outputs: the message says which run, its
state, its source and model, and the error when it failed. It never fails the run.
"""

import logging
import os

from components.common.runtime.webhook import post, redacted

logger = logging.getLogger(__name__)

NOTIFY_URL_ENV = "HEADSTART_NOTIFY_URL"


def message(*, run_name: str, state: str, error: str | None, source: str, model_name: str) -> dict:
    """The message: Slack's incoming-webhook form (`text`, with the same lines as `blocks`)."""
    succeeded = state.upper() == "SUCCEEDED"
    lines = [f"*headstart run {run_name} {'succeeded' if succeeded else 'failed'}*",
             f"state: {state}", f"source: {source}", f"model: {model_name}"]
    if not succeeded and error:
        lines.append(f"error: {error}")
    return {"text": "\n".join(lines),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": line}} for line in lines]}


def run(*, run_name: str, state: str, error: str | None, source: str, model_name: str) -> bool:
    """Posts the run's outcome; True when it was delivered, False when not (or no webhook is set)."""
    url = os.environ.get(NOTIFY_URL_ENV, "")
    if not url:
        logger.info("notify: no webhook: give the deployment --env-from-secret %s=SECRET/KEY to be told how "
                    "cluster runs end", NOTIFY_URL_ENV)
        return False
    delivered = post(url, message(run_name=run_name, state=state, error=error, source=source, model_name=model_name))
    logger.info("notify: %s %s", "notified" if delivered else "could not notify", redacted(url))
    return delivered
