"""Posting a JSON message to a chat webhook: retried with backoff, never raising, never logging the secret.

A Slack-style webhook URL's path is its secret: what is logged names the webhook by its scheme
and host only (`redacted`). Light: the standard library only, so the cluster's exit task and the
local CLI both use it.
"""

import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable

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
