"""`headstart run --notify`: a failed run's message reaches a local webhook, after a busy answer.

The demo's e2e test checks the message of a run that succeeded.
"""

import os
import subprocess
import sys

from pipeline.reporting.notify import redacted
from tests.conftest import Webhook

HEADSTART = os.path.join(os.path.dirname(sys.executable), "headstart")


def test_a_run_that_fails_in_a_step_still_notifies(image_tree, tmp_path):
    not_a_model = tmp_path / "base.keras"
    not_a_model.write_bytes(b"not a Keras file")
    hook = Webhook(failures=1)  # the first post gets a 503: delivered on the retry
    try:
        completed = subprocess.run(
            [HEADSTART, "run", "--source", str(image_tree), "--base-model", str(not_a_model), "--image-size", "32",
             "--pipeline-root", str(tmp_path / "runs"), "--serving-root", str(tmp_path / "serving"),
             "--notify", hook.url],
            capture_output=True, text=True, timeout=600,
        )
    finally:
        hook.close()
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert hook.requests == 2 and len(hook.messages) == 1
    text = hook.messages[0]["text"]
    assert "FAILED" in text and "error: step extract-features did not succeed" in text, text
    assert f"source {image_tree}" in text and "pushed: nothing (push did not run)" in text
    assert f"notified: {redacted(hook.url)}" in completed.stdout and hook.url not in completed.stdout
